import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Output } from '../../src/store/outputs.js';
import { COUNTED, MIGRATIONS } from '../../src/store/db.js';
import { recipeActivity } from '../../src/store/dashboard.js';
import { notificationCounts } from '../../src/store/metrics.js';
import { openStore, type Store } from '../../src/store/store.js';
import { errorList, p95Rank, requestList, statistics } from '../../src/store/stats.js';
import { daemonStatus, jobCountRows, jobDetail, listJobs, paging, type JobCount } from '../../src/store/views.js';
import { tempRoot } from '../helpers/daemon.js';
import { seededPick, withTempStore } from '../helpers/db.js';
import { FIXTURE_EXPECTED, FIXTURE_T0, insertFixture, jobWriter, NEVER_REASON } from '../helpers/jobrows.js';

const LANES = { lanes: { fast: { concurrency: 4 }, slow: { concurrency: 1 } } };

describe('store views over a hand-counted fixture', () => {
  let tmp: ReturnType<typeof tempRoot>;
  let store: Store;

  before(() => {
    tmp = tempRoot();
    store = openStore(path.join(tmp.root, 'state', 'hopper.db'));
    insertFixture(store.db);
  });
  after(() => {
    store?.close();
    tmp?.cleanup();
  });

  it('statistics() counts requests, unique emails (case-insensitive), errors, bytes, cache hits, mean and p95 run time', () => {
    assert.deepEqual(statistics(store), { totals: FIXTURE_EXPECTED.statistics });
    assert.deepEqual(Object.keys(statistics(store).totals), ['*', 'alpha', 'beta', 'gamma']);
  });

  it('statistics({recipe}) counts only that recipe, and a recipe without jobs with zeros', () => {
    assert.deepEqual(statistics(store, { recipe: 'beta' }), { totals: { '*': FIXTURE_EXPECTED.statistics.beta, beta: FIXTURE_EXPECTED.statistics.beta } });
    const zero = { requests: 0, emails: 0, errors: 0, bytes: 0, cacheHits: 0, meanRunSeconds: null, p95RunSeconds: null };
    assert.deepEqual(statistics(store, { recipe: 'nothing-here' }), { totals: { '*': zero, 'nothing-here': zero } });
  });

  it('p95Rank() is the nearest rank', () => {
    assert.deepEqual([1, 2, 10, 20, 23, 100].map(p95Rank), [1, 2, 10, 19, 22, 95]);
  });

  it('daemonStatus() counts lanes by state, processed and failed', () => {
    const s = daemonStatus(store, LANES, { version: '9.9.9', now: FIXTURE_T0 + 61_500, startedAt: FIXTURE_T0 });
    assert.deepEqual(s, { version: '9.9.9', uptimeSeconds: 61, ...FIXTURE_EXPECTED.status });
    assert.equal(daemonStatus(store, LANES, { version: '1', now: 0 }).uptimeSeconds, null);
  });

  it('listJobs() is newest first, pages, and counts the total', () => {
    const all = listJobs(store, { limit: 500 });
    assert.equal(all.total, 30);
    assert.deepEqual(all.jobs.map((j) => j.id), FIXTURE_EXPECTED.jobIds);
    const p = listJobs(store, { limit: 3, offset: 20 });
    assert.deepEqual(p.jobs.map((j) => j.id), ['b5', 'b4', 'b3']);
    assert.deepEqual([p.total, p.limit, p.offset], [30, 3, 20]);
    assert.deepEqual(listJobs(store, { offset: 30 }).jobs, []);
    assert.equal(listJobs(store, { offset: 1e9 }).total, 30);
    const a2 = all.jobs.find((j) => j.id === 'a2')!;
    assert.deepEqual(a2, {
      id: 'a2', requestId: 'order-a2', recipe: 'alpha', state: 'succeeded', lane: 'fast', priority: 0,
      createdAt: '2026-03-01T12:01:00.000Z', startedAt: '2026-03-01T12:01:04.000Z', finishedAt: '2026-03-01T12:01:24.000Z', error: null,
    });
    assert.deepEqual(all.jobs.find((j) => j.id === 'b2')!.error, { code: 'E_FETCH_STATUS', message: 'the server answered 404' });
  });

  it('listJobs() filters by state, recipe and email, alone and together', () => {
    const ids = (f: Parameters<typeof listJobs>[1]): string[] => listJobs(store, { limit: 500, ...f }).jobs.map((j) => j.id);
    assert.deepEqual(ids({ state: 'failed' }), ['b2', 'a3']);
    assert.deepEqual(ids({ recipe: 'alpha' }), ['a5', 'a4', 'a3', 'a2', 'a1']);
    assert.deepEqual(ids({ recipe: 'alpha', state: 'succeeded' }), ['a4', 'a2', 'a1']);
    assert.deepEqual(ids({ email: 'ANN@EXAMPLE.ORG' }), FIXTURE_EXPECTED.annIds);
    assert.deepEqual(ids({ email: 'ann@example.org', recipe: 'alpha' }), ['a2', 'a1']);
    assert.deepEqual(ids({ email: 'ann@example.org', recipe: 'alpha', state: 'queued' }), []);
    assert.deepEqual(ids({ email: 'bob@example.org', state: 'failed' }), ['a3']);
    assert.deepEqual(ids({ recipe: 'nope' }), []);
    assert.equal(listJobs(store, { state: 'succeeded' }).total, 24);
    assert.equal(listJobs(store, { recipe: 'gamma', limit: 5 }).total, 20);
  });

  it('paging() keeps limit and offset in bounds', () => {
    assert.deepEqual(paging({}), { limit: 50, offset: 0 });
    assert.deepEqual(paging({ limit: 0, offset: -5 }), { limit: 1, offset: 0 });
    assert.deepEqual(paging({ limit: 10_000 }), { limit: 500, offset: 0 });
    assert.deepEqual(paging({ limit: NaN, offset: NaN }), { limit: 50, offset: 0 });
  });

  it('requestList() and errorList() are newest first with filters', () => {
    const r = requestList(store, { email: 'Ann@example.org' });
    assert.deepEqual(r.requests.map((x) => x.id), FIXTURE_EXPECTED.annIds);
    assert.deepEqual(r.requests[1], { id: 'a2', recipe: 'alpha', email: 'ann@example.org', timestamp: '2026-03-01T12:01:00.000Z' });
    assert.equal(requestList(store).total, 30);
    assert.deepEqual(requestList(store, { recipe: 'beta', limit: 2, offset: 1 }).requests.map((x) => x.id), ['b4', 'b3']);

    const e = errorList(store);
    assert.deepEqual(e.errors.map((x) => x.id), FIXTURE_EXPECTED.errorIds);
    assert.deepEqual(e.errors[1], {
      id: 'a3', recipe: 'alpha', email: 'bob@example.org', timestamp: '2026-03-01T12:02:30.000Z', code: 'E_RUN_EXIT', message: 'step 1 exited with code 2',
    });
    assert.deepEqual(errorList(store, { recipe: 'beta' }).errors.map((x) => x.id), ['b2']);
    assert.deepEqual(errorList(store, { email: 'DAN@example.org' }).errors.map((x) => x.id), ['b2']);
    assert.deepEqual(errorList(store, { email: 'dan@example.org', recipe: 'alpha' }).errors, []);
    assert.equal(errorList(store, { offset: 2 }).errors.length, 0);
  });

  it('jobDetail() shows attempts, events, outputs, the error, and why a queued job waits', async () => {
    const a3 = await jobDetail(store, 'a3');
    assert.ok(a3);
    assert.deepEqual(a3.attempts.map((a) => [a.n, a.outcome, a.error?.code]), [[1, 'failed', 'E_RUN_EXIT'], [2, 'failed', 'E_RUN_EXIT']]);
    assert.deepEqual(a3.events.map((e) => e.event), ['requested', 'started', 'retrying', 'started', 'failed']);
    assert.deepEqual(a3.error, { code: 'E_RUN_EXIT', message: 'step 1 exited with code 2' });
    assert.equal(a3.waiting, null);

    const a5 = await jobDetail(store, 'a5');
    assert.deepEqual(a5?.waiting, { reason: NEVER_REASON, position: 1 });
    const b5 = await jobDetail(store, 'b5');
    assert.equal(b5?.waiting?.position, 2, 'b5 came after a5 in the fast lane');
    assert.match(b5?.waiting?.reason ?? '', /retried at 2026-03-01T12:10:00/);

    const byRequest = await jobDetail(store, 'order-a2');
    assert.equal(byRequest?.id, 'a2');
    assert.deepEqual(byRequest?.outputs, [{ name: 'a2.zip', bytes: 200, sha256: 'ab'.repeat(32), link: null, expiresAt: null }]);
    assert.equal(await jobDetail(store, 'no-such-job'), undefined);
  });

  it('jobDetail() makes links with the given maker (since the cache source finished, for a cache hit), null once expired', async () => {
    const seen: number[] = [];
    const links = async (outputs: readonly Output[], since: number) => {
      seen.push(since);
      return outputs.map((o) => ({ url: `http://x/${o.ref}`, expiresAt: since + 1000 }));
    };
    const a4 = await jobDetail(store, 'a4', { links, now: FIXTURE_T0 });
    assert.deepEqual(seen, [FIXTURE_T0 + 12_000]);
    assert.equal(a4?.cachedFrom, 'a1');
    assert.deepEqual(a4?.outputs[0], { name: 'a1.zip', bytes: 100, sha256: 'ab'.repeat(32), link: 'http://x/a1/a1.zip', expiresAt: new Date(FIXTURE_T0 + 13_000).toISOString() });
    const expired = await jobDetail(store, 'a4', { links, now: FIXTURE_T0 + 13_000 });
    assert.deepEqual([expired?.outputs[0].link, expired?.outputs[0].expiresAt], [null, new Date(FIXTURE_T0 + 13_000).toISOString()]);
    const failing = await jobDetail(store, 'a1', { links: () => Promise.reject(new Error('no s3')) });
    assert.equal(failing?.outputs[0].link, null);
  });
});

describe('jobDetail() and the lists never show a secret', () => {
  it('masks writeOnly params (also nested and behind $ref) and scrubs them out of error messages', async () => {
    const tmp = tempRoot();
    const store = openStore(path.join(tmp.root, 'hopper.db'));
    try {
      const SECRET = 'sk-live-Very-Secret-42';
      const NESTED = 'nested-pass-999';
      jobWriter(store.db).insert({
        id: 'sec-1',
        recipe: 'secretive',
        state: 'failed',
        createdAt: FIXTURE_T0,
        startedAt: FIXTURE_T0 + 1000,
        finishedAt: FIXTURE_T0 + 2000,
        email: 'x@example.org',
        params: { url: 'https://example.org/a.csv', apiKey: SECRET, auth: { user: 'u', pass: NESTED } },
        schema: {
          type: 'object',
          $defs: { secret: { type: 'string', writeOnly: true } },
          properties: { url: { type: 'string' }, apiKey: { $ref: '#/$defs/secret' }, auth: { type: 'object', properties: { pass: { type: 'string', writeOnly: true } } } },
        },
        // As if a message had escaped the scrub where it was recorded.
        error: { code: 'E_FETCH_STATUS', message: `GET https://example.org/a.csv?key=${SECRET} answered 403` },
        attempts: [[FIXTURE_T0 + 1000, FIXTURE_T0 + 2000, 'failed', { code: 'E_FETCH_STATUS', message: `key ${encodeURIComponent(SECRET)} refused` }]],
      });
      const detail = await jobDetail(store, 'sec-1');
      assert.deepEqual(detail?.params, { url: 'https://example.org/a.csv', apiKey: '***', auth: { user: 'u', pass: '***' } });
      const texts = [JSON.stringify(detail), JSON.stringify(listJobs(store)), JSON.stringify(errorList(store)), JSON.stringify(requestList(store))];
      for (const text of texts) {
        assert.ok(!text.includes(SECRET), text);
        assert.ok(!text.includes(NESTED), text);
      }
      assert.match(detail?.error?.message ?? '', /key=\*\*\* answered 403/);
      assert.equal(errorList(store).errors[0].message, 'GET https://example.org/a.csv?key=*** answered 403');
    } finally {
      store.close();
      tmp.cleanup();
    }
  });
});

/** Back to the schema before the kept totals (the last migration): its tables and triggers gone, the indexes it dropped made again. */
function undoKeptTotals(store: Store): void {
  store.db.exec(`DROP TABLE recipe_totals; DROP TABLE recipe_emails; DROP TABLE run_times;
    CREATE INDEX attempts_runs ON attempts(outcome, recipe, (finished_at - started_at));
    CREATE INDEX attempts_runs_all ON attempts(outcome, (finished_at - started_at));
    CREATE INDEX outputs_recipe ON outputs(recipe, bytes);
    CREATE INDEX jobs_recipe_email ON jobs(recipe, lower(email));`);
  const triggers = store.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND (name LIKE 'recipe_totals_%' OR name LIKE 'run_times_%')`).pluck().all() as string[];
  assert.equal(triggers.length, 8);
  for (const name of triggers) store.db.exec(`DROP TRIGGER ${name}`);
}

/** Back to the schema before notification_counts (the last migration). */
function undoNotificationCounts(store: Store): void {
  store.db.exec(`DROP TABLE notification_counts; CREATE INDEX notifications_state ON notifications(channel, state);`);
  for (const name of ['notification_counts_insert', 'notification_counts_update', 'notification_counts_delete']) store.db.exec(`DROP TRIGGER ${name}`);
}

const keptNotifications = (store: Store): string[] => notificationCounts(store).map((r) => `${r.channel} ${r.state} ${r.n}`).sort();
const countedNotifications = (store: Store): string[] =>
  (store.db.prepare('SELECT channel, state, count(*) AS n FROM notifications GROUP BY channel, state').all() as Array<{ channel: string; state: string; n: number }>)
    .map((r) => `${r.channel} ${r.state} ${r.n}`)
    .sort();

describe('notification counts kept by the writes (notification_counts)', () => {
  it('stay equal to counting the notifications through inserts, sends, failures, resends and deletes', () => {
    withTempStore((store) => {
      const write = jobWriter(store.db);
      const pick = seededPick(5);
      const ids: string[] = [];
      const resend = store.db.prepare(`UPDATE notifications SET state = 'pending' WHERE id = ?`);
      const noteIds = (): number[] => store.db.prepare('SELECT id FROM notifications').pluck().all() as number[];
      // Each operation as often as its weight.
      const ops = ['job', 'job', 'notify', 'notify', 'notify', 'sent', 'sent', 'failed', 'failed', 'resend', 'delete'] as const;
      for (let i = 0; i < 1500; i++) {
        const op = ids.length === 0 ? 'job' : ops[pick(ops.length)];
        const notes = op === 'job' || op === 'notify' || op === 'delete' ? [] : noteIds();
        const note = notes[pick(Math.max(1, notes.length))];
        if (op === 'job') {
          const id = `n${i}`;
          write.insert({ id, recipe: 'alpha', state: 'succeeded', createdAt: FIXTURE_T0 + i });
          ids.push(id);
        } else if (op === 'notify') {
          store.notifications.insert({ event: 'succeeded', channel: pick(2) ? 'email' : 'webhook', target: 'x', payload: {} }, ids[pick(ids.length)], FIXTURE_T0 + i);
        } else if (op === 'delete') store.db.prepare('DELETE FROM jobs WHERE id = ?').run(ids.splice(pick(ids.length), 1)[0]);
        else if (note === undefined) continue;
        else if (op === 'sent') store.notifications.markSent(note, FIXTURE_T0 + i);
        else if (op === 'failed') store.notifications.markFailed(note, 'refused', pick(2) ? FIXTURE_T0 + i : null);
        else resend.run(note);
      }
      assert.ok(noteIds().length > 100, 'notifications are left to count');
      const counted = countedNotifications(store);
      assert.ok(new Set(counted.map((r) => r.split(' ')[1])).size === 3, `pending, sent and dead are all there: ${counted.join(', ')}`);
      assert.deepEqual(keptNotifications(store), counted);
    });
  });
});

describe('statistics kept by the writes (recipe_totals, recipe_emails, run_times)', () => {
  /** A kept table's rows (but those counted down to nothing), and what counting the rows gives (COUNTED), side by side. */
  const compare = (store: Store, table: keyof typeof COUNTED, key: string): void => {
    const rows = (sql: string): string[] => (store.db.prepare(sql).all() as object[]).map((r) => JSON.stringify(r)).sort();
    const nonzero = table === 'recipe_totals' ? 'cache_hits <> 0 OR bytes <> 0 OR runs <> 0' : 'n <> 0';
    assert.deepEqual(rows(`SELECT * FROM ${table} WHERE ${nonzero} ORDER BY ${key}`), rows(`SELECT * FROM (${COUNTED[table]}) WHERE ${nonzero} ORDER BY ${key}`), table);
  };

  it('stay equal to counting the rows through jobs, attempts, outputs, cache hits and deletes', () => {
    withTempStore((store) => {
      const write = jobWriter(store.db);
      const pick = seededPick(11);
      const emails = ['a@x.org', 'A@X.org', 'b@x.org', 'c@y.org', undefined];
      const ids: string[] = [];
      const q = {
        start: store.db.prepare('INSERT INTO attempts (job_id, n, started_at) VALUES (?, (SELECT coalesce(max(n), 0) + 1 FROM attempts WHERE job_id = ?), ?)'),
        end: store.db.prepare(`UPDATE attempts SET finished_at = started_at + ?, outcome = ? WHERE job_id = ? AND finished_at IS NULL`),
        reopen: store.db.prepare(`UPDATE attempts SET outcome = 'failed' WHERE job_id = ? AND outcome = 'succeeded'`),
        output: store.db.prepare(`INSERT OR IGNORE INTO outputs (job_id, name, bytes, sha256, location, ref) VALUES (?, ?, ?, 'x', 'local', 'r')`),
        cache: store.db.prepare('UPDATE jobs SET cached_from = ? WHERE id = ?'),
        drop: store.db.prepare('DELETE FROM jobs WHERE id = ?'),
      };
      // Run times across the ranges the buckets treat differently: under a second (exact), and up to hours.
      const duration = (): number => [pick(1000), 1000 + pick(9000), 10_000 + pick(990_000), 3_600_000 + pick(10_000_000)][pick(4)];
      // Each operation as often as its weight.
      const ops = ['insert', 'insert', 'insert', 'start', 'start', 'start', 'end', 'end', 'end', 'output', 'output', 'cache', 'reopen', 'delete'] as const;
      for (let i = 0; i < 3000; i++) {
        const op = ids.length === 0 ? 'insert' : ops[pick(ops.length)];
        const id = ids[pick(ids.length)];
        if (op === 'insert') {
          const fresh = `s${i}`;
          write.insert({ id: fresh, recipe: ['alpha', 'beta', 'gamma'][pick(3)], state: 'queued', email: emails[pick(emails.length)], createdAt: FIXTURE_T0 + i, cachedFrom: pick(5) === 0 && ids.length > 0 ? ids[0] : undefined });
          ids.push(fresh);
        } else if (op === 'start') q.start.run(id, id, FIXTURE_T0 + i);
        else if (op === 'end') q.end.run(duration(), pick(3) === 0 ? 'failed' : 'succeeded', id);
        else if (op === 'output') q.output.run(id, `f${pick(3)}`, pick(100_000));
        else if (op === 'cache') q.cache.run(pick(2) === 0 ? null : ids[pick(ids.length)], id);
        else if (op === 'reopen') q.reopen.run(id);
        else {
          q.drop.run(id);
          ids.splice(ids.indexOf(id), 1);
        }
      }
      assert.ok(ids.length > 100, 'jobs are left to count');
      const runs = store.db.prepare(`SELECT count(*) AS n FROM attempts WHERE outcome = 'succeeded' AND finished_at IS NOT NULL`).get() as { n: number };
      assert.ok(runs.n > 100, `succeeded runs are left to count (${runs.n})`);
      compare(store, 'recipe_totals', 'recipe');
      compare(store, 'recipe_emails', 'recipe, email');
      compare(store, 'run_times', 'recipe, ms');
    });
  });

  it('give percentiles exact below a second and within 1 % above, from a few rows', () => {
    withTempStore((store) => {
      const write = jobWriter(store.db);
      const times: number[] = [];
      store.db.transaction(() => {
        for (let i = 0; i < 2000; i++) {
          // Half under a second, half spread up to ~3 hours.
          const ms = i % 2 === 0 ? (i * 7) % 1000 : 1000 + ((i * 7919) % 10_000_000);
          times.push(ms);
          const c = FIXTURE_T0 + i;
          write.insert({ id: `p${i}`, recipe: 'alpha', state: 'succeeded', createdAt: c, startedAt: c, finishedAt: c + ms, attempts: [[c, c + ms, 'succeeded']] });
        }
      })();
      times.sort((a, b) => a - b);
      const exactP95 = times[p95Rank(times.length) - 1];
      const got = statistics(store).totals.alpha;
      assert.ok(got.p95RunSeconds !== null && got.p95RunSeconds * 1000 <= exactP95 && got.p95RunSeconds * 1000 >= exactP95 * 0.99, `p95 ${got.p95RunSeconds} s against ${exactP95} ms`);
      assert.equal(got.meanRunSeconds, Math.round(times.reduce((a, b) => a + b, 0) / times.length) / 1000, 'the mean is exact');
      const rows = (store.db.prepare(`SELECT count(*) AS n FROM run_times WHERE recipe = 'alpha'`).get() as { n: number }).n;
      assert.ok(rows < 2000 * 0.75, `fewer rows than runs (${rows})`);
      const median = recipeActivity(store, FIXTURE_T0).recipes.alpha.medianRunSeconds;
      assert.equal(median, times[Math.floor((times.length - 1) / 2)] / 1000, 'a median under a second is exact');
    });
  });
});

describe('job counts kept by the writes (job_counts)', () => {
  const counted = (store: Store): string[] =>
    (store.db.prepare('SELECT recipe, lane, state, count(*) AS n FROM jobs GROUP BY recipe, lane, state').all() as JobCount[])
      .map((r) => `${r.recipe} ${r.lane} ${r.state} ${r.n}`)
      .sort();
  const kept = (store: Store): string[] => jobCountRows(store).map((r) => `${r.recipe} ${r.lane} ${r.state} ${r.n}`).sort();

  it('stay equal to counting the jobs through inserts, state and lane changes, and deletes', () => {
    const tmp = tempRoot();
    const store = openStore(path.join(tmp.root, 'hopper.db'));
    try {
      const write = jobWriter(store.db);
      const states = ['queued', 'running', 'retrying', 'delivering', 'succeeded', 'failed', 'canceled'] as const;
      let seed = 7;
      const pick = (k: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % k;
      const ids: string[] = [];
      for (let i = 0; i < 400; i++) {
        const op = ids.length === 0 ? 0 : pick(4);
        if (op === 0) {
          const id = `c${i}`;
          write.insert({ id, recipe: ['alpha', 'beta'][pick(2)], state: states[pick(3)], lane: pick(2) ? 'fast' : 'slow', createdAt: FIXTURE_T0 + i });
          ids.push(id);
        } else if (op === 1) store.db.prepare('UPDATE jobs SET state = ? WHERE id = ?').run(states[pick(states.length)], ids[pick(ids.length)]);
        else if (op === 2) store.db.prepare('UPDATE jobs SET lane = ?, wait_reason = ? WHERE id = ?').run(pick(2) ? 'fast' : 'slow', 'x', ids[pick(ids.length)]);
        else store.db.prepare('DELETE FROM jobs WHERE id = ?').run(ids.splice(pick(ids.length), 1)[0]);
      }
      assert.ok(ids.length > 50, 'jobs are left to count');
      assert.deepEqual(kept(store), counted(store));
      const s = daemonStatus(store, LANES, { version: '1', now: 0 });
      assert.equal(s.processed + s.delivering + s.queueLength + s.lanes.fast.running + s.lanes.slow.running, ids.length);
    } finally {
      store.close();
      tmp.cleanup();
    }
  });

  it('the migration counts the jobs of a database made before it, and a reader of such a database counts them itself', () => {
    const tmp = tempRoot();
    const file = path.join(tmp.root, 'hopper.db');
    try {
      let store = openStore(file);
      // Back to the schema before job_counts (and the migrations after it), with jobs in it.
      const version = store.db.pragma('user_version', { simple: true }) as number;
      const at = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE job_counts'));
      store.db.exec('DROP TRIGGER job_counts_insert; DROP TRIGGER job_counts_update; DROP TRIGGER job_counts_delete; DROP TABLE job_counts');
      store.db.exec('DROP INDEX notifications_job; DROP INDEX intake_job; DROP INDEX jobs_cached_from');
      store.db.exec(`DROP INDEX jobs_waiting; DROP INDEX jobs_state_finished; DROP INDEX jobs_recipe_finished;
        CREATE INDEX jobs_pending ON jobs(state, lane, priority DESC, created_at);
        CREATE INDEX jobs_state_finished ON jobs(state, finished_at);
        CREATE INDEX jobs_recipe_finished ON jobs(recipe, state, finished_at);`);
      undoKeptTotals(store);
      undoNotificationCounts(store);
      assert.equal(MIGRATIONS.length - at, 5, 'the migrations after job_counts are undone here too');
      store.db.pragma(`user_version = ${at}`);
      insertFixture(store.db);
      const expected = counted(store);
      store.close();
      const reader = openStore(file, { readonly: true });
      assert.deepEqual(kept(reader), expected, 'counted without the table');
      assert.deepEqual(statistics(reader).totals, FIXTURE_EXPECTED.statistics, 'statistics counted without the kept totals');
      reader.close();
      store = openStore(file);
      assert.equal(store.db.pragma('user_version', { simple: true }), version);
      assert.deepEqual(kept(store), expected);
      assert.deepEqual(statistics(store).totals, FIXTURE_EXPECTED.statistics, 'the kept totals filled by the migration');
      assert.deepEqual(keptNotifications(store), countedNotifications(store), 'the notification counts filled by the migration');
      assert.ok(keptNotifications(store).length > 0, 'the fixture has notifications to count');
      const s = daemonStatus(store, LANES, { version: '9.9.9', now: FIXTURE_T0 + 61_500, startedAt: FIXTURE_T0 });
      assert.deepEqual(s, { version: '9.9.9', uptimeSeconds: 61, ...FIXTURE_EXPECTED.status });
      store.close();
    } finally {
      tmp.cleanup();
    }
  });
});
