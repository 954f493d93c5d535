import { open } from 'node:fs/promises';
import type { Db } from './db.js';

// Why the daemon's commits are not each written to disk at once, and what
// makes them durable instead.
//
// A commit with synchronous=FULL waits for the disk (an fsync of the WAL) on
// the main thread: at hundreds of jobs a second that was over a quarter of
// hopper's main thread, and an fsync that waits for the file system's journal
// held every HTTP answer for tens of milliseconds. The daemon's connection
// commits with NORMAL: a commit is in the WAL file when it returns, so it
// survives hopper being killed (`kill -9`), but not yet a power loss. Before
// anything leaves hopper that depends on a commit (an email, a webhook, a
// file moved out of the inbox), `sync` has the WAL file fsync'd, on libuv's
// thread pool: that takes every commit made before it to the disk. (SQLite
// syncs the database file itself at each checkpoint.) Those who wait share
// one sync, and syncs come at most every SYNC_EVERY_MS: under load an email
// waits a few milliseconds more, and the disk is asked ~100 times a second
// instead of once per job.

/** The least time between two syncs. */
const SYNC_EVERY_MS = 10;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Durability {
  /** total_changes() as of the last sync: every commit up to it is on disk. */
  private synced: number;
  private waiting: Waiter[] = [];
  private scheduled = false;
  private flushing = false;
  private lastSync = 0;
  private count = 0;
  private readonly changes;

  constructor(
    db: Db,
    /** The database's WAL file (`FILE-wal`). */
    private readonly walFile: string,
  ) {
    this.changes = db.prepare<[], { n: number }>('SELECT total_changes() AS n');
    this.synced = this.changes.get()!.n;
  }

  /** Whether every commit so far is on disk. */
  get clean(): boolean {
    return this.changes.get()!.n === this.synced;
  }

  /** Syncs done (for tests and metrics). */
  get syncs(): number {
    return this.count;
  }

  /** Resolves once every commit made before the call is on disk (power loss included). */
  sync(): Promise<void> {
    if (this.clean) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const wait = this.lastSync + SYNC_EVERY_MS - performance.now();
    if (wait > 0) setTimeout(() => void this.flush(), wait);
    else setImmediate(() => void this.flush());
  }

  /** One fsync of the WAL file for all who wait now. */
  private async flush(): Promise<void> {
    this.scheduled = false;
    this.flushing = true;
    const waiting = this.waiting;
    this.waiting = [];
    // Every commit so far has been written to the WAL file (NORMAL writes it at commit).
    const upTo = this.changes.get()!.n;
    try {
      await fsyncFile(this.walFile);
      this.synced = Math.max(this.synced, upTo);
      this.count++;
      this.lastSync = performance.now();
      for (const w of waiting) w.resolve();
    } catch (err) {
      for (const w of waiting) w.reject(err);
    } finally {
      this.flushing = false;
      if (this.waiting.length > 0) this.schedule();
    }
  }
}

/** fsync of a file by name, opened afresh (the WAL file as it is now); a file not there has nothing to sync. */
async function fsyncFile(file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
