import { randomBytes } from 'node:crypto';
import type { Lane, RecipeDoc } from '../recipes/recipe.js';
import { randomHex } from '../random.js';
import type { JobEvent } from '../schemas/common.js';
import { atomically } from './atomic.js';
import { BOUND, statements, type Db } from './db.js';
import type { NewNotification } from './notifications.js';

export type JobState = 'queued' | 'running' | 'retrying' | 'delivering' | 'succeeded' | 'failed' | 'canceled';
export const END_STATES: readonly JobState[] = ['succeeded', 'failed', 'canceled'];

export interface RequestNotify {
  email?: string;
  webhook?: string;
}

export interface Job {
  id: string;
  requestId: string | null;
  recipe: string;
  recipeVersion: string;
  recipeSource: RecipeDoc;
  params: Record<string, unknown>;
  notify: RequestNotify;
  email: string | null;
  lane: Lane;
  priority: number;
  state: JobState;
  notBefore: number | null;
  nextAttemptAt: number | null;
  attempts: number;
  cancelRequested: boolean;
  waitReason: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Same recipe version and params: what the output cache matches on (set when the recipe caches). */
  cacheKey: string | null;
  /** The job whose output this one reused (a cache hit), if any. */
  cachedFrom: string | null;
  /** Since when it has waited in delivery (its steps succeeded then); null when not delivering. */
  deliverySince: number | null;
  /** Delivery tries that failed since then. */
  deliveryTries: number;
}

interface JobRow {
  id: string;
  request_id: string | null;
  request_hash: string;
  recipe: string;
  recipe_version: string;
  recipe_json: string;
  params_json: string;
  notify_json: string;
  email: string | null;
  lane: Lane;
  priority: number;
  state: JobState;
  not_before: number | null;
  next_attempt_at: number | null;
  attempts: number;
  cancel_requested: number;
  wait_reason: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  error_code: string | null;
  error_message: string | null;
  cache_key: string | null;
  cached_from: string | null;
  delivery_since: number | null;
  delivery_tries: number;
}

/**
 * The recipe snapshots jobs were accepted with, parsed once: a queue of
 * 10,000 jobs of one recipe holds one copy, not 10,000. Read-only. Looked up
 * by the snapshot's text itself (what masks a job's secrets is read from it,
 * so no key short of the text may stand for it).
 */
const MAX_SOURCES = 256;
const sources = new Map<string, RecipeDoc>();

function sourceOf(json: string): RecipeDoc {
  let source = sources.get(json);
  if (!source) {
    if (sources.size >= MAX_SOURCES) sources.clear();
    source = JSON.parse(json) as RecipeDoc;
    sources.set(json, source);
  }
  return source;
}

function fromRow(r: JobRow): Job {
  return {
    id: r.id,
    requestId: r.request_id,
    recipe: r.recipe,
    recipeVersion: r.recipe_version,
    recipeSource: sourceOf(r.recipe_json),
    params: JSON.parse(r.params_json) as Record<string, unknown>,
    notify: JSON.parse(r.notify_json) as RequestNotify,
    email: r.email,
    lane: r.lane,
    priority: r.priority,
    state: r.state,
    notBefore: r.not_before,
    nextAttemptAt: r.next_attempt_at,
    attempts: r.attempts,
    cancelRequested: r.cancel_requested === 1,
    waitReason: r.wait_reason,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    cacheKey: r.cache_key,
    cachedFrom: r.cached_from,
    deliverySince: r.delivery_since,
    deliveryTries: r.delivery_tries,
  };
}

/**
 * Sortable and readable: `20261124-103355-002a1c07b2` (the caller checks it is
 * free). After the second comes a counter of the ids this store made (4 hex
 * digits, wrapping), then 24 random bits: ids made one after another sort one
 * after another, so a burst's rows in every index keyed by job id share pages,
 * and a commit rewrites fewer of them (measured: ~15 % less WAL per job).
 */
export function newJobId(now: number, sequence: number): string {
  const iso = new Date(now).toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${(sequence & 0xffff).toString(16).padStart(4, '0')}${randomHex(6)}`;
}

export interface NewJob {
  requestId: string | null;
  requestHash: string;
  recipe: string;
  recipeVersion: string;
  recipeSource: RecipeDoc;
  params: Record<string, unknown>;
  notify: RequestNotify;
  lane: Lane;
  priority: number;
  notBefore: number | null;
  sourceFile: string;
  cacheKey: string | null;
}

export type AcceptOutcome =
  | { kind: 'created'; job: Job }
  | { kind: 'existing'; job: Job; reason: 'same file' | 'same id' }
  | { kind: 'conflict'; job: Job };

export interface Finish {
  state: 'succeeded' | 'failed' | 'canceled';
  error?: { code: string; message: string };
  notifications: NewNotification[];
}

/** Jobs, their attempts and events. Each state change writes its event in the same transaction. */
export class JobStore {
  private readonly db: Db;
  private readonly insertNotification: (n: NewNotification, jobId: string, at: number) => void;

  constructor(db: Db, insertNotification: (n: NewNotification, jobId: string, at: number) => void) {
    this.db = db;
    this.sql = statements(db);
    this.insertNotification = insertNotification;
  }

  private readonly sql: ReturnType<typeof statements>;
  /** The counter in new job ids (see newJobId), from a random start. */
  private sequence = randomBytes(2).readUInt16BE();

  get(id: string): Job | undefined {
    const row = this.sql<[string], JobRow>('SELECT * FROM jobs WHERE id = ?').get(id);
    return row ? fromRow(row) : undefined;
  }

  /** When a job ended (null while it has not), without reading its wide row; undefined when there is no such job. */
  finishedAt(id: string): { finished: number | null } | undefined {
    return this.sql<[string], { finished: number | null }>('SELECT finished_at AS finished FROM jobs WHERE id = ?').get(id);
  }

  /** A job by its id or by the request's own `id`. */
  find(idOrRequestId: string): Job | undefined {
    const row = this.sql<[string], JobRow>('SELECT * FROM jobs WHERE id = ?').get(idOrRequestId) ?? this.sql<[string], JobRow>('SELECT * FROM jobs WHERE request_id = ?').get(idOrRequestId);
    return row ? fromRow(row) : undefined;
  }

  /** The job a file with this intake key became, if it was accepted before (a crash before the move). */
  intakeSeen(key: string): { kind: string; jobId: string | null } | undefined {
    const row = this.sql<[string], { kind: string; job_id: string | null }>('SELECT kind, job_id FROM intake WHERE key = ?').get(key);
    return row ? { kind: row.kind, jobId: row.job_id } : undefined;
  }

  recordIntake(key: string, kind: string, jobId: string | null, file: string, at: number): void {
    this.sql('INSERT OR IGNORE INTO intake (key, kind, job_id, file, at) VALUES (?, ?, ?, ?, ?)').run(key, kind, jobId, file, at);
  }

  private addEvent(jobId: string, event: JobEvent, at: number, detail?: string): void {
    this.sql('INSERT INTO events (job_id, event, at, detail) VALUES (?, ?, ?, ?)').run(jobId, event, at, detail ?? null);
  }

  /**
   * Stores a request as a job in one transaction with its intake record and
   * `requested` event, unless the same file or the same request id was seen.
   */
  accept(input: NewJob, intakeKey: string, at: number, notifications: (job: Job) => NewNotification[]): AcceptOutcome {
    return atomically(this.db, (): AcceptOutcome => {
      const seen = this.intakeSeen(intakeKey);
      if (seen?.jobId) {
        const job = this.get(seen.jobId);
        if (job) return { kind: 'existing', job, reason: 'same file' };
      }
      if (input.requestId) {
        const row = this.sql<[string], JobRow>('SELECT * FROM jobs WHERE request_id = ?').get(input.requestId);
        if (row) {
          const job = fromRow(row);
          // A conflicting file is rejected, so it must not be remembered as taken.
          if (row.request_hash !== input.requestHash) return { kind: 'conflict', job };
          this.recordIntake(intakeKey, 'request', row.id, input.sourceFile, at);
          return { kind: 'existing', job, reason: 'same id' };
        }
      }
      let id = newJobId(at, ++this.sequence);
      while (this.sql<[string], { n: number }>('SELECT 1 AS n FROM jobs WHERE id = ?').get(id)) id = newJobId(at, ++this.sequence);
      this.sql(
          `INSERT INTO jobs (id, request_id, request_hash, recipe, recipe_version, recipe_json, params_json, notify_json,
             email, lane, priority, state, not_before, created_at, source_file, cache_key)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
        )
        .run(
          id,
          input.requestId,
          input.requestHash,
          input.recipe,
          input.recipeVersion,
          JSON.stringify(input.recipeSource),
          JSON.stringify(input.params),
          JSON.stringify(input.notify),
          input.notify.email ?? null,
          input.lane,
          input.priority,
          input.notBefore,
          at,
          input.sourceFile,
          input.cacheKey,
        );
      this.recordIntake(intakeKey, 'request', id, input.sourceFile, at);
      this.addEvent(id, 'requested', at);
      const job = this.get(id)!;
      for (const n of notifications(job)) this.insertNotification(n, id, at);
      return { kind: 'created', job };
    });
  }

  /** Queued or retrying jobs, in the order a lane takes them. */
  pending(): Job[] {
    return this.sql<[], JobRow>(`SELECT * FROM jobs WHERE state IN ('queued', 'retrying') ORDER BY priority DESC, created_at, id`)
      .all()
      .map(fromRow);
  }

  /** Ids of queued or retrying jobs: cheap enough to look at every few seconds. */
  pendingIds(): string[] {
    return this.sql<[], { id: string }>(`SELECT id FROM jobs WHERE state IN ('queued', 'retrying')`).all().map((r) => r.id);
  }

  running(): Job[] {
    return this.sql<[], JobRow>(`SELECT * FROM jobs WHERE state = 'running'`).all().map(fromRow);
  }

  /** Jobs whose steps succeeded and whose outputs wait to be delivered: their ids and next tries (what the delivery stage schedules by). */
  delivering(): Array<{ id: string; nextAttemptAt: number | null }> {
    return this.sql<[], { id: string; nextAttemptAt: number | null }>(`SELECT id, next_attempt_at AS nextAttemptAt FROM jobs WHERE state = 'delivering' ORDER BY next_attempt_at, id`).all();
  }

  /**
   * The steps succeeded: the attempt ends as such, and the job waits in
   * delivery with what they produced (the caller records that in the same unit).
   */
  markDelivering(id: string, at: number): void {
    atomically(this.db, () => {
      this.closeAttempt(id, at, 'succeeded');
      this.sql(`UPDATE jobs SET state = 'delivering', delivery_since = ?, delivery_tries = 0, next_attempt_at = NULL, wait_reason = ? WHERE id = ?`)
        .run(at, 'delivering its outputs', id);
    });
  }

  /** A delivery try failed and another comes at `nextAt`; `reason` is what people read meanwhile. */
  deliveryWaits(id: string, tries: number, nextAt: number, reason: string): void {
    this.sql(`UPDATE jobs SET delivery_tries = ?, next_attempt_at = ?, wait_reason = ? WHERE id = ? AND state = 'delivering'`).run(tries, nextAt, reason, id);
  }

  /**
   * `hopper retry` of a job that failed in delivery: its outputs are delivered
   * again (the steps do not run). Returns whether the job was such a one.
   */
  redeliver(id: string, at: number): boolean {
    return atomically(this.db, () => {
      const info = this.sql(
        `UPDATE jobs SET state = 'delivering', delivery_since = ?, delivery_tries = 0, finished_at = NULL, error_code = NULL,
           error_message = NULL, cancel_requested = 0, next_attempt_at = NULL, wait_reason = ?
         WHERE id = ? AND state = 'failed' AND EXISTS (SELECT 1 FROM produced WHERE job_id = ?)`,
      ).run(at, 'delivering its outputs (again by hand)', id, id);
      if (info.changes > 0) this.addEvent(id, 'retrying', at, 'delivery tried again by hand (hopper retry)');
      return info.changes > 0;
    });
  }

  /** Start times of attempts since `since`, per recipe: what rate limits count. */
  startsSince(since: number): Array<{ recipe: string; at: number }> {
    return this.sql<[number], { recipe: string; at: number }>(
        'SELECT j.recipe AS recipe, a.started_at AS at FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.started_at >= ? ORDER BY a.started_at',
      )
      .all(since);
  }

  /**
   * Which attempt the next run of a job is, as retries count them (a run cut
   * short by a stop does not count), and which run (every start counts).
   */
  nextRun(id: string): { attempt: number; run: number } {
    // The subquery names its job by the outer row (`jobs.id`), not by a bound `?`:
    // max(n) over `job_id = ?` reads the (job_id, n) index in order, and SQLite
    // then prepares the statement again at every new binding of that `?`
    // (~10 µs here against ~2, and several times that in the busy daemon).
    const row = this.sql<[string], { attempts: number; runs: number }>(
      'SELECT attempts, (SELECT coalesce(max(n), 0) FROM attempts WHERE job_id = jobs.id) AS runs FROM jobs WHERE id = ?',
    ).get(id);
    return { attempt: (row?.attempts ?? 0) + 1, run: (row?.runs ?? 0) + 1 };
  }

  /** Marks a run started, as `nextRun` numbered it (read before: the steps may start before this is committed). */
  markStarted(id: string, at: number, numbers: { attempt: number; run: number }, notifications: NewNotification[]): void {
    atomically(this.db, () => {
      this.sql(
        `UPDATE jobs SET state = 'running', attempts = ?, started_at = coalesce(started_at, ?),
           next_attempt_at = NULL, wait_reason = NULL WHERE id = ?`,
      ).run(numbers.attempt, at, id);
      this.sql('INSERT INTO attempts (job_id, n, started_at) VALUES (?, ?, ?)').run(id, numbers.run, at);
      // What an earlier run produced is not this one's to deliver.
      this.sql('DELETE FROM produced WHERE job_id = ?').run(id);
      this.addEvent(id, 'started', at, `attempt ${numbers.attempt}`);
      for (const note of notifications) this.insertNotification(note, id, at);
    });
  }

  private closeAttempt(id: string, at: number, outcome: string, error?: { code: string; message: string }): void {
    // The latest attempt, found by a correlated subquery: see nextRun for why not by `?`.
    this.sql(
        `UPDATE attempts SET finished_at = ?, outcome = ?, error_code = ?, error_message = ?
         WHERE job_id = ? AND n = (SELECT max(n) FROM attempts AS latest WHERE latest.job_id = attempts.job_id) AND finished_at IS NULL`,
      )
      .run(at, outcome, error?.code ?? null, error?.message ?? null, id);
  }

  /** Ends a job: state, attempt, event and the notifications it causes, together. */
  finish(id: string, at: number, f: Finish): void {
    atomically(this.db, () => {
      this.closeAttempt(id, at, f.state, f.error);
      this.sql(
          `UPDATE jobs SET state = ?, finished_at = ?, error_code = ?, error_message = ?, wait_reason = NULL,
             next_attempt_at = NULL WHERE id = ?`,
        )
        .run(f.state, at, f.error?.code ?? null, f.error?.message ?? null, id);
      this.addEvent(id, f.state, at, f.error?.message);
      for (const n of f.notifications) this.insertNotification(n, id, at);
    });
  }

  /** A failed attempt with attempts left: wait, then run again. */
  retryLater(id: string, at: number, nextAt: number, error: { code: string; message: string }, notifications: NewNotification[]): void {
    atomically(this.db, () => {
      this.closeAttempt(id, at, 'failed', error);
      this.sql(`UPDATE jobs SET state = 'retrying', next_attempt_at = ?, error_code = ?, error_message = ? WHERE id = ?`)
        .run(nextAt, error.code, error.message, id);
      this.addEvent(id, 'retrying', at, error.message);
      for (const n of notifications) this.insertNotification(n, id, at);
    });
  }

  /** An attempt cut short by hopper stopping: it does not count against the job's retries. */
  requeue(id: string, at: number, why = { code: 'E_SHUTDOWN', message: 'hopper stopped while the job ran' }): void {
    atomically(this.db, () => {
      this.closeAttempt(id, at, 'interrupted', why);
      this.sql(`UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0) WHERE id = ?`).run(id);
      // Stored, not notified: to the requester the job simply runs again.
      this.addEvent(id, 'retrying', at, `requeued: ${why.message}; this run does not count as an attempt`);
    });
  }

  /** A failed or canceled job sent back to the queue by hand (`hopper retry`): a fresh retry budget. */
  resubmit(id: string, at: number): void {
    atomically(this.db, () => {
      const info = this.sql(
        `UPDATE jobs SET state = 'queued', attempts = 0, finished_at = NULL, error_code = NULL, error_message = NULL,
           cancel_requested = 0, next_attempt_at = NULL, wait_reason = NULL WHERE id = ? AND state IN ('failed', 'canceled')`,
      ).run(id);
      if (info.changes > 0) this.addEvent(id, 'retrying', at, 'queued again by hand (hopper retry)');
    });
  }

  /** The newest succeeded job with this cache key that finished since `since` (and is still a cache source). */
  cacheSource(key: string, since: number): { id: string; finishedAt: number } | undefined {
    // Asked for each waiting cached job on every dispatch: only the columns used, not the wide row.
    return this.sql<[string, number], { id: string; finishedAt: number }>(
      `SELECT id, finished_at AS finishedAt FROM jobs WHERE cache_key = ${BOUND} AND state = 'succeeded' AND cached_from IS NULL AND finished_at >= ?
       ORDER BY finished_at DESC LIMIT 1`,
    ).get(key, since);
  }

  /** An earlier job with this cache key still on its way: a later identical request joins it. */
  inFlight(key: string, before: Job): { id: string } | undefined {
    return this.sql<[string, number, number, string], { id: string }>(
      `SELECT id FROM jobs WHERE cache_key = ? AND state IN ('queued', 'running', 'retrying', 'delivering') AND cached_from IS NULL
         AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at LIMIT 1`,
    ).get(key, before.createdAt, before.createdAt, before.id);
  }

  markCachedFrom(id: string, source: string): void {
    this.sql('UPDATE jobs SET cached_from = ? WHERE id = ?').run(source, id);
  }

  /** Forgets cached outputs (`hopper cache clear`): they stay downloadable, but are not reused. */
  clearCache(recipe?: string): number {
    const info = recipe
      ? this.sql('UPDATE jobs SET cache_key = NULL WHERE cache_key IS NOT NULL AND recipe = ?').run(recipe)
      : this.sql('UPDATE jobs SET cache_key = NULL WHERE cache_key IS NOT NULL').run();
    return info.changes;
  }

  /** Deletes up to `limit` jobs that ended before `before` (with their attempts, events, outputs, notifications). */
  deleteEndedBefore(before: number, limit: number): number {
    return atomically(this.db, () => {
      const ids = this.sql<[number, number], { id: string }>(
        `SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'canceled') AND finished_at < ? LIMIT ?`,
      )
        .all(before, limit)
        .map((r) => r.id);
      for (const id of ids) {
        // A cache hit whose source goes keeps its rows; only the reference goes.
        this.sql('UPDATE jobs SET cached_from = NULL WHERE cached_from = ?').run(id);
        this.sql('DELETE FROM intake WHERE job_id = ?').run(id);
        this.sql('DELETE FROM jobs WHERE id = ?').run(id);
      }
      return ids.length;
    });
  }

  requestCancel(id: string): void {
    this.sql('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(id);
  }

  setWaitReason(id: string, reason: string | null): void {
    this.sql('UPDATE jobs SET wait_reason = ? WHERE id = ?').run(reason, id);
  }

  /** Where a queued job stands in its lane: 1 is next. */
  position(job: Job): number {
    const row = this.sql<[string, number, number, number, number, string], { n: number }>(
        `SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'retrying') AND lane = ?
           AND (priority > ? OR (priority = ? AND (created_at < ? OR (created_at = ? AND id < ?))))`,
      )
      .get(job.lane, job.priority, job.priority, job.createdAt, job.createdAt, job.id);
    return (row?.n ?? 0) + 1;
  }

  events(id: string): Array<{ event: JobEvent; at: number; detail: string | null }> {
    return this.sql<[string], { event: JobEvent; at: number; detail: string | null }>(`SELECT event, at, detail FROM events WHERE job_id = ${BOUND} ORDER BY id`)
      .all(id);
  }

  attemptsOf(id: string): Array<{ n: number; startedAt: number; finishedAt: number | null; outcome: string | null; errorCode: string | null; errorMessage: string | null }> {
    return this.sql<[string], { n: number; started_at: number; finished_at: number | null; outcome: string | null; error_code: string | null; error_message: string | null }>(
        `SELECT * FROM attempts WHERE job_id = ${BOUND} ORDER BY n`,
      )
      .all(id)
      .map((a) => ({ n: a.n, startedAt: a.started_at, finishedAt: a.finished_at, outcome: a.outcome, errorCode: a.error_code, errorMessage: a.error_message }));
  }

  list(filter: { state?: string; recipe?: string; limit?: number; offset?: number } = {}): Job[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (filter.state) {
      where.push('state = ?');
      args.push(filter.state);
    }
    if (filter.recipe) {
      where.push('recipe = ?');
      args.push(filter.recipe);
    }
    args.push(filter.limit ?? 50, filter.offset ?? 0);
    return this.sql<Array<string | number>, JobRow>(
        `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
      )
      .all(...args)
      .map(fromRow);
  }
}
