import { runUnits, type Outcome } from './atomic.js';
import { isDatabaseTrouble, type Db } from './db.js';

// Group commit: the state changes of many jobs (a start, an end, a sent
// email, a wait reason) are written in one transaction per turn of the event
// loop instead of one each. A commit costs a WAL write and an fsync on the
// main thread; with hundreds of jobs a second that was a third of hopper's time.
// A caller gets a promise that settles after the commit, so whatever depends
// on the write (an email, a webhook, a lane slot for the next job) waits for it.

interface Waiting {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly db: Db) {}

  /**
   * Runs `write` in the next group's transaction (as a unit: if it throws,
   * only its changes are undone, see atomic.ts) and resolves with its result
   * once the group is committed.
   */
  later<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ write, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is waiting now (also called before the database closes). */
  flush(): void {
    this.scheduled = false;
    const group = this.waiting;
    this.waiting = [];
    if (group.length === 0) return;
    let outcomes: Array<Outcome<unknown>>;
    try {
      outcomes = runUnits(this.db, group.map((w) => w.write), isDatabaseTrouble); // database trouble fails the whole group
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => {
      const o = outcomes[i];
      if (o.ok) w.resolve(o.value);
      else w.reject(o.err);
    });
  }
}
