import { runUnits, type Outcome } from './atomic.js';
import { isDatabaseTrouble, type Db } from './db.js';

// Group commit: the state changes of many jobs (a start, an end, a sent
// email, a wait reason) are written in one transaction per turn of the event
// loop instead of one each. A commit costs a WAL write and an fsync on the
// main thread; with hundreds of jobs a second that was a third of hopper's time.
// A caller gets a promise that settles after the commit, so whatever depends
// on the write (an email, a webhook, a lane slot for the next job) waits for it.
//
// A write nothing waits on (a job's start while its steps already run, a sent
// email's mark, a wait reason) is `soon`: it joins the next commit that
// something does wait on, or is committed on its own within SOON_MS. Each
// commit rewrites every page it touches, and the pages of a table's newest
// rows and of its indexes are shared by the jobs of one commit: measured on
// the trivial job's writes, one job per commit wrote ~230 KiB of WAL per job,
// eight per commit ~40 (.scratch-style replay in docs/benchmarks.md).
const SOON_MS = 10;

/**
 * The most writes one commit takes; the rest go in the next turn of the event
 * loop, after the HTTP endpoint has had its turn. In a 10,000-file burst 1 % of
 * the commits held 34 or more (at most 53), and such a commit held the main
 * thread 10-20 ms: `GET /status` waited behind it.
 */
const MAX_UNITS = 16;

type Urgency = 'now' | 'soon';

interface Waiting {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  private waiting: Waiting[] = [];
  /** The next turn's flush, when a write that something waits on is in the group. */
  private immediate: NodeJS.Immediate | undefined;
  /** The flush of a group of `soon` writes alone. */
  private timer: NodeJS.Timeout | undefined;

  /** Holds in force (see hold); while any is, commits wait. */
  private holds = 0;
  private released: Array<() => void> = [];

  constructor(private readonly db: Db) {}

  /**
   * Holds commits until the returned function is called: writes keep joining
   * the group, and go in one commit after. (For a checkpoint on another
   * connection: see checkpoints.ts.)
   */
  hold(): () => void {
    this.holds++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.holds > 0) return;
      for (const resolve of this.released.splice(0)) resolve();
      if (this.waiting.length > 0 && !this.immediate) this.immediate = setImmediate(() => this.flush());
    };
  }

  /** Resolves when no hold is in force: for a transaction of its own (intake's) that should wait as the group does. */
  writable(): Promise<void> {
    return this.holds === 0 ? Promise.resolve() : new Promise((resolve) => this.released.push(resolve));
  }

  /**
   * Runs `write` in the next group's transaction (as a unit: if it throws,
   * only its changes are undone, see atomic.ts) and resolves with its result
   * once the group is committed: at the next turn of the event loop, or with
   * `soon`, when a write that is not soon comes, at most SOON_MS later.
   */
  later<T>(write: () => T, urgency: Urgency = 'now'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ write, resolve: resolve as (value: unknown) => void, reject });
      if (this.immediate) return;
      if (urgency === 'now') this.immediate = setImmediate(() => this.flush());
      else this.timer ??= setTimeout(() => this.flush(), SOON_MS);
    });
  }

  /** Commits everything waiting, in as many commits as it takes (before the database closes), holds or not. */
  flushAll(): void {
    while (this.waiting.length > 0) this.flush(true);
  }

  /** Commits what is waiting now, up to MAX_UNITS writes; the rest in the next turn. While held, nothing (the release flushes). */
  flush(evenHeld = false): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
    if (this.holds > 0 && !evenHeld) return;
    const group = this.waiting.splice(0, MAX_UNITS);
    if (group.length === 0) return;
    // What is left over is committed in the next turn, like a write that waits on it.
    if (this.waiting.length > 0) this.immediate = setImmediate(() => this.flush());
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
