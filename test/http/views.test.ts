import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { apiGet, apiJson, errorOf, type ApiAnswer } from '../helpers/api.js';
import { testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { FIXTURE_EXPECTED, insertFixture, NEVER_REASON } from '../helpers/jobrows.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Listed {
  total: number;
  limit: number;
  offset: number;
}

describe('HTTP read views over a hand-counted fixture', () => {
  let d: TestDaemon;
  const get = (p: string, method = 'GET'): Promise<ApiAnswer> => apiGet(d.http.address(), p, {}, method);
  const json = <T>(p: string): Promise<T> => apiJson<T>(d.http.address(), p);

  before(async () => {
    d = await testDaemon();
    insertFixture(d.ctx.store.db);
  });
  after(async () => {
    await d?.cleanup();
  });

  describe('good requests', () => {
    it('GET /status answers version, uptime, workers, counts and lanes', async () => {
      const s = await json<Record<string, unknown>>('/status');
      const { uptimeSeconds, version, containers, ...rest } = s;
      assert.equal(version, VERSION);
      // Where container steps run: this host's engine (up or not, as this machine has it).
      assert.equal((containers as { runOn: string }).runOn, 'host');
      assert.equal(typeof uptimeSeconds, 'number');
      assert.ok((uptimeSeconds as number) >= 0 && (uptimeSeconds as number) < 600);
      assert.deepEqual(rest, FIXTURE_EXPECTED.status);
    });

    it('GET /jobs lists newest first with total, limit and offset', async () => {
      const all = await json<Listed & { jobs: Array<{ id: string }> }>('/jobs');
      assert.deepEqual([all.total, all.limit, all.offset], [30, 50, 0]);
      assert.deepEqual(all.jobs.map((j) => j.id), FIXTURE_EXPECTED.jobIds);
      const page = await json<Listed & { jobs: Array<{ id: string }> }>('/jobs?limit=2&offset=28');
      assert.deepEqual(page.jobs.map((j) => j.id), ['a2', 'a1']);
      assert.deepEqual([page.total, page.limit, page.offset], [30, 2, 28]);
      const leadingZeros = await json<Listed>('/jobs?limit=007');
      assert.equal(leadingZeros.limit, 7);
    });

    it('GET /jobs filters by state, recipe and email (case-insensitive), alone and together', async () => {
      const ids = async (q: string): Promise<string[]> => (await json<{ jobs: Array<{ id: string }> }>(`/jobs?${q}`)).jobs.map((j) => j.id);
      assert.deepEqual(await ids('state=failed'), ['b2', 'a3']);
      assert.deepEqual(await ids('state=queued'), ['a5']);
      assert.deepEqual(await ids('recipe=alpha&state=succeeded'), ['a4', 'a2', 'a1']);
      assert.deepEqual(await ids('email=ANN%40Example.ORG'), FIXTURE_EXPECTED.annIds);
      assert.deepEqual(await ids('email=ann@example.org&recipe=beta'), ['b5']);
      assert.deepEqual(await ids('email=ann@example.org&recipe=beta&state=retrying'), ['b5']);
      assert.deepEqual(await ids('recipe=does-not-exist'), []);
    });

    it('GET /jobs/:id answers the job with attempts, events, outputs, error and waiting; by request id too', async () => {
      const a3 = await json<Record<string, unknown>>('/jobs/a3');
      assert.equal(a3.id, 'a3');
      assert.equal(a3.state, 'failed');
      assert.deepEqual(a3.error, { code: 'E_RUN_EXIT', message: 'step 1 exited with code 2' });
      assert.equal((a3.attempts as unknown[]).length, 2);
      assert.deepEqual((a3.events as Array<{ event: string }>).map((e) => e.event), ['requested', 'started', 'retrying', 'started', 'failed']);
      assert.equal(a3.waiting, null);
      const a2 = await json<{ id: string; outputs: Array<{ name: string; link: string | null; expiresAt: string }> }>('/jobs/order-a2');
      assert.equal(a2.id, 'a2');
      assert.equal(a2.outputs[0].name, 'a2.zip');
      // Finished in March 2026 and kept 7 days (retention.outputs): its link expires then.
      assert.equal(a2.outputs[0].expiresAt, '2026-03-08T12:01:24.000Z');
      if (Date.parse(a2.outputs[0].expiresAt) <= Date.now()) assert.equal(a2.outputs[0].link, null);
      else assert.match(a2.outputs[0].link ?? '', /^http:\/\/localhost:\d+\/downloads\/a2\/a2\.zip\?expires=\d+&sig=[0-9a-f]{64}$/);
      const a5 = await json<{ waiting: unknown }>('/jobs/a5');
      assert.deepEqual(a5.waiting, { reason: NEVER_REASON, position: 1 });
      assert.deepEqual(await json<unknown>('/jobs/a3/'), a3);
    });

    it('GET /statistics answers the hand-counted totals, per recipe and "*"', async () => {
      assert.deepEqual(await json('/statistics'), { totals: FIXTURE_EXPECTED.statistics });
      assert.deepEqual(await json('/statistics?recipe=alpha'), { totals: { '*': FIXTURE_EXPECTED.statistics.alpha, alpha: FIXTURE_EXPECTED.statistics.alpha } });
    });

    it('GET /statistics/requests and /statistics/errors list newest first with filters and paging', async () => {
      const r = await json<Listed & { requests: Array<{ id: string; recipe: string; email: string | null; timestamp: string }> }>('/statistics/requests?email=ann%40EXAMPLE.org');
      assert.deepEqual(r.requests.map((x) => x.id), FIXTURE_EXPECTED.annIds);
      assert.deepEqual(r.requests[0], { id: 'b5', recipe: 'beta', email: 'ANN@example.org', timestamp: '2026-03-01T12:09:00.000Z' });
      assert.equal(r.total, 3);
      const paged = await json<{ requests: Array<{ id: string }> }>('/statistics/requests?recipe=gamma&limit=3&offset=1');
      assert.deepEqual(paged.requests.map((x) => x.id), ['g19', 'g18', 'g17']);

      const e = await json<Listed & { errors: Array<{ id: string; message: string; timestamp: string }> }>('/statistics/errors');
      assert.deepEqual(e.errors.map((x) => x.id), FIXTURE_EXPECTED.errorIds);
      assert.equal(e.errors[0].message, 'the server answered 404');
      assert.equal(e.errors[0].timestamp, '2026-03-01T12:06:03.000Z');
      const byEmail = await json<{ errors: Array<{ id: string }> }>('/statistics/errors?email=BOB%40example.org&recipe=alpha');
      assert.deepEqual(byEmail.errors.map((x) => x.id), ['a3']);
    });

    it('HEAD answers the headers without a body; other methods are 405', async () => {
      for (const p of ['/status', '/jobs', '/jobs/a1', '/statistics', '/statistics/requests', '/statistics/errors', '/metrics']) {
        const head = await get(p, 'HEAD');
        assert.equal(head.status, 200, p);
        assert.equal(head.text, '', p);
        const post = await get(p, 'POST');
        assert.equal(post.status, 405, p);
        errorOf(post);
      }
    });

    it('values that are odd but valid answer 200 (an empty list), and SQL in a value is only a value', async () => {
      for (const q of [
        "email=a@b.c';DROP/**/TABLE/**/jobs;--",
        `email=${encodeURIComponent("x'or'1'='1")}`,
        `email=${encodeURIComponent('ü@例え.jp')}`,
        'email=%E0%A4%A',
        'email=%F0%9F%92%A9%40x',
        `email=${'e'.repeat(254)}`,
        'offset=1000000000',
        'limit=500&offset=0',
      ]) {
        for (const route of ['/jobs', '/statistics/requests', '/statistics/errors']) {
          const a = await get(`${route}?${q}`);
          assert.equal(a.status, 200, `${route}?${q}: ${a.text.slice(0, 200)}`);
          const list = a.json as Record<string, unknown>;
          const rows = list.jobs ?? list.requests ?? list.errors;
          assert.ok(Array.isArray(rows));
          if (!q.startsWith('limit')) assert.equal(rows.length, 0, `${route}?${q}`);
        }
      }
      assert.equal((await json<Listed>('/jobs')).total, 30, 'the jobs table is still there');
    });
  });

  describe('bad parameters are a 400 naming the parameter, never a crash', () => {
    const LIST_ROUTES = ['/jobs', '/statistics/requests', '/statistics/errors'];
    const badInts = ['-1', '1e3', '1.5', 'abc', '', '99999999999999999999', '%205', '0x10', '%2B5', '%EF%BC%95', 'NaN', 'Infinity', '1,2', '%D9%A3', '5%00'];
    const cases: Array<[string, string]> = [
      ...badInts.map((v): [string, string] => [`limit=${v}`, 'limit']),
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ...badInts.map((v): [string, string] => [`offset=${v}`, 'offset']),
      ['offset=1000000001', 'offset'],
      ['limit=1&limit=2', 'limit'],
      ['offset=0&offset=0', 'offset'],
      ['recipe=alpha&recipe=alpha', 'recipe'],
      [`recipe=${encodeURIComponent("alpha' OR '1'='1")}`, 'recipe'],
      ['recipe=Alpha', 'recipe'],
      [`recipe=${encodeURIComponent('ünïcode')}`, 'recipe'],
      [`recipe=${'a'.repeat(64)}`, 'recipe'],
      ['recipe=', 'recipe'],
      ['recipe=-leading', 'recipe'],
      ['recipe=%00', 'recipe'],
      ['recipe=%E0%A4%A', 'recipe'],
      [`email=${encodeURIComponent("x' OR 1=1 --")}`, 'email'],
      [`email=${'e'.repeat(255)}`, 'email'],
      ['email=', 'email'],
      ['email=a%0Ab', 'email'],
      ['email=a%00b', 'email'],
      [`email=${'e'.repeat(7000)}`, 'email'],
      ['foo=1', 'unknown query parameter "foo"'],
      ['LIMIT=5', 'unknown query parameter "LIMIT"'],
      ['limit[]=1', 'unknown query parameter "limit[]"'],
      ['%FF=1', 'unknown query parameter'],
      [`${'k'.repeat(5000)}=1`, 'unknown query parameter'],
    ];
    for (const route of LIST_ROUTES) {
      for (const [q, names] of cases) {
        it(`GET ${route}?${q.slice(0, 60)}${q.length > 60 ? '…' : ''} is a 400 about ${names.slice(0, 40)}`, async () => {
          const a = await get(`${route}?${q}`);
          assert.equal(a.status, 400, a.text.slice(0, 300));
          const error = errorOf(a);
          assert.ok(error.startsWith(`${names}:`) || error.startsWith(names), error);
          assert.ok(error.length < 300, `the error is bounded: ${error.length} characters`);
        });
      }
    }

    const jobsOnly: Array<[string, string]> = [
      ['state=done', 'state'],
      ['state=QUEUED', 'state'],
      ['state=', 'state'],
      [`state=${encodeURIComponent("queued' OR 1=1 --")}`, 'state'],
      ['state=queued%00', 'state'],
      ['state=queued&state=failed', 'state'],
    ];
    for (const [q, name] of jobsOnly) {
      it(`GET /jobs?${q} is a 400 about ${name}`, async () => {
        const a = await get(`/jobs?${q}`);
        assert.equal(a.status, 400, a.text);
        assert.match(errorOf(a), new RegExp(`^${name}: `));
      });
    }

    it('the statistics lists take no state, /statistics takes only recipe, /status and /metrics take nothing', async () => {
      for (const p of ['/statistics/requests?state=failed', '/statistics/errors?state=failed', '/statistics?email=a@b.c', '/statistics?limit=5', '/status?verbose=1', '/metrics?x=1', '/jobs/a1?full=1']) {
        const a = await get(p);
        assert.equal(a.status, 400, `${p}: ${a.text}`);
        assert.match(errorOf(a), /^unknown query parameter/);
      }
      for (const q of ['recipe=Alpha', 'recipe=', `recipe=${'r'.repeat(100)}`, 'recipe=a&recipe=b']) {
        const a = await get(`/statistics?${q}`);
        assert.equal(a.status, 400, q);
        assert.match(errorOf(a), /^recipe: /);
      }
    });

    it('a 10 kB value is refused with 414 before any route runs', async () => {
      for (const p of [`/jobs?email=${'e'.repeat(10_240)}`, `/statistics?recipe=${'r'.repeat(10_240)}`, `/jobs/${'j'.repeat(10_240)}`]) {
        const a = await get(p);
        assert.equal(a.status, 414);
        errorOf(a);
      }
    });

    it('GET /jobs/:id answers 400 for ids that cannot be one, 404 for unknown ones', async () => {
      for (const p of ['/jobs/..%2F..%2Fstate', '/jobs/%00', `/jobs/${'a'.repeat(129)}`, `/jobs/${encodeURIComponent("a1' OR '1'='1")}`, '/jobs/%E0%A4%A', '/jobs/%C3%BC', '/jobs/.hidden', '/jobs/%20a1']) {
        const a = await get(p);
        assert.equal(a.status, 400, `${p}: ${a.text}`);
        assert.match(errorOf(a), /^id: |not valid URL encoding/);
      }
      for (const p of ['/jobs/nope', '/jobs/a1x', `/jobs/${'a'.repeat(128)}`]) {
        const a = await get(p);
        assert.equal(a.status, 404, p);
        assert.match(errorOf(a), /^no job /);
      }
      assert.equal((await get('/jobs/a1/extra')).status, 404);
    });
  });
});
