/**
 * Read-only views of jobs and of the daemon's state, for the HTTP endpoint and
 * the CLI. Every query here answers from an index (see the read-view migration
 * in db.ts) and reads only the columns it shows; secrets go through redact.ts.
 */
import type { Config } from '../config/config.js';
import type { Link } from '../delivery/deliver.js';
import { LANE_NAMES, type Lane } from '../recipes/recipe.js';
import { maskParams, scrub, secretValues } from '../redact.js';
import type { JobEvent } from '../schemas/common.js';
import { statements } from './db.js';
import type { Job, JobState } from './jobs.js';
import type { Output } from './outputs.js';
import type { Store } from './store.js';
import { formatDuration } from '../units.js';

export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'retrying', 'delivering', 'succeeded', 'failed', 'canceled'];
/** The most rows one list answer holds. */
export const MAX_LIMIT = 500;
export const DEFAULT_LIMIT = 50;

/** Prepared statements of this connection (prepared once each). */
export function sqlOf(store: Store): ReturnType<typeof statements> {
  return statements(store.db);
}

/** Milliseconds since the epoch as an ISO 8601 string (null stays null). */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Keeps a limit and offset in bounds: limit 1..MAX_LIMIT, offset >= 0. */
export function paging(p: { limit?: number; offset?: number }): { limit: number; offset: number } {
  const limit = Math.min(Math.max(Math.trunc(p.limit ?? DEFAULT_LIMIT), 1), MAX_LIMIT);
  const offset = Math.max(Math.trunc(p.offset ?? 0), 0);
  return { limit: Number.isFinite(limit) ? limit : DEFAULT_LIMIT, offset: Number.isFinite(offset) ? offset : 0 };
}

export interface JobError {
  code: string;
  message: string;
}

/**
 * The secret values of a job from its stored JSON (its params and its recipe's
 * params schema); none when that JSON cannot be read (what was stored was
 * scrubbed when written).
 */
export function storedSecrets(paramsJson: string, schemaJson: string | null): string[] {
  try {
    const params: unknown = JSON.parse(paramsJson);
    const schema: unknown = schemaJson ? JSON.parse(schemaJson) : undefined;
    return secretValues(params, schema);
  } catch {
    return [];
  }
}

/**
 * A stored error message with the job's secrets scrubbed out. Messages are
 * scrubbed when they are recorded; this is the second net, for the views.
 * `paramsJson` and `schemaJson` are the job's params and its recipe's params schema.
 */
function cleanError(code: string | null, message: string | null, paramsJson: string | null, schemaJson: string | null): JobError | null {
  if (code === null && message === null) return null;
  let text = message ?? '';
  if (text && paramsJson) text = scrub(text, storedSecrets(paramsJson, schemaJson));
  return { code: code ?? 'E_UNKNOWN', message: text };
}

/** The SQL select list that cleanError needs: params and schema only for rows that have an error. */
export const ERROR_COLUMNS = `error_code, error_message,
  CASE WHEN error_message IS NULL THEN NULL ELSE params_json END AS params_json,
  CASE WHEN error_message IS NULL THEN NULL ELSE json_extract(recipe_json, '$.params') END AS schema_json`;

export interface ErrorRow {
  error_code: string | null;
  error_message: string | null;
  params_json: string | null;
  schema_json: string | null;
}

export function errorOf(r: ErrorRow): JobError | null {
  return cleanError(r.error_code, r.error_message, r.params_json, r.schema_json);
}

/** Filters shared by the lists: every given one must match. `email` matches without regard to case. */
export interface JobFilter {
  state?: JobState;
  recipe?: string;
  email?: string;
}

export interface Where {
  where: string;
  args: string[];
  /** The index that serves this filter in this order (named, so the plan does not depend on table statistics). */
  index: string;
}

/**
 * `WHERE ...` (or nothing), its arguments, and the index to read for a filter
 * whose rows are wanted newest `created` (or `finished`) first. An address is
 * the most selective filter: with one, the address index is read and the rest
 * checked row by row.
 */
function whereOf(f: JobFilter & { onlyState?: JobState }, order: 'created' | 'finished' = 'created'): Where {
  const parts: string[] = [];
  const args: string[] = [];
  const state = f.onlyState ?? f.state;
  if (state !== undefined) {
    parts.push('state = ?');
    args.push(state);
  }
  if (f.recipe !== undefined) {
    parts.push('recipe = ?');
    args.push(f.recipe);
  }
  if (f.email !== undefined) {
    parts.push('lower(email) = lower(?)');
    args.push(f.email);
  }
  // The finished-order indexes hold ended jobs alone (finished_at set): the query says so, or cannot use them.
  if (order === 'finished') parts.push('finished_at IS NOT NULL');
  let index: string;
  if (f.email !== undefined) index = 'jobs_email';
  else if (f.recipe !== undefined && state !== undefined) index = order === 'created' ? 'jobs_recipe_state' : 'jobs_recipe_finished';
  else if (f.recipe !== undefined) index = 'jobs_recipe';
  else if (state !== undefined) index = order === 'created' ? 'jobs_state_created' : 'jobs_state_finished';
  else index = 'jobs_created';
  return { where: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args, index };
}

/**
 * One page of jobs matching `w`, in `order` (which ends in `rowid`, so the
 * order is total): the page's rowids are found in the index first and only
 * those rows are read, so a deep offset skips index entries, not wide rows.
 */
function page<R>(store: Store, columns: string, w: Where, order: string, limit: number, offset: number): R[] {
  return sqlOf(store)<Array<string | number>, R>(
    `SELECT ${columns} FROM jobs WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY ${w.index} ${w.where} ORDER BY ${order} LIMIT ? OFFSET ?)
     ORDER BY ${order}`,
  ).all(...w.args, limit, offset);
}

/** How many jobs match `w`. */
function countOf(store: Store, w: Where): number {
  return sqlOf(store)<string[], { n: number }>(`SELECT count(*) AS n FROM jobs INDEXED BY ${w.index} ${w.where}`).get(...w.args)?.n ?? 0;
}

export interface JobSummary {
  id: string;
  requestId: string | null;
  recipe: string;
  state: JobState;
  lane: Lane;
  priority: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: JobError | null;
}

export interface JobList {
  jobs: JobSummary[];
  /** How many jobs match the filter (all pages). */
  total: number;
  limit: number;
  offset: number;
}

interface SummaryRow extends ErrorRow {
  id: string;
  request_id: string | null;
  recipe: string;
  state: JobState;
  lane: Lane;
  priority: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

/** One page of the jobs matching `filter`, newest `created` (or `finished`) first, with how many match in all. */
export function newestJobs<R>(
  store: Store,
  filter: JobFilter & { onlyState?: JobState; limit?: number; offset?: number },
  columns: string,
  order: 'created' | 'finished' = 'created',
): { rows: R[]; total: number; limit: number; offset: number } {
  const { limit, offset } = paging(filter);
  const where = whereOf(filter, order);
  const total = countOf(store, where);
  const rows = offset >= total ? [] : page<R>(store, columns, where, `${order}_at DESC, rowid DESC`, limit, offset);
  return { rows, total, limit, offset };
}

/** Jobs matching the filter, newest first, one page of them, with the total that match. */
export function listJobs(store: Store, filter: JobFilter & { limit?: number; offset?: number } = {}): JobList {
  const { rows, total, limit, offset } = newestJobs<SummaryRow>(
    store,
    filter,
    `id, request_id, recipe, state, lane, priority, created_at, started_at, finished_at, ${ERROR_COLUMNS}`,
  );
  return {
    jobs: rows.map((r) => ({
      id: r.id,
      requestId: r.request_id,
      recipe: r.recipe,
      state: r.state,
      lane: r.lane,
      priority: r.priority,
      createdAt: iso(r.created_at)!,
      startedAt: iso(r.started_at),
      finishedAt: iso(r.finished_at),
      error: errorOf(r),
    })),
    total,
    limit,
    offset,
  };
}

/** Makes download links for outputs (delivery/deliver.ts `linksFor`, bound to a Context). */
export type LinkMaker = (outputs: readonly Output[], since: number) => Promise<Link[]>;

export interface JobDetail {
  id: string;
  requestId: string | null;
  recipe: string;
  recipeVersion: string;
  state: JobState;
  lane: Lane;
  priority: number;
  /** The request's params, `writeOnly` values masked. */
  params: Record<string, unknown>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  notBefore: string | null;
  attempts: Array<{ n: number; startedAt: string; finishedAt: string | null; outcome: string | null; error: JobError | null }>;
  events: Array<{ event: JobEvent; at: string }>;
  /** `link` is null when no link maker was given, when the link has expired (`expiresAt`), or when it cannot be made now (e.g. S3 no longer configured). */
  outputs: Array<{ name: string; bytes: number; sha256: string; link: string | null; expiresAt: string | null }>;
  /** Why a queued or retrying job waits, and its place in its lane (1 is next); null otherwise. */
  /** Why it waits; `position` in its lane (null while it waits in delivery: it holds no place in a lane). */
  waiting: { reason: string; position: number | null } | null;
  error: JobError | null;
  /** The job whose output this one reused (a cache hit), or null. */
  cachedFrom: string | null;
}

export interface DetailOptions {
  /** Makes the outputs' download links; without it, `link` is null. */
  links?: LinkMaker;
  /** Now, for link expiry (an expired link is shown as null). @default Date.now() */
  now?: number;
}

/**
 * One job by its id or its request id, as an admin may see it: params masked
 * with the schema of the recipe snapshot stored with the job, error messages
 * scrubbed, outputs with links when a link maker is given.
 */
export async function jobDetail(store: Store, idOrRequestId: string, options: DetailOptions = {}): Promise<JobDetail | undefined> {
  const { links, now = Date.now() } = options;
  const job = store.jobs.find(idOrRequestId);
  if (!job) return undefined;
  const schema = job.recipeSource.params;
  const secrets = secretValues(job.params, schema);
  const clean = (code: string | null, message: string | null): JobError | null =>
    code === null && message === null ? null : { code: code ?? 'E_UNKNOWN', message: scrub(message ?? '', secrets) };

  const outputs = store.outputs.forJob(job.id);
  let made: Array<Link | null> = outputs.map(() => null);
  if (links && outputs.length > 0) {
    // A cache hit's local files are its first job's and expire with them.
    const source = job.cachedFrom ? store.jobs.get(job.cachedFrom) : undefined;
    const since = source?.finishedAt ?? job.finishedAt ?? now;
    try {
      made = await links(outputs, since);
    } catch {
      /* links cannot be made now: show the outputs without them */
    }
  }
  const pending = job.state === 'queued' || job.state === 'retrying';
  return {
    id: job.id,
    requestId: job.requestId,
    recipe: job.recipe,
    recipeVersion: job.recipeVersion,
    state: job.state,
    lane: job.lane,
    priority: job.priority,
    params: maskParams(job.params, schema),
    createdAt: iso(job.createdAt)!,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    notBefore: iso(job.notBefore),
    attempts: store.jobs.attemptsOf(job.id).map((a) => ({
      n: a.n,
      startedAt: iso(a.startedAt)!,
      finishedAt: iso(a.finishedAt),
      outcome: a.outcome,
      error: clean(a.errorCode, a.errorMessage),
    })),
    events: store.jobs.events(job.id).map((e) => ({ event: e.event, at: iso(e.at)! })),
    outputs: outputs.map((o, i) => ({
      name: o.name,
      bytes: o.bytes,
      sha256: o.sha256,
      link: made[i] && made[i]!.expiresAt > now ? made[i]!.url : null,
      expiresAt: made[i] ? iso(made[i]!.expiresAt) : null,
    })),
    waiting: pending
      ? { reason: job.waitReason ?? waitingFallback(job.state, job.lane, job.nextAttemptAt), position: store.jobs.position(job) }
      : job.state === 'delivering'
        ? { reason: deliveryReason(job, now), position: null }
        : null,
    error: clean(job.errorCode, job.errorMessage),
    cachedFrom: job.cachedFrom,
  };
}

/** "delivering: S3 at … refused the connection; next try in 2m (try 4)". */
function deliveryReason(job: Job, now: number): string {
  const reason = job.waitReason ?? 'delivering its outputs';
  if (job.nextAttemptAt === null) return reason;
  return `${reason}; next try in ${formatDuration(Math.max(0, job.nextAttemptAt - now))} (try ${job.deliveryTries + 1})`;
}

function waitingFallback(state: JobState, lane: Lane, nextAttemptAt: number | null): string {
  if (state === 'retrying' && nextAttemptAt !== null) return `waiting to be retried at ${iso(nextAttemptAt)}`;
  return `waiting for its turn in the ${lane} lane`;
}

export interface LaneStatus {
  concurrency: number;
  running: number;
  /** Queued and retrying jobs of the lane. */
  queued: number;
}

export interface Status {
  version: string;
  /** Null when no daemon start time is known (the CLI reading a stopped daemon's database). */
  uptimeSeconds: number | null;
  /** Jobs that may run at once: the lanes' concurrencies summed. */
  workers: number;
  /** Queued and retrying jobs, all lanes. */
  queueLength: number;
  /** Jobs whose steps succeeded and whose outputs wait to be delivered (an S3 outage, a full disk). */
  delivering: number;
  /** Jobs that ended, in any state. */
  processed: number;
  failed: number;
  lanes: Record<Lane, LaneStatus>;
  schedules: ScheduleStatus[];
}

export interface ScheduleStatus {
  recipe: string;
  schedule: string;
  /** ISO time of the next run; a time already past means a run missed while hopper was stopped, made at its start. */
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastJob: string | null;
}

/** Scheduled recipes and when they run next (none from a database older than schedules). */
export function scheduleStatus(store: Store): ScheduleStatus[] {
  const known = sqlOf(store)<[], { n: number }>(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schedules'`).get()?.n;
  if (!known) return [];
  return store.schedules.all().map((s) => ({ recipe: s.recipe, schedule: s.pattern, nextRunAt: iso(s.nextAt), lastRunAt: iso(s.lastRunAt), lastJob: s.lastJobId }));
}

export interface JobCount {
  recipe: string;
  lane: Lane;
  state: JobState;
  n: number;
}

/**
 * Jobs per recipe, lane and state: a few rows the writes keep up to date (the
 * job_counts migration). A database older than that (the CLI reading an older
 * daemon's) is counted the long way.
 */
export function jobCountRows(store: Store): JobCount[] {
  try {
    return sqlOf(store)<[], JobCount>('SELECT recipe, lane, state, n FROM job_counts WHERE n > 0').all();
  } catch (err) {
    if (!/no such table: job_counts/.test((err as Error).message)) throw err;
    return sqlOf(store)<[], JobCount>('SELECT recipe, lane, state, count(*) AS n FROM jobs GROUP BY recipe, lane, state').all();
  }
}

/** Running and queued (+ retrying) jobs per lane. */
export function laneCounts(store: Store, rows: readonly JobCount[] = jobCountRows(store)): Record<Lane, { running: number; queued: number }> {
  const out: Record<Lane, { running: number; queued: number }> = { fast: { running: 0, queued: 0 }, slow: { running: 0, queued: 0 } };
  for (const r of rows) {
    const lane = (out[r.lane] ??= { running: 0, queued: 0 });
    if (r.state === 'running') lane.running += r.n;
    else if (r.state === 'queued' || r.state === 'retrying') lane.queued += r.n;
  }
  return out;
}

/**
 * The daemon at a glance, from the store and the config. `startedAt` is when
 * the daemon started (omit it when reading a stopped daemon's database).
 */
export function daemonStatus(store: Store, config: Pick<Config, 'lanes'>, o: { version: string; now: number; startedAt?: number }): Status {
  const rows = jobCountRows(store);
  const lanes = laneCounts(store, rows);
  const inState = (state: JobState): number => rows.reduce((sum, r) => sum + (r.state === state ? r.n : 0), 0);
  const out = {} as Record<Lane, LaneStatus>;
  for (const lane of LANE_NAMES) out[lane] = { concurrency: config.lanes[lane].concurrency, running: lanes[lane].running, queued: lanes[lane].queued };
  return {
    version: o.version,
    uptimeSeconds: o.startedAt === undefined ? null : Math.max(0, Math.floor((o.now - o.startedAt) / 1000)),
    workers: LANE_NAMES.reduce((sum, l) => sum + config.lanes[l].concurrency, 0),
    queueLength: LANE_NAMES.reduce((sum, l) => sum + lanes[l].queued, 0),
    delivering: inState('delivering'),
    processed: inState('succeeded') + inState('failed') + inState('canceled'),
    failed: inState('failed'),
    lanes: out,
    schedules: scheduleStatus(store),
  };
}
