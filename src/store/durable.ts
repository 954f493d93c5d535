import type { Db } from './db.js';

// Why the daemon's commits are not each written to disk at once, and what
// makes them durable instead.
//
// A commit with synchronous=FULL waits for the disk (an fsync of the WAL) on
// the main thread: at hundreds of jobs a second that was over a quarter of
// hopper's main thread, for state changes nobody outside hopper has seen yet.
// The daemon's connection commits with NORMAL: a commit is in the WAL when it
// returns, so it survives hopper being killed (`kill -9`), but not yet a power
// loss. Before anything leaves hopper that depends on a commit (an email, a
// webhook, a file moved out of the inbox), `sync` commits once with FULL:
// the fsync of the WAL takes every earlier commit to the disk with it. Those
// who wait share one sync, and syncs come at most every SYNC_EVERY_MS: under
// load an email waits a few milliseconds more, and the disk is asked ~100
// times a second instead of once per job.

/** The least time between two syncs. */
const SYNC_EVERY_MS = 10;

export class Durability {
  private synced: number;
  private waiting: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  private scheduled = false;
  private lastSync = 0;
  private readonly bump;
  private readonly changes;

  constructor(private readonly db: Db) {
    this.bump = db.prepare('UPDATE syncs SET n = n + 1 WHERE id = 1');
    this.changes = db.prepare<[], { n: number }>('SELECT total_changes() AS n');
    this.synced = this.changes.get()!.n;
  }

  /** Whether every commit so far is on disk. */
  get clean(): boolean {
    return this.changes.get()!.n === this.synced;
  }

  /** Resolves once every commit made before the call is on disk (power loss included). */
  sync(): Promise<void> {
    if (this.clean) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      const wait = this.lastSync + SYNC_EVERY_MS - performance.now();
      if (wait > 0) setTimeout(() => this.flush(), wait);
      else setImmediate(() => this.flush());
    });
  }

  /** One FULL commit for all who wait. */
  flush(): void {
    this.scheduled = false;
    const waiting = this.waiting;
    this.waiting = [];
    try {
      if (!this.clean) {
        this.db.pragma('synchronous = FULL');
        try {
          this.bump.run();
        } finally {
          this.db.pragma('synchronous = NORMAL');
        }
        this.synced = this.changes.get()!.n;
        this.lastSync = performance.now();
      }
    } catch (err) {
      for (const w of waiting) w.reject(err);
      return;
    }
    for (const w of waiting) w.resolve();
  }
}
