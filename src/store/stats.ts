/**
 * Statistics of requests, unique emails, errors, bytes, cache hits and run
 * times, per recipe and over all ("*"), plus the request and error lists
 * behind them. The totals come from tables the writes keep (db.ts); the
 * lists from indexes.
 */
import { BOUND, COUNTED } from './db.js';
import { ERROR_COLUMNS, errorOf, iso, jobCountRows, newestJobs, sqlOf, type ErrorRow } from './views.js';
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
  /** Mean and 95th percentile (nearest rank, to three significant figures in ms) of the run time of the attempt that succeeded, per succeeded job; null without one. */
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
 * The value at `rank` (1-based) in ascending order, from counts per value
 * (run_times' rows, smallest first); null past the end.
 */
function valueAtRank(counts: ReadonlyArray<{ ms: number; n: number }>, rank: number): number | null {
  let seen = 0;
  for (const c of counts) {
    seen += Math.max(0, c.n);
    if (seen >= rank) return c.ms;
  }
  return null;
}

/**
 * The succeeded run time of `recipe` at `rank` (1-based, ascending), from
 * run_times (`table`: or what stands for it in an older database, see
 * totalsTables); null past the end.
 */
export function runTimeAtRank(store: Store, recipe: string, rank: number, table = 'run_times'): number | null {
  return valueAtRank(sqlOf(store)<[string], { ms: number; n: number }>(`SELECT ms, n FROM ${table} WHERE recipe = ${BOUND} AND n > 0 ORDER BY ms`).all(recipe), rank);
}

/** The kept totals' tables, or in a database older than them, the same counted from the rows (COUNTED). */
function totalsTables(store: Store): Record<keyof typeof COUNTED, string> {
  const kept = sqlOf(store)<[], { n: number }>(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'run_times'`).get()?.n;
  if (kept) return { recipe_totals: 'recipe_totals', recipe_emails: 'recipe_emails', run_times: 'run_times' };
  return { recipe_totals: `(${COUNTED.recipe_totals})`, recipe_emails: `(${COUNTED.recipe_emails})`, run_times: `(${COUNTED.run_times})` };
}

/**
 * Totals per recipe and over all. With `recipe`, only that recipe's jobs are
 * counted, and it appears (with zeros) even when it has none. Read from the
 * totals the writes keep (job_counts, recipe_totals, recipe_emails, run_times:
 * see db.ts), so the cost grows with recipes and addresses, not with jobs.
 */
export function statistics(store: Store, filter: { recipe?: string } = {}): Statistics {
  const sql = sqlOf(store);
  const t = totalsTables(store);
  const args = filter.recipe !== undefined ? [filter.recipe] : [];
  const totals = new Map<string, RecipeTotals>();
  const of = (recipe: string): RecipeTotals => {
    let into = totals.get(recipe);
    if (!into) totals.set(recipe, (into = empty()));
    return into;
  };
  if (filter.recipe !== undefined) of(filter.recipe);

  const only = filter.recipe !== undefined ? 'WHERE recipe = ?' : '';
  for (const r of jobCountRows(store)) {
    if (filter.recipe !== undefined && r.recipe !== filter.recipe) continue;
    const into = of(r.recipe);
    into.requests += r.n;
    if (r.state === 'failed') into.errors += r.n;
  }
  for (const r of sql<string[], { recipe: string; emails: number }>(`SELECT recipe, count(*) AS emails FROM ${t.recipe_emails} ${only} GROUP BY recipe`).all(...args)) {
    of(r.recipe).emails = r.emails;
  }
  // Run time: the attempt that succeeded, for each succeeded job.
  for (const r of sql<string[], { recipe: string; cache_hits: number; bytes: number; runs: number; run_ms: number }>(`SELECT * FROM ${t.recipe_totals} ${only}`).all(...args)) {
    if (!totals.has(r.recipe) && r.cache_hits === 0 && r.bytes === 0 && r.runs === 0) continue;
    const into = of(r.recipe);
    Object.assign(into, { cacheHits: r.cache_hits, bytes: r.bytes });
    if (r.runs > 0) {
      Object.assign(into, { meanRunSeconds: seconds(r.run_ms / r.runs), p95RunSeconds: seconds(runTimeAtRank(store, r.recipe, p95Rank(r.runs), t.run_times)) });
    }
  }

  const all = empty();
  for (const each of totals.values()) {
    all.requests += each.requests;
    all.errors += each.errors;
    all.bytes += each.bytes;
    all.cacheHits += each.cacheHits;
  }
  if (filter.recipe !== undefined) {
    Object.assign(all, { emails: of(filter.recipe).emails, meanRunSeconds: of(filter.recipe).meanRunSeconds, p95RunSeconds: of(filter.recipe).p95RunSeconds });
  } else {
    // Unique over all recipes: an address used with two recipes counts once.
    all.emails = sql<[], { n: number }>(`SELECT count(DISTINCT email) AS n FROM ${t.recipe_emails}`).get()?.n ?? 0;
    const run = sql<[], { runs: number; ms: number }>(`SELECT coalesce(sum(runs), 0) AS runs, coalesce(sum(run_ms), 0) AS ms FROM ${t.recipe_totals}`).get();
    if (run && run.runs > 0) {
      const counts = sql<[], { ms: number; n: number }>(`SELECT ms, sum(n) AS n FROM ${t.run_times} WHERE n > 0 GROUP BY ms ORDER BY ms`).all();
      Object.assign(all, { meanRunSeconds: seconds(run.ms / run.runs), p95RunSeconds: seconds(valueAtRank(counts, p95Rank(run.runs))) });
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
