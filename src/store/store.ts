import { GroupCommit } from './commit.js';
import { openDb, type Db } from './db.js';
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
  /** Runs `write` in the next group commit; resolves after that commit (see commit.ts). */
  later<T>(write: () => T): Promise<T>;
  close(): void;
}

export function openStore(file: string, options: { readonly?: boolean } = {}): Store {
  const db = openDb(file, options);
  const notifications = new NotificationStore(db);
  const group = new GroupCommit(db);
  return {
    db,
    jobs: new JobStore(db, (n, jobId, at) => notifications.insert(n, jobId, at)),
    notifications,
    outputs: new OutputStore(db),
    schedules: new ScheduleStore(db),
    later: (write) => group.later(write),
    close: () => {
      group.flush();
      db.close();
    },
  };
}
