/**
 * Statistics of requests, unique emails, errors, bytes, cache hits and run
 * times, per recipe and over all ("*"), plus the request and error lists
 * behind them. Computed from SQLite on each call, from indexes only.
 */
import { ERROR_COLUMNS, errorOf, iso, newestJobs, sqlOf, type ErrorRow } from './views.js';
import type { Store } from './store.js';

export interface RecipeTotals {
  /** Jobs requested. */
  requests: number;
  /** Unique notification addresses (jobs' `notify.email`), compared without regard to case. */
  emails: number;
  /** Jobs that failed. */
  errors: number;
  /** Bytes of all outputs delivered (a cache hit counts the output it delivered again). */
  bytes: number;
  /** Jobs served from the output cache. */
  cacheHits: number;
  /** Mean and 95th percentile (nearest rank) of the run time of the attempt that succeeded, per succeeded job; null without one. */
  meanRunSeconds: number | null;
  p95RunSeconds: number | null;
}

export interface Statistics {
  /** `"*"` (everything the filter selects) first, then each recipe by name. */
  totals: Record<string, RecipeTotals>;
}

const ALL = '*';

function empty(): RecipeTotals {
  return { requests: 0, emails: 0, errors: 0, bytes: 0, cacheHits: 0, meanRunSeconds: null, p95RunSeconds: null };
}

const seconds = (ms: number | null): number | null => (ms === null ? null : Math.round(ms) / 1000);

/** Rank (1-based) of the nearest-rank 95th percentile of n values: ceil(0.95 n). */
export function p95Rank(n: number): number {
  return Math.max(1, Math.ceil((95 * n) / 100));
}

/**
 * Totals per recipe and over all. With `recipe`, only that recipe's jobs are
 * counted, and it appears (with zeros) even when it has none.
 */
export function statistics(store: Store, filter: { recipe?: string } = {}): Statistics {
  const sql = sqlOf(store);
  const args = filter.recipe !== undefined ? [filter.recipe] : [];
  const totals = new Map<string, RecipeTotals>();
  const of = (recipe: string): RecipeTotals => {
    let t = totals.get(recipe);
    if (!t) totals.set(recipe, (t = empty()));
    return t;
  };
  if (filter.recipe !== undefined) of(filter.recipe);

  const only = filter.recipe !== undefined ? 'WHERE recipe = ?' : '';
  for (const r of sql<string[], { recipe: string; requests: number; errors: number; cache_hits: number }>(
    `SELECT recipe, count(*) AS requests, sum(state = 'failed') AS errors, count(cached_from) AS cache_hits FROM jobs ${only} GROUP BY recipe`,
  ).all(...args)) {
    Object.assign(of(r.recipe), { requests: r.requests, errors: r.errors, cacheHits: r.cache_hits });
  }
  for (const r of sql<string[], { recipe: string; emails: number }>(
    `SELECT recipe, count(DISTINCT lower(email)) AS emails FROM jobs INDEXED BY jobs_recipe_email ${only} GROUP BY recipe`,
  ).all(...args)) {
    of(r.recipe).emails = r.emails;
  }
  // outputs.recipe is kept by a trigger (see db.ts).
  for (const r of sql<string[], { recipe: string; bytes: number }>(`SELECT recipe, sum(bytes) AS bytes FROM outputs ${only} GROUP BY recipe`).all(...args)) {
    of(r.recipe).bytes = r.bytes;
  }

  // Run time: the attempt that succeeded, for each succeeded job (attempts.recipe is kept by a trigger).
  const duration = 'finished_at - started_at';
  for (const r of sql<string[], { recipe: string; n: number; mean: number }>(
    `SELECT recipe, count(*) AS n, avg(${duration}) AS mean FROM attempts
     WHERE outcome = 'succeeded' ${filter.recipe !== undefined ? 'AND recipe = ?' : ''} GROUP BY recipe`,
  ).all(...args)) {
    const p95 = sql<[string, number], { ms: number }>(
      `SELECT ${duration} AS ms FROM attempts WHERE outcome = 'succeeded' AND recipe = ? ORDER BY ${duration} LIMIT 1 OFFSET ?`,
    ).get(r.recipe, p95Rank(r.n) - 1);
    Object.assign(of(r.recipe), { meanRunSeconds: seconds(r.mean), p95RunSeconds: seconds(p95?.ms ?? null) });
  }

  const all = empty();
  for (const t of totals.values()) {
    all.requests += t.requests;
    all.errors += t.errors;
    all.bytes += t.bytes;
    all.cacheHits += t.cacheHits;
  }
  if (filter.recipe !== undefined) {
    Object.assign(all, { emails: of(filter.recipe).emails, meanRunSeconds: of(filter.recipe).meanRunSeconds, p95RunSeconds: of(filter.recipe).p95RunSeconds });
  } else {
    // Unique over all recipes: an address used with two recipes counts once.
    all.emails = sql<[], { n: number }>('SELECT count(DISTINCT lower(email)) AS n FROM jobs').get()?.n ?? 0;
    const run = sql<[], { n: number; mean: number | null }>(`SELECT count(*) AS n, avg(${duration}) AS mean FROM attempts WHERE outcome = 'succeeded'`).get();
    if (run && run.n > 0) {
      const p95 = sql<[number], { ms: number }>(
        `SELECT ${duration} AS ms FROM attempts WHERE outcome = 'succeeded' ORDER BY ${duration} LIMIT 1 OFFSET ?`,
      ).get(p95Rank(run.n) - 1);
      Object.assign(all, { meanRunSeconds: seconds(run.mean), p95RunSeconds: seconds(p95?.ms ?? null) });
    }
  }

  const out: Record<string, RecipeTotals> = { [ALL]: all };
  for (const name of [...totals.keys()].sort()) out[name] = totals.get(name)!;
  return { totals: out };
}

export interface ListFilter {
  recipe?: string;
  email?: string;
  limit?: number;
  offset?: number;
}

export interface RequestEntry {
  id: string;
  recipe: string;
  email: string | null;
  /** When the request was accepted. */
  timestamp: string;
}

/** Requests (jobs), newest first. */
export function requestList(store: Store, filter: ListFilter = {}): { requests: RequestEntry[]; total: number; limit: number; offset: number } {
  const { rows, total, limit, offset } = newestJobs<{ id: string; recipe: string; email: string | null; created_at: number }>(store, filter, 'id, recipe, email, created_at');
  return {
    requests: rows.map((r) => ({ id: r.id, recipe: r.recipe, email: r.email, timestamp: iso(r.created_at)! })),
    total,
    limit,
    offset,
  };
}

export interface ErrorEntry {
  id: string;
  recipe: string;
  email: string | null;
  /** When the job failed. */
  timestamp: string;
  code: string;
  message: string;
}

/** Failed jobs, the most recently failed first. */
export function errorList(store: Store, filter: ListFilter = {}): { errors: ErrorEntry[]; total: number; limit: number; offset: number } {
  const { rows, total, limit, offset } = newestJobs<ErrorRow & { id: string; recipe: string; email: string | null; finished_at: number | null; created_at: number }>(
    store,
    { ...filter, onlyState: 'failed' },
    `id, recipe, email, finished_at, created_at, ${ERROR_COLUMNS}`,
    'finished',
  );
  return {
    errors: rows.map((r) => {
      const error = errorOf(r) ?? { code: 'E_UNKNOWN', message: '' };
      return { id: r.id, recipe: r.recipe, email: r.email, timestamp: iso(r.finished_at ?? r.created_at)!, code: error.code, message: error.message };
    }),
    total,
    limit,
    offset,
  };
}
