import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { apiGet, apiJson, errorOf, type ApiAnswer } from '../helpers/api.js';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { jobWriter } from '../helpers/jobrows.js';
import { request, shStep } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import type { Dashboard } from '../../src/http/dashboard.js';

const SECRET = 'sk-dash-Secret-41c7e2';
const HOSTILE = '<img src=x onerror="window.__pwned=1">';
const MiB = 1024 * 1024;

/** Prints lines (one with the secret, which job.log masks), then works for a while, or fails. */
const worker = {
  kind: 'recipe',
  name: 'worker',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['apiKey'],
    properties: { seconds: { type: 'number', default: 0 }, apiKey: { type: 'string', writeOnly: true }, fail: { type: 'boolean', default: false } },
  },
  resources: { cpus: 1, memory: '256MiB', disk: '8MiB' },
  retries: { attempts: 1 },
  steps: [
    shStep(
      `for i in 1 2 3 4 5; do echo "line $i"; done; echo "using key $2"; echo 'step ${HOSTILE} 2 of 5'; sleep "$1"; if [ "$3" = true ]; then exit 4; fi; mkdir -p out; echo done > out/r.txt`,
      '{{params.seconds}}', '{{params.apiKey}}', '{{params.fail}}',
    ),
  ],
  output: { files: ['out/r.txt'], minBytes: 1 },
};

describe('GET /dashboard and GET /jobs/:id/log', () => {
  let d: TestDaemon;
  const get = (p: string, method = 'GET'): Promise<ApiAnswer> => apiGet(d.http.address(), p, {}, method);
  const json = <T>(p: string): Promise<T> => apiJson<T>(d.http.address(), p);

  before(async () => {
    d = await testDaemon({ recipes: { worker }, config: { resources: { cpus: 4, memory: '1GiB', disk: '1GiB' } } });
    d.drop('done.yaml', request('worker', { apiKey: SECRET }, { id: 'req-done' }));
    d.drop('busy.yaml', request('worker', { apiKey: SECRET, seconds: 120 }, { id: 'req-busy' }));
    await d.job('req-done', ended);
    await d.job('req-busy', (j) => j.state === 'running');
    // The busy job has printed its lines.
    await waitFor('the busy job to print', async () => ((await json<Dashboard>('/dashboard')).running.jobs[0]?.lastLine ?? '').startsWith('step'));
  });
  after(async () => {
    await d?.cleanup();
  });

  it('lists a running job with its elapsed start and last log line, as text, secrets masked', async () => {
    const a = await get('/dashboard');
    assert.ok(!a.text.includes(SECRET));
    const body = a.json as Dashboard;
    assert.equal(body.running.total, 1);
    const [job] = body.running.jobs;
    assert.equal(job.requestId, 'req-busy');
    assert.equal(job.recipe, 'worker');
    assert.equal(job.lane, 'fast');
    assert.equal(job.attempt, 1);
    assert.ok(job.startedAt && Date.parse(job.startedAt) <= Date.parse(body.now));
    assert.equal(job.lastLine, `step ${HOSTILE} 2 of 5`);
  });

  it('shows what running jobs reserve against the budget and the host', async () => {
    const { resources } = await json<Dashboard>('/dashboard');
    assert.deepEqual(resources.budget, { cpus: 4, memory: 1024 * MiB, disk: 1024 * MiB });
    assert.deepEqual(resources.reserved, { cpus: 1, memory: 256 * MiB, disk: 8 * MiB });
    assert.ok(resources.host.cpus >= 1 && resources.host.memory > resources.host.freeMemory);
    assert.ok(resources.host.freeDisk === null || resources.host.freeDisk > 0);
  });

  it('gives each recipe its median run time and what ended per minute over the last hour', async () => {
    const now = Date.now();
    const minute = 60_000;
    // Four runs of 10, 20, 30 and 400 s that ended 5, 5, 30 and 90 minutes ago (the last outside the hour), one failed 5 minutes ago.
    const writer = jobWriter(d.ctx.store.db);
    const runs: Array<[string, number, number, 'succeeded' | 'failed']> = [
      ['hist-1', 10, 5, 'succeeded'],
      ['hist-2', 20, 5, 'succeeded'],
      ['hist-3', 30, 30, 'succeeded'],
      ['hist-4', 400, 90, 'succeeded'],
      ['hist-5', 5, 5, 'failed'],
    ];
    d.ctx.store.db.transaction(() => {
      for (const [id, seconds, minutesAgo, state] of runs) {
        const finishedAt = now - minutesAgo * minute;
        const startedAt = finishedAt - seconds * 1000;
        writer.insert({ id, recipe: 'history', state, createdAt: startedAt - 1000, startedAt, finishedAt, attempts: [[startedAt, finishedAt, state]], error: state === 'failed' ? { code: 'E_RUN_EXIT', message: 'boom' } : null });
      }
    })();
    const { activity } = await json<Dashboard>('/dashboard');
    assert.equal(activity.minutes, 60);
    const since = Date.parse(activity.since);
    assert.equal(since % minute, 0, 'the window starts on a whole minute');
    const h = activity.recipes.history;
    assert.equal(h.medianRunSeconds, 20, 'the lower middle of 10, 20, 30, 400');
    assert.equal(h.finishedPerMinute.length, 60);
    assert.equal(h.finishedPerMinute.reduce((s, n) => s + n, 0), 4, 'three succeeded and one failed within the hour');
    assert.equal(h.failedPerMinute.reduce((s, n) => s + n, 0), 1);
    const slot = (minutesAgo: number): number => Math.floor((now - minutesAgo * minute - since) / minute);
    assert.equal(h.finishedPerMinute[slot(5)], 3);
    assert.equal(h.failedPerMinute[slot(5)], 1);
    assert.equal(h.finishedPerMinute[slot(30)], 1);
    assert.ok(activity.recipes.worker.finishedPerMinute.reduce((s, n) => s + n, 0) >= 1, 'the real job that succeeded counts');
    assert.equal(typeof activity.recipes.worker.medianRunSeconds, 'number');
  });

  it('GET /jobs/:id/log gives the last lines, by job id or request id, secrets masked', async () => {
    const byRequest = await get('/jobs/req-done/log?tail=3');
    assert.equal(byRequest.status, 200, byRequest.text);
    assert.ok(!byRequest.text.includes(SECRET));
    const body = byRequest.json as { id: string; lines: string[] };
    assert.equal(body.lines.length, 3);
    assert.ok(body.lines.some((l) => l === `step ${HOSTILE} 2 of 5`), body.lines.join('\n'));
    const byId = await json<{ id: string; lines: string[] }>(`/jobs/${body.id}/log`);
    assert.equal(byId.id, body.id);
    assert.ok(byId.lines.length > 3 && byId.lines.length <= 50);
    assert.ok(byId.lines.some((l) => /using key \*{3}/.test(l)), byId.lines.join('\n'));
    assert.ok(byId.lines.every((l) => !l.includes(SECRET)));
    const one = await json<{ lines: string[] }>(`/jobs/${body.id}/log?tail=1`);
    assert.deepEqual(one.lines, byId.lines.slice(-1));
  });

  it('GET /jobs/:id/log masks a secret that reached job.log unscrubbed, also across the cut of a long line (the second net)', async () => {
    const job = d.ctx.store.jobs.find('req-done')!;
    // Written past the daemon's own scrubbing, as a line a step printed some other way might be.
    appendFileSync(path.join(d.ctx.paths.jobs, job.id, 'job.log'), `raw ${SECRET} here\n${'x'.repeat(1990)}${SECRET}${'y'.repeat(50)}\n`);
    const lines = (await json<{ lines: string[] }>(`/jobs/${job.id}/log?tail=2`)).lines;
    assert.equal(lines[0], 'raw *** here');
    assert.ok(lines[1].startsWith('x'.repeat(1990)) && lines[1].endsWith('…'), lines[1].slice(1980));
    assert.ok(lines.every((l) => !l.includes(SECRET) && !l.includes(SECRET.slice(0, 10))), lines[1].slice(1980));
  });

  it('a job without a log yet has no lines', async () => {
    d.drop('later.yaml', request('worker', { apiKey: SECRET }, { id: 'req-later', notBefore: '2099-01-01T00:00:00Z' }));
    await d.job('req-later');
    assert.deepEqual((await json<{ lines: string[] }>('/jobs/req-later/log')).lines, []);
  });

  const refusals: Array<[string, number, RegExp]> = [
    ['/dashboard?limit=5', 400, /unknown query parameter "limit".*takes none/],
    ['/dashboard?%3Cscript%3E=1', 400, /unknown query parameter "<script>"/],
    ['/jobs/req-done/log?tail=0', 400, /tail: must be an integer from 1 to 1000/],
    ['/jobs/req-done/log?tail=-1', 400, /tail: must be an integer/],
    ['/jobs/req-done/log?tail=1001', 400, /tail: must be an integer/],
    ['/jobs/req-done/log?tail=1e3', 400, /tail: must be an integer/],
    ['/jobs/req-done/log?tail=abc', 400, /tail: must be an integer/],
    ['/jobs/req-done/log?tail=', 400, /tail: must be an integer/],
    [`/jobs/req-done/log?tail=${'9'.repeat(400)}`, 400, /tail: must be an integer/],
    ['/jobs/req-done/log?tail=5&tail=6', 400, /tail: give it at most once/],
    ['/jobs/req-done/log?lines=5', 400, /unknown query parameter "lines" \(this route takes tail\)/],
    ['/jobs/..%2F..%2Fhopper.yaml/log', 400, /id: not a job id/],
    // The URL parser resolves an encoded ".." before routing: no route, and never a file.
    ['/jobs/%2e%2e/log', 404, /no such route/],
    ['/jobs/..%2Fstate%2Fjobs/log', 400, /id: not a job id/],
    ['/jobs/%ZZ/log', 400, /not valid URL encoding/],
    [`/jobs/${'a'.repeat(129)}/log`, 400, /id: not a job id/],
    ['/jobs/no-such-job/log', 404, /no job no-such-job/],
    [`/jobs/req-done/log?tail=${'x'.repeat(9000)}`, 414, /too long/],
  ];
  for (const [p, status, error] of refusals) {
    it(`refuses ${p.length > 60 ? `${p.slice(0, 60)}…` : p} with ${status} and a JSON error`, async () => {
      const a = await get(p);
      assert.equal(a.status, status, a.text.slice(0, 200));
      assert.match(errorOf(a), error);
    });
  }

  it('refuses methods other than GET and HEAD, and answers HEAD without a body', async () => {
    assert.equal((await get('/dashboard', 'POST')).status, 405);
    assert.equal((await get('/jobs/req-done/log', 'DELETE')).status, 405);
    const head = await get('/dashboard', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });
});

describe('the dashboard routes with a token configured', () => {
  const TOKEN = 'tok-dash-77aa1c-0f3e';
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ config: { http: { port: 0, token: TOKEN } } });
  });
  after(async () => {
    await d?.cleanup();
  });

  it('answer 401 without the token, and with it answer', async () => {
    for (const p of ['/dashboard', '/jobs/x1/log']) {
      const a = await apiGet(d.http.address(), p);
      assert.equal(a.status, 401, p);
      assert.match(errorOf(a), /token/);
      const wrong = await apiGet(d.http.address(), p, { authorization: 'Bearer nope' });
      assert.equal(wrong.status, 401, p);
    }
    assert.equal((await apiGet(d.http.address(), '/dashboard', { authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal((await apiGet(d.http.address(), '/jobs/x1/log', { authorization: `Bearer ${TOKEN}` })).status, 404);
  });

  it('checks the token before the parameters', async () => {
    assert.equal((await apiGet(d.http.address(), '/jobs/x1/log?tail=-5')).status, 401);
    assert.equal((await apiGet(d.http.address(), '/jobs/x1/log?tail=-5', { authorization: `Bearer ${TOKEN}` })).status, 400);
  });
});
