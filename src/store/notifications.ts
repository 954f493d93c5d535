import type { JobEvent } from '../schemas/common.js';
import { BOUND, statements, type Db } from './db.js';

export type Channel = 'email' | 'webhook';

/** A message to send, rendered when its event happened (so later edits cannot change it). */
export interface NewNotification {
  event: JobEvent;
  channel: Channel;
  /** Where it goes: an address or a URL (shown to admins; never a secret). */
  target: string;
  payload: EmailPayload | Record<string, unknown>;
}

export interface EmailPayload {
  to: string[];
  subject: string;
  text: string;
}

export interface Notification {
  id: number;
  jobId: string;
  event: JobEvent;
  channel: Channel;
  target: string;
  payload: unknown;
  state: 'pending' | 'sent' | 'dead';
  attempts: number;
  nextAt: number;
  lastError: string | null;
  createdAt: number;
}

interface Row {
  id: number;
  job_id: string;
  event: JobEvent;
  channel: Channel;
  target: string;
  payload: string;
  state: Notification['state'];
  attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
}

const fromRow = (r: Row): Notification => ({
  id: r.id,
  jobId: r.job_id,
  event: r.event,
  channel: r.channel,
  target: r.target,
  payload: JSON.parse(r.payload) as unknown,
  state: r.state,
  attempts: r.attempts,
  nextAt: r.next_at,
  lastError: r.last_error,
  createdAt: r.created_at,
});

/** What the notifier needs to schedule a row: the rest is read when it is sent. */
export type Due = Pick<Notification, 'id' | 'jobId' | 'channel' | 'target' | 'nextAt'>;
const DUE = 'SELECT id, job_id AS jobId, channel, target, next_at AS nextAt FROM notifications';

/** The durable outbox: rows written with their job event, sent and retried by notify/. */
export class NotificationStore {
  private readonly sql: ReturnType<typeof statements>;
  private fresh = new Map<number, Due>();
  constructor(db: Db) {
    this.sql = statements(db);
  }

  insert(n: NewNotification, jobId: string, at: number): void {
    const { lastInsertRowid } = this.sql('INSERT INTO notifications (job_id, event, channel, target, payload, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(jobId, n.event, n.channel, n.target, JSON.stringify(n.payload), at, at);
    const id = Number(lastInsertRowid);
    // A rolled-back insert's id may be given again: the later row is the real one.
    this.fresh.set(id, { id, jobId, channel: n.channel, target: n.target, nextAt: at });
  }

  /**
   * The rows inserted since the last call: how the notifier learns of new
   * rows without querying for them. Taken after the writes' transaction
   * (better-sqlite3 commits synchronously, so by the time other code runs it
   * has); a row whose transaction rolled back is found missing when it is read.
   */
  takeFresh(): Due[] {
    const rows = [...this.fresh.values()];
    this.fresh.clear();
    return rows;
  }

  /** Every pending row, by index: read at start and now and then (`hopper notify resend` writes from outside). */
  pending(): Due[] {
    return this.sql<[], Due>(`${DUE} WHERE state = 'pending'`).all();
  }

  markSent(id: number, at: number): void {
    this.sql(`UPDATE notifications SET state = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL WHERE id = ?`).run(at, id);
  }

  markFailed(id: number, error: string, nextAt: number | null): void {
    this.sql(`UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_at = coalesce(?, next_at), state = CASE WHEN ? IS NULL THEN 'dead' ELSE 'pending' END WHERE id = ?`)
      .run(error, nextAt, nextAt, id);
  }

  /** One try to send: when, the HTTP status (webhooks), and what went wrong. */
  recordDelivery(id: number, at: number, status: number | null, error: string | null): void {
    this.sql('INSERT INTO deliveries (notification_id, at, status, error) VALUES (?, ?, ?, ?)').run(id, at, status, error);
  }

  deliveries(id: number): Array<{ at: number; status: number | null; error: string | null }> {
    return this.sql<[number], { at: number; status: number | null; error: string | null }>(`SELECT at, status, error FROM deliveries WHERE notification_id = ${BOUND} ORDER BY id`).all(id);
  }

  /** Sends dead notifications again (`hopper notify resend`): by notification id, or all of a job's. */
  resend(target: { id: number } | { jobId: string }, now: number): number {
    const info =
      'id' in target
        ? this.sql(`UPDATE notifications SET state = 'pending', attempts = 0, next_at = ?, created_at = ? WHERE id = ? AND state = 'dead'`).run(now, now, target.id)
        : this.sql(`UPDATE notifications SET state = 'pending', attempts = 0, next_at = ?, created_at = ? WHERE job_id = ? AND state = 'dead'`).run(now, now, target.jobId);
    // Sent again from this connection (the daemon's own): the notifier learns of them as of new rows.
    if (info.changes > 0) {
      const rows =
        'id' in target
          ? this.sql<[number], Due>(`${DUE} WHERE id = ?`).all(target.id)
          : this.sql<[string, number], Due>(`${DUE} WHERE job_id = ? AND state = 'pending' AND next_at = ?`).all(target.jobId, now);
      for (const due of rows) this.fresh.set(due.id, due);
    }
    return info.changes;
  }

  get(id: number): Notification | undefined {
    const row = this.sql<[number], Row>('SELECT * FROM notifications WHERE id = ?').get(id);
    return row ? fromRow(row) : undefined;
  }

  forJob(jobId: string): Notification[] {
    return this.sql<[string], Row>(`SELECT * FROM notifications WHERE job_id = ${BOUND} ORDER BY id`).all(jobId).map(fromRow);
  }
}
