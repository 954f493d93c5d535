/**
 * Jobs written straight into the store with SQL, in any state and at any
 * time: fixtures for the read views (statistics, lists, metrics) without
 * running anything. Not how hopper writes jobs: see store/jobs.ts for that.
 *
 * A running daemon adopts queued and retrying jobs it finds in its store
 * (every few seconds), so the fixtures' waiting jobs are held `notBefore`
 * 2099, with the wait reason the dispatcher gives that: they never run, and
 * their rows stay as written.
 */
import type { Db } from '../../src/store/db.js';
import type { JobState } from '../../src/store/jobs.js';

export const NEVER = Date.UTC(2099, 0, 1);
export const NEVER_REASON = 'not before 2099-01-01T00:00:00Z';

export interface JobRow {
  id: string;
  recipe: string;
  state: JobState;
  createdAt: number;
  requestId?: string | null;
  email?: string | null;
  lane?: 'fast' | 'slow';
  priority?: number;
  params?: Record<string, unknown>;
  /** The recipe snapshot's params schema. */
  schema?: Record<string, unknown>;
  /** Padding in the recipe snapshot, to make rows as wide as real ones. */
  recipeDescription?: string;
  startedAt?: number | null;
  finishedAt?: number | null;
  error?: { code: string; message: string } | null;
  waitReason?: string | null;
  notBefore?: number | null;
  nextAttemptAt?: number | null;
  cachedFrom?: string | null;
  /** Attempts: [startedAt, finishedAt | null, outcome | null, error?]. */
  attempts?: Array<[number, number | null, string | null, { code: string; message: string }?]>;
  /** Events: [event, at]; default: requested, started (if started), and the end state (if ended). */
  events?: Array<[string, number]>;
  /** Outputs; `ref` defaults to JOB/NAME (a cache hit's are its source's). */
  outputs?: Array<{ name: string; bytes: number; ref?: string }>;
  /** Notifications: channel, state, and the tries: an error (failed try) or null (a sent one). */
  notifications?: Array<{ channel: 'email' | 'webhook'; state: 'pending' | 'sent' | 'dead'; tries: Array<string | null> }>;
}

export interface JobWriter {
  insert(job: JobRow): void;
}

/** Prepared inserts for `db`; call insert() inside a transaction for speed. */
export function jobWriter(db: Db): JobWriter {
  const job = db.prepare(
    `INSERT INTO jobs (id, request_id, request_hash, recipe, recipe_version, recipe_json, params_json, notify_json, email, lane,
       priority, state, not_before, next_attempt_at, attempts, wait_reason, created_at, started_at, finished_at, error_code, error_message, cached_from)
     VALUES (?, ?, 'hash', ?, 'v1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const attempt = db.prepare('INSERT INTO attempts (job_id, n, started_at, finished_at, outcome, error_code, error_message) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const event = db.prepare('INSERT INTO events (job_id, event, at) VALUES (?, ?, ?)');
  const output = db.prepare(`INSERT INTO outputs (job_id, name, bytes, sha256, location, ref) VALUES (?, ?, ?, ?, 'local', ?)`);
  const notification = db.prepare(
    `INSERT INTO notifications (job_id, event, channel, target, payload, state, attempts, next_at, created_at) VALUES (?, 'succeeded', ?, 'x', '{}', ?, ?, ?, ?)`,
  );
  const delivery = db.prepare('INSERT INTO deliveries (notification_id, at, status, error) VALUES (?, ?, ?, ?)');
  const recipeJsonCache = new Map<string, string>();
  return {
    insert(j) {
      const ended = j.state === 'succeeded' || j.state === 'failed' || j.state === 'canceled';
      const startedAt = j.startedAt ?? null;
      const finishedAt = j.finishedAt ?? null;
      const key = `${j.recipe}\u0000${JSON.stringify(j.schema ?? null)}\u0000${j.recipeDescription ?? ''}`;
      let recipeJson = recipeJsonCache.get(key);
      if (!recipeJson) {
        recipeJson = JSON.stringify({
          kind: 'recipe',
          name: j.recipe,
          description: j.recipeDescription ?? '',
          params: j.schema ?? { type: 'object' },
          steps: [{ run: { command: ['sh', '-c', 'echo hi > out.txt'] } }],
          output: { files: ['out.txt'] },
        });
        recipeJsonCache.set(key, recipeJson);
      }
      const attempts = j.attempts ?? [];
      job.run(
        j.id,
        j.requestId ?? null,
        j.recipe,
        recipeJson,
        JSON.stringify(j.params ?? {}),
        JSON.stringify(j.email ? { email: j.email } : {}),
        j.email ?? null,
        j.lane ?? 'fast',
        j.priority ?? 0,
        j.state,
        j.notBefore ?? null,
        j.nextAttemptAt ?? null,
        attempts.length,
        j.waitReason ?? null,
        j.createdAt,
        startedAt,
        finishedAt,
        j.error?.code ?? null,
        j.error?.message ?? null,
        j.cachedFrom ?? null,
      );
      attempts.forEach(([s, f, outcome, err], i) => attempt.run(j.id, i + 1, s, f, outcome, err?.code ?? null, err?.message ?? null));
      const events =
        j.events ??
        ([['requested', j.createdAt], ...(startedAt !== null ? [['started', startedAt]] : []), ...(ended && finishedAt !== null ? [[j.state, finishedAt]] : [])] as Array<[string, number]>);
      for (const [e, at] of events) event.run(j.id, e, at);
      for (const o of j.outputs ?? []) output.run(j.id, o.name, o.bytes, 'ab'.repeat(32), o.ref ?? `${j.id}/${o.name}`);
      for (const n of j.notifications ?? []) {
        const id = notification.run(j.id, n.channel, n.state, n.tries.length, j.createdAt, j.createdAt).lastInsertRowid;
        for (const t of n.tries) delivery.run(id, j.createdAt, t === null ? 200 : 500, t);
      }
    },
  };
}

const STATES: Array<[JobState, number]> = [
  ['succeeded', 70],
  ['failed', 10],
  ['canceled', 5],
  ['queued', 8],
  ['running', 2],
  ['retrying', 5],
];

/** A small deterministic PRNG (mulberry32), so the bulk data is the same on each run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` jobs over 5 recipes and 5,000 addresses, in realistic proportions of
 * states, with attempts, events, outputs, notifications and deliveries, in one
 * transaction. Recipe snapshots are about 1 KiB, like real ones.
 */
export function insertBulkJobs(db: Db, count: number, start = Date.UTC(2026, 0, 1)): void {
  const rand = prng(42);
  const recipes = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  const writer = jobWriter(db);
  const pick = (): JobState => {
    let r = rand() * 100;
    for (const [s, w] of STATES) if ((r -= w) < 0) return s;
    return 'succeeded';
  };
  const description = 'x'.repeat(800);
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const state = pick();
      const createdAt = start + i * 1000;
      const startedAt = state === 'queued' || (state === 'canceled' && i % 2 === 0) ? null : createdAt + Math.floor(rand() * 60_000);
      const runMs = Math.floor(rand() * 600_000);
      const finishedAt = ['succeeded', 'failed', 'canceled'].includes(state) ? (startedAt ?? createdAt) + runMs : null;
      const error = state === 'failed' || state === 'retrying' ? { code: 'E_RUN_EXIT', message: `step 1 exited with code ${i % 7}` } : null;
      const attempts: NonNullable<JobRow['attempts']> = [];
      if (startedAt !== null) {
        const outcome = state === 'running' ? null : state === 'retrying' ? 'failed' : state;
        attempts.push([startedAt, state === 'running' ? null : (finishedAt ?? startedAt + runMs), outcome, error ?? undefined]);
      }
      writer.insert({
        id: `job-${String(i).padStart(7, '0')}`,
        requestId: i % 3 === 0 ? `req-${i}` : null,
        recipe: recipes[i % 5 === 4 && rand() < 0.5 ? 0 : i % 5],
        state,
        createdAt,
        email: rand() < 0.2 ? null : `user${Math.floor(rand() * 5000)}@example.org`,
        lane: rand() < 0.8 ? 'fast' : 'slow',
        priority: Math.floor(rand() * 3),
        params: { url: `https://example.org/${i}.csv`, apiKey: `secret-${i}`, resource: `res-${i % 500}` },
        schema: { type: 'object', properties: { url: { type: 'string' }, apiKey: { type: 'string', writeOnly: true } } },
        recipeDescription: description,
        startedAt,
        finishedAt,
        error,
        waitReason: state === 'queued' || state === 'retrying' ? NEVER_REASON : null,
        notBefore: state === 'queued' || state === 'retrying' ? NEVER : null,
        nextAttemptAt: state === 'retrying' ? createdAt + 3_600_000 : null,
        cachedFrom: state === 'succeeded' && i > 100 && i % 20 === 0 ? `job-${String(i - 100).padStart(7, '0')}` : null,
        attempts,
        outputs: state === 'succeeded' ? [{ name: 'out.zip', bytes: 1000 + (i % 1000) }] : [],
        notifications: finishedAt !== null ? [{ channel: i % 2 ? 'email' : 'webhook', state: i % 50 === 0 ? 'dead' : 'sent', tries: i % 50 === 0 ? ['refused', 'refused'] : [null] }] : [],
      });
    }
  })();
}

export const FIXTURE_T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const S = 1000;
const MIN = 60_000;
const fail = (message: string): { code: string; message: string } => ({ code: 'E_RUN_EXIT', message });

/**
 * A small store to count by hand: recipes alpha, beta and gamma. Expected
 * numbers are in FIXTURE_EXPECTED; job `a3` failed, `a5` is queued, `b4`
 * running, `b5` retrying (without a wait reason yet). Addresses differ in case only for ann.
 */
export function insertFixture(db: Db, t0 = FIXTURE_T0): void {
  const w = jobWriter(db);
  const at = (minutes: number): number => t0 + minutes * MIN;
  const note = (state: 'sent' | 'dead', tries: Array<string | null>, channel: 'email' | 'webhook' = 'email') => ({ channel, state, tries });
  db.transaction(() => {
    w.insert({
      id: 'a1', recipe: 'alpha', state: 'succeeded', createdAt: at(0), email: 'Ann@Example.org', startedAt: at(0) + 2 * S, finishedAt: at(0) + 12 * S,
      attempts: [[at(0) + 2 * S, at(0) + 12 * S, 'succeeded']], outputs: [{ name: 'a1.zip', bytes: 100 }], notifications: [note('sent', [null])],
    });
    w.insert({
      id: 'a2', requestId: 'order-a2', recipe: 'alpha', state: 'succeeded', createdAt: at(1), email: 'ann@example.org', startedAt: at(1) + 4 * S, finishedAt: at(1) + 24 * S,
      attempts: [[at(1) + 4 * S, at(1) + 24 * S, 'succeeded']], outputs: [{ name: 'a2.zip', bytes: 200 }],
      notifications: [note('sent', ['timeout', null]), note('dead', ['HTTP 500', 'HTTP 500', 'HTTP 500'], 'webhook')],
    });
    w.insert({
      id: 'a3', recipe: 'alpha', state: 'failed', createdAt: at(2), email: 'bob@example.org', startedAt: at(2) + S, finishedAt: at(2) + 30 * S,
      attempts: [[at(2) + S, at(2) + 6 * S, 'failed', fail('step 1 exited with code 2')], [at(2) + 23 * S, at(2) + 30 * S, 'failed', fail('step 1 exited with code 2')]],
      error: fail('step 1 exited with code 2'),
      events: [['requested', at(2)], ['started', at(2) + S], ['retrying', at(2) + 6 * S], ['started', at(2) + 23 * S], ['failed', at(2) + 30 * S]],
      notifications: [note('dead', ['refused', 'refused'])],
    });
    w.insert({
      id: 'a4', recipe: 'alpha', state: 'succeeded', createdAt: at(3), email: 'cat@example.org', finishedAt: at(3) + S, cachedFrom: 'a1',
      outputs: [{ name: 'a1.zip', bytes: 100, ref: 'a1/a1.zip' }],
    });
    w.insert({ id: 'a5', recipe: 'alpha', state: 'queued', createdAt: at(4), notBefore: NEVER, waitReason: NEVER_REASON });
    w.insert({
      id: 'b1', recipe: 'beta', state: 'succeeded', createdAt: at(5), email: 'bob@example.org', lane: 'slow', startedAt: at(5) + S, finishedAt: at(5) + 40 * S,
      attempts: [[at(5) + S, at(5) + 4 * S, 'failed', fail('fetch failed')], [at(5) + 10 * S, at(5) + 40 * S, 'succeeded']],
      events: [['requested', at(5)], ['started', at(5) + S], ['retrying', at(5) + 4 * S], ['started', at(5) + 10 * S], ['succeeded', at(5) + 40 * S]],
      outputs: [{ name: 'b1.csv', bytes: 1000 }],
    });
    w.insert({
      id: 'b2', recipe: 'beta', state: 'failed', createdAt: at(6), email: 'dan@example.org', lane: 'slow', startedAt: at(6) + S, finishedAt: at(6) + 3 * S,
      attempts: [[at(6) + S, at(6) + 3 * S, 'failed', fail('the server answered 404')]], error: { code: 'E_FETCH_STATUS', message: 'the server answered 404' },
    });
    w.insert({ id: 'b3', recipe: 'beta', state: 'canceled', createdAt: at(7), finishedAt: at(7) + S, error: { code: 'E_CANCELED', message: 'canceled by request' } });
    w.insert({
      id: 'b4', recipe: 'beta', state: 'running', createdAt: at(8), email: 'eve@example.org', lane: 'slow', startedAt: at(8) + 5 * S,
      attempts: [[at(8) + 5 * S, null, null]],
    });
    w.insert({
      id: 'b5', recipe: 'beta', state: 'retrying', createdAt: at(9), email: 'ANN@example.org', startedAt: at(9) + S, nextAttemptAt: at(9) + 60 * S, notBefore: NEVER,
      attempts: [[at(9) + S, at(9) + 5 * S, 'failed', fail('timeout')]], error: fail('timeout'),
      events: [['requested', at(9)], ['started', at(9) + S], ['retrying', at(9) + 5 * S]],
    });
    // gamma: 20 runs of 1..20 s, no addresses, no outputs.
    for (let i = 1; i <= 20; i++) {
      const c = at(10 + i);
      w.insert({ id: `g${String(i).padStart(2, '0')}`, recipe: 'gamma', state: 'succeeded', createdAt: c, startedAt: c + S, finishedAt: c + S + i * S, attempts: [[c + S, c + S + i * S, 'succeeded']] });
    }
  })();
}

/** What insertFixture's store holds, counted by hand. */
export const FIXTURE_EXPECTED = {
  statistics: {
    '*': { requests: 30, emails: 5, errors: 2, bytes: 1400, cacheHits: 1, meanRunSeconds: 11.739, p95RunSeconds: 20 },
    alpha: { requests: 5, emails: 3, errors: 1, bytes: 400, cacheHits: 1, meanRunSeconds: 15, p95RunSeconds: 20 },
    beta: { requests: 5, emails: 4, errors: 1, bytes: 1000, cacheHits: 0, meanRunSeconds: 30, p95RunSeconds: 30 },
    gamma: { requests: 20, emails: 0, errors: 0, bytes: 0, cacheHits: 0, meanRunSeconds: 10.5, p95RunSeconds: 19 },
  },
  status: { workers: 5, queueLength: 2, delivering: 0, processed: 27, failed: 2, lanes: { fast: { concurrency: 4, running: 0, queued: 2 }, slow: { concurrency: 1, running: 1, queued: 0 } }, schedules: [] },
  /** Newest first. */
  jobIds: ['g20', 'g19', 'g18', 'g17', 'g16', 'g15', 'g14', 'g13', 'g12', 'g11', 'g10', 'g09', 'g08', 'g07', 'g06', 'g05', 'g04', 'g03', 'g02', 'g01', 'b5', 'b4', 'b3', 'b2', 'b1', 'a5', 'a4', 'a3', 'a2', 'a1'],
  /** Failed jobs, the latest failure first: a3 failed at 2:30, b2 at 6:03. */
  errorIds: ['b2', 'a3'],
  annIds: ['b5', 'a2', 'a1'],
  notifications: { email: { sent: 2, dead: 1 }, webhook: { dead: 1 } },
  /** Failed tries: a2's email 1, a2's webhook 3, a3's email 2. */
  deliveryFailures: { email: 3, webhook: 3 },
};
