import type { Db } from './db.js';

// How the store's writes are made atomic without a savepoint each.
//
// better-sqlite3 turns a transaction opened inside another into a SAVEPOINT.
// A group commit (commit.ts) or an intake batch runs many units (a job's
// start, its end, a sent email) inside one transaction, so each unit was a
// savepoint, and each write method of the store inside it one more. A
// savepoint is two statements, and SQLite copies every page it changes that an
// earlier unit of the same transaction had changed already (its sub-journal):
// measured at 1,000 jobs a second, these were as much of a commit's time as
// the writes themselves. So a unit now joins the transaction it is called in
// (`atomically`), and whoever opened that transaction (`runUnits`) answers
// for each unit being kept or undone whole: when a unit fails, the whole batch
// is undone and run again, each unit in a savepoint of its own. Units are
// database writes and what they compute from the database, so running them
// again after an undo does the same.

type Runner = (fn: () => unknown) => unknown;
const runners = new WeakMap<Db, Runner>();

/** One transaction function per connection: made once (making one costs more than running it). */
function runner(db: Db): Runner {
  let run = runners.get(db);
  if (!run) {
    run = db.transaction((fn: () => unknown) => fn()) as Runner;
    runners.set(db, run);
  }
  return run;
}

/**
 * Runs `fn` as one atomic unit: in a transaction of its own, or, when a
 * transaction is open already, as part of it. Whoever opened that one makes
 * the unit whole (`runUnits`, or a transaction that fails as a whole).
 */
export function atomically<T>(db: Db, fn: () => T): T {
  return db.inTransaction ? fn() : (runner(db)(fn) as T);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

/**
 * Runs every unit in one transaction and returns what each gave or threw. A
 * unit that throws is undone alone and the others are kept; unless
 * `fatal(err)` (the database itself is in trouble): then nothing is kept and
 * the error is thrown.
 */
export function runUnits<T>(db: Db, units: ReadonlyArray<() => T>, fatal: (err: unknown) => boolean): Array<Outcome<T>> {
  const run = runner(db);
  try {
    // The common case: nothing fails; one transaction, no savepoints.
    return run(() => units.map((unit): Outcome<T> => ({ ok: true, value: unit() }))) as Array<Outcome<T>>;
  } catch (err) {
    if (fatal(err)) throw err;
  }
  // A unit failed, and everything was undone: again, each unit in a savepoint of its own.
  return run(() =>
    units.map((unit): Outcome<T> => {
      try {
        return { ok: true, value: run(unit) as T };
      } catch (err) {
        if (fatal(err)) throw err;
        return { ok: false, err };
      }
    }),
  ) as Array<Outcome<T>>;
}
