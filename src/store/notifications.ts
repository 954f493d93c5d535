import type { JobEvent } from '../schemas/common.js';
import { statements, type Db } from './db.js';

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

/** The durable outbox: rows written with their job event, sent and retried by notify/. */
export class NotificationStore {
  private readonly sql: ReturnType<typeof statements>;
  constructor(db: Db) {
    this.sql = statements(db);
  }

  insert(n: NewNotification, jobId: string, at: number): void {
    this.sql('INSERT INTO notifications (job_id, event, channel, target, payload, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(jobId, n.event, n.channel, n.target, JSON.stringify(n.payload), at, at);
  }

  /**
   * The next due row of each receiver (oldest first): all email counts as one
   * receiver (one mail server), each webhook URL as one. One row per receiver,
   * so a receiver with a long backlog cannot crowd the others out of the batch.
   */
  dueByReceiver(now: number, limit = 50): Array<Pick<Notification, 'id' | 'channel' | 'target'>> {
    // Only what picks a row: the payload (maybe inline files) is read for the rows started.
    return this.sql<[number, number], Pick<Notification, 'id' | 'channel' | 'target'>>(
      `SELECT id, channel, target FROM (
         SELECT id, channel, target, next_at, row_number() OVER (PARTITION BY channel, CASE channel WHEN 'email' THEN '' ELSE target END ORDER BY next_at, id) AS nth
         FROM notifications WHERE state = 'pending' AND next_at <= ?
       ) WHERE nth = 1 ORDER BY next_at, id LIMIT ?`,
    ).all(now, limit);
  }

  /** When the next pending row falls due after `now` (rows due already are not counted). */
  nextDueAfter(now: number): number | null {
    const row = this.sql<[number], { t: number | null }>(`SELECT min(next_at) AS t FROM notifications WHERE state = 'pending' AND next_at > ?`).get(now);
    return row?.t ?? null;
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
    return this.sql<[number], { at: number; status: number | null; error: string | null }>('SELECT at, status, error FROM deliveries WHERE notification_id = ? ORDER BY id').all(id);
  }

  /** Sends dead notifications again (`hopper notify resend`): by notification id, or all of a job's. */
  resend(target: { id: number } | { jobId: string }, now: number): number {
    const info =
      'id' in target
        ? this.sql(`UPDATE notifications SET state = 'pending', attempts = 0, next_at = ?, created_at = ? WHERE id = ? AND state = 'dead'`).run(now, now, target.id)
        : this.sql(`UPDATE notifications SET state = 'pending', attempts = 0, next_at = ?, created_at = ? WHERE job_id = ? AND state = 'dead'`).run(now, now, target.jobId);
    return info.changes;
  }

  get(id: number): Notification | undefined {
    const row = this.sql<[number], Row>('SELECT * FROM notifications WHERE id = ?').get(id);
    return row ? fromRow(row) : undefined;
  }

  forJob(jobId: string): Notification[] {
    return this.sql<[string], Row>('SELECT * FROM notifications WHERE job_id = ? ORDER BY id').all(jobId).map(fromRow);
  }
}
