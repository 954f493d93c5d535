/** The store queries behind `/metrics` (http/metrics.ts): counts read at scrape time, and timings by event. */
import type { Lane } from '../recipes/recipe.js';
import type { JobState } from './jobs.js';
import type { Channel } from './notifications.js';
import type { Store } from './store.js';
import { sqlOf } from './views.js';

/** Notifications per channel and state (pending, sent, dead): a few rows the writes keep (see db.ts). */
export function notificationCounts(store: Store): Array<{ channel: Channel; state: string; n: number }> {
  return sqlOf(store)<[], { channel: Channel; state: string; n: number }>('SELECT channel, state, n FROM notification_counts WHERE n > 0').all();
}

/** Tries to send a notification that failed, per channel. */
export function failedDeliveries(store: Store): Array<{ channel: Channel; n: number }> {
  return sqlOf(store)<[], { channel: Channel; n: number }>(
    `SELECT n.channel AS channel, count(*) AS n FROM deliveries d
       JOIN notifications n ON n.id = d.notification_id WHERE d.error IS NOT NULL GROUP BY n.channel`,
  ).all();
}

/** The newest event's id: where timings start for a fresh metrics registry. */
export function lastEventId(store: Store): number {
  return sqlOf(store)<[], { id: number | null }>('SELECT max(id) AS id FROM events').get()?.id ?? 0;
}

export type Timing =
  /** A job's first start: how long it waited since it was accepted. */
  | { kind: 'wait'; recipe: string; lane: Lane; seconds: number }
  /** An attempt's end: how long it ran, and how it ended (succeeded, failed, canceled). */
  | { kind: 'run'; recipe: string; lane: Lane; outcome: string; seconds: number };

interface TimingRow {
  id: number;
  event: string;
  at: number;
  recipe: string;
  lane: Lane;
  created_at: number;
  started_at: number | null;
  run_ms: number | null;
  outcome: string | null;
}

/**
 * Timings from the events after `afterId`, at most `limit` events: wait times
 * from first starts, run times from the attempts that ended. Returns the id to
 * continue after.
 */
export function timingsAfter(store: Store, afterId: number, limit: number): { timings: Timing[]; lastId: number; more: boolean } {
  const rows = sqlOf(store)<[number, number], TimingRow>(
    `SELECT e.id AS id, e.event AS event, e.at AS at, j.recipe AS recipe, j.lane AS lane, j.created_at AS created_at, j.started_at AS started_at,
       a.finished_at - a.started_at AS run_ms, a.outcome AS outcome
     FROM events e
     JOIN jobs j INDEXED BY jobs_timing ON j.id = e.job_id
     LEFT JOIN attempts a ON e.event <> 'started' AND a.job_id = e.job_id
       AND a.n = (SELECT max(n) FROM attempts WHERE job_id = e.job_id AND finished_at = e.at)
     WHERE e.id > ? AND e.event IN ('started', 'retrying', 'succeeded', 'failed', 'canceled')
     ORDER BY e.id LIMIT ?`,
  ).all(afterId, limit);
  const timings: Timing[] = [];
  for (const r of rows) {
    if (r.event === 'started') {
      if (r.started_at === r.at) timings.push({ kind: 'wait', recipe: r.recipe, lane: r.lane, seconds: Math.max(0, r.at - r.created_at) / 1000 });
    } else if (r.run_ms !== null && r.outcome !== null) {
      timings.push({ kind: 'run', recipe: r.recipe, lane: r.lane, outcome: r.outcome, seconds: Math.max(0, r.run_ms) / 1000 });
    }
  }
  return { timings, lastId: rows.at(-1)?.id ?? afterId, more: rows.length === limit };
}
