import Database from 'better-sqlite3';
import type { Db } from './db.js';

// The WAL's checkpoints, off the main thread.
//
// SQLite copies the WAL back into the database file itself, in the commit that
// takes the WAL past `wal_autocheckpoint` pages (1,000: 4 MiB), and syncs both
// files then. Under hundreds of jobs a second that came every ~30 jobs, on the
// main thread, and `GET /status` answered behind those commits. So the daemon
// asks a step thread, which has a connection of its own, for a PASSIVE
// checkpoint (it waits for no reader or writer) every EVERY_MS while commits
// come. One that runs while the main thread commits copies what was there when
// it began; the WAL starts over at the first write after one that copied all.
// Under steady load there is no such quiet moment, so once the WAL is
// RESTART_FRAMES long the next checkpoint holds the main thread's commits
// while it runs (they wait, the thread does not; HOLD_MAX_MS at most). The
// main connection's own checkpoint stays as a backstop at BACKSTOP_PAGES.
// 10,000-file burst, two runs each: without the holds the WAL started over
// 14-33 times and reached the backstop (8-15 ms on the main thread each
// time); with them 62-63 times, at most 7,700 frames. After a failed
// checkpoint (a step thread that died with it, say) the main connection goes
// back to SQLite's own, and the thread's are tried again RETRY_MS later.
// Measured in a 10,000-file burst: commits over 8 ms 130 -> 18, their p99
// 10.7 -> 5.2 ms, all commits together 6.6 -> 5.0 s (benchmarks.md, seventh step).

/** How often a checkpoint is asked for while commits come. */
const EVERY_MS = 100;
/** The main connection's own automatic checkpoint while the thread's run (40 MiB of WAL). */
const BACKSTOP_PAGES = 10_000;
/** SQLite's default. */
const DEFAULT_PAGES = 1_000;
/** After a failure, how long the main connection checkpoints by itself before a thread is asked again. */
const RETRY_MS = 60_000;
/**
 * A WAL this long (16 MiB) has not started over since: the next checkpoint
 * holds the main thread's commits while it runs (see `hold`).
 */
const RESTART_FRAMES = 4_096;
/** A hold ends after this long whatever the checkpoint does (a step thread busy with one long step, a slow disk). */
const HOLD_MAX_MS = 100;

export interface CheckpointResult {
  /** Frames in the WAL, and how many of them are now in the database file. */
  log: number;
  checkpointed: number;
}

export interface CheckpointsOptions {
  /** @default 100 */
  everyMs?: number;
  /** @default 60000 */
  retryMs?: number;
  /** Said when a checkpoint fails after one that did not (the main connection checkpoints until one works again). */
  onFailure: (err: unknown) => void;
  /** Said when one works again after failures. */
  onRecovery?: () => void;
  /**
   * Holds the main connection's commits until the returned function is
   * called. Under steady load the WAL never starts over by itself: a commit
   * lands while each checkpoint runs, so none copies all, and the WAL grew
   * until the backstop checkpointed on the main thread (8-15 ms a time, ~14
   * times in a 10,000-file burst). A checkpoint with commits held copies all,
   * and the first commit after it starts the WAL over.
   */
  hold?: () => () => void;
  /** @default 100 */
  holdMaxMs?: number;
}

export class Checkpoints {
  private readonly changes;
  private last: number;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private count = 0;
  /** Since a failure: the main connection checkpoints by itself until then (performance.now()). */
  private retryAt: number | undefined;
  /** Frames in the WAL at the last checkpoint (0 once one copied all with the commits held: it starts over). */
  private log = 0;
  /** Checkpoints to run without a hold, after holds that ran out before their checkpoint ended (a busy thread). */
  private unheld = 0;
  private backoff = 0;
  private held = 0;

  constructor(
    private readonly db: Db,
    /** Runs `PRAGMA wal_checkpoint(PASSIVE)` on another connection to the same file, elsewhere than this thread. */
    private readonly checkpoint: () => Promise<CheckpointResult>,
    private readonly options: CheckpointsOptions,
  ) {
    this.changes = db.prepare<[], number>('SELECT total_changes()').pluck();
    this.last = this.changes.get()!;
  }

  /** Checkpoints done elsewhere so far. */
  get done(): number {
    return this.count;
  }

  /** Holds of the commits so far. */
  get holds(): number {
    return this.held;
  }

  start(): void {
    this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    this.timer = setInterval(() => void this.tick(), this.options.everyMs ?? EVERY_MS);
    this.timer.unref();
  }

  /** One checkpoint, when something was committed since the last and none is under way. */
  async tick(): Promise<void> {
    if (this.running || this.timer === undefined || !this.db.open) return;
    if (this.retryAt !== undefined && performance.now() < this.retryAt) return;
    const changes = this.changes.get()!;
    if (changes === this.last) return;
    this.last = changes;
    this.running = true;
    const hold = this.log >= RESTART_FRAMES && this.mayHold() ? this.holdFor(this.options.holdMaxMs ?? HOLD_MAX_MS) : undefined;
    try {
      const r = await this.checkpoint();
      const heldThrough = hold?.heldThrough() ?? false;
      // It reports the WAL as it was; copied all with the commits held, the next commit starts it over.
      this.log = heldThrough && r.checkpointed === r.log ? 0 : r.log;
      if (hold) this.afterHold(heldThrough);
      this.count++;
      if (this.retryAt !== undefined && this.timer !== undefined && this.db.open) {
        this.retryAt = undefined;
        this.db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
        this.options.onRecovery?.();
      }
    } catch (err) {
      // Stopped meanwhile (the threads stop before the store closes): no failure to tell.
      if (this.timer === undefined || !this.db.open) return;
      if (this.retryAt === undefined) this.options.onFailure(err);
      this.retryAt = performance.now() + (this.options.retryMs ?? RETRY_MS);
      this.db.pragma(`wal_autocheckpoint = ${DEFAULT_PAGES}`);
    } finally {
      hold?.release();
      this.running = false;
    }
  }

  private mayHold(): boolean {
    if (this.unheld === 0) return true;
    this.unheld--;
    return false;
  }

  /**
   * A hold that ran out before its checkpoint ended held the commits for
   * nothing (they went on meanwhile, so the WAL did not start over): the next
   * 1, 2, 4 ... 64 checkpoints run without one, until one ends inside its hold.
   */
  private afterHold(heldThrough: boolean): void {
    this.backoff = heldThrough ? 0 : Math.min(Math.max(1, this.backoff * 2), 64);
    this.unheld = this.backoff;
  }

  /** The main connection's commits held (if a hold was given) until `release`, or `maxMs` passed. */
  private holdFor(maxMs: number): { release(): void; heldThrough(): boolean } | undefined {
    const release = this.options.hold?.();
    if (!release) return undefined;
    this.held++;
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      release();
    }, maxMs);
    return {
      release: () => {
        clearTimeout(timer);
        release();
      },
      heldThrough: () => !expired,
    };
  }

  /** The main connection checkpoints by itself again: before the store closes. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${DEFAULT_PAGES}`);
  }
}

/**
 * In a step thread: PASSIVE checkpoints of a database on a connection of the
 * thread's own, opened with the first and kept (one per file).
 */
export function passiveCheckpointer(): (file: string) => CheckpointResult {
  const connections = new Map<string, Db>();
  return (file) => {
    let db = connections.get(file);
    if (!db) {
      // A moment's wait at most for a lock: a checkpoint that cannot run now runs at the next tick.
      db = new Database(file, { fileMustExist: true, timeout: 100 });
      connections.set(file, db);
    }
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as unknown[];
    const { log, checkpointed } = (row ?? {}) as Partial<CheckpointResult>;
    if (typeof log !== 'number' || typeof checkpointed !== 'number') throw new Error(`wal_checkpoint answered ${JSON.stringify(row)}`);
    return { log, checkpointed };
  };
}
