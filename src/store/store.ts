import { GroupCommit } from './commit.js';
import { openDb, type Db, type OpenOptions } from './db.js';
import { Durability } from './durable.js';
import { JobStore } from './jobs.js';
import { NotificationStore } from './notifications.js';
import { OutputStore } from './outputs.js';
import { ScheduleStore } from './schedules.js';

/** SQLite, the only truth: everything else is rebuilt from it at start. */
export interface Store {
  db: Db;
  jobs: JobStore;
  notifications: NotificationStore;
  outputs: OutputStore;
  schedules: ScheduleStore;
  /** Runs `write` in the next group commit, at the next turn; resolves after that commit (see commit.ts). */
  later<T>(write: () => T): Promise<T>;
  /** As `later`, for a write nothing waits on: it joins the next commit, which comes within 10 ms. */
  soon<T>(write: () => T): Promise<T>;
  /** Resolves once every commit so far is on disk (see durable.ts); at once with durability 'full'. */
  sync(): Promise<void>;
  /** Holds the group commits (and intake's, which waits for `writable`) until the returned function is called (see commit.ts). */
  hold(): () => void;
  /** Resolves when no hold is in force. */
  writable(): Promise<void>;
  /** Syncs done so far (0 with durability 'full'). */
  syncs(): number;
  /**
   * SQLite's data_version: it changes when another connection (the CLI:
   * `hopper retry`, `notify resend`) commits, never for this one's own commits.
   * Who looks for writes from outside compares it, instead of reading tables.
   */
  outsideVersion(): number;
  close(): void;
}

export function openStore(file: string, options: OpenOptions = {}): Store {
  const db = openDb(file, options);
  const dataVersion = db.prepare('PRAGMA data_version').pluck();
  const durability = options.durability === 'deferred' ? new Durability(db, `${file}-wal`) : undefined;
  const notifications = new NotificationStore(db);
  const group = new GroupCommit(db);
  return {
    db,
    jobs: new JobStore(db, (n, jobId, at) => notifications.insert(n, jobId, at)),
    notifications,
    outputs: new OutputStore(db),
    schedules: new ScheduleStore(db),
    later: (write) => group.later(write),
    soon: (write) => group.later(write, 'soon'),
    sync: () => durability?.sync() ?? Promise.resolve(),
    hold: () => group.hold(),
    writable: () => group.writable(),
    syncs: () => durability?.syncs ?? 0,
    outsideVersion: () => dataVersion.get() as number,
    close: () => {
      group.flushAll();
      db.close();
    },
  };
}
