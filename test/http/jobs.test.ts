import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiGet, apiJson, type ApiAnswer } from '../helpers/api.js';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { request, shStep } from '../helpers/recipes.js';

const SECRET = 'sk-THE-Secret-7f3a9c';
const TEXT = 'hello output';

const secretive = {
  kind: 'recipe',
  name: 'secretive',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['apiKey'],
    properties: {
      text: { type: 'string', default: 'hello' },
      mode: { type: 'string', default: 'ok' },
      apiKey: { type: 'string', writeOnly: true },
    },
  },
  retries: { attempts: 1 },
  steps: [
    shStep(
      'mkdir -p out && printf %s "$1" > out/result.txt; if [ "$2" = fail ]; then echo "refused key $3" >&2; exit 3; fi',
      '{{params.text}}', '{{params.mode}}', '{{params.apiKey}}',
    ),
  ],
  output: { files: ['out/result.txt'], minBytes: 1 },
};

describe('HTTP job views of real jobs', () => {
  let d: TestDaemon;
  const get = (p: string): Promise<ApiAnswer> => apiGet(d.http.address(), p);
  const json = <T>(p: string): Promise<T> => apiJson<T>(d.http.address(), p);

  before(async () => {
    d = await testDaemon({ recipes: { secretive } });
    d.drop('ok.yaml', request('secretive', { text: TEXT, apiKey: SECRET }, { id: 'req-ok', notify: { email: 'Someone@example.org' } }));
    d.drop('fail.yaml', request('secretive', { mode: 'fail', apiKey: SECRET }, { id: 'req-fail', notify: { email: 'someone@example.org' } }));
    d.drop('later.yaml', request('secretive', { apiKey: SECRET }, { id: 'req-later', notBefore: '2099-01-01T00:00:00Z' }));
    await d.job('req-ok', ended);
    await d.job('req-fail', ended);
    await d.job('req-later', (j) => j.waitReason !== null);
  });
  after(async () => {
    await d?.cleanup();
  });

  it('GET /jobs/:id masks a writeOnly param and links the output, which downloads', async () => {
    const a = await get('/jobs/req-ok');
    assert.equal(a.status, 200);
    assert.ok(!a.text.includes(SECRET), a.text);
    const job = a.json as {
      requestId: string;
      state: string;
      params: Record<string, unknown>;
      attempts: Array<{ outcome: string }>;
      events: Array<{ event: string; at: string }>;
      outputs: Array<{ name: string; bytes: number; sha256: string; link: string }>;
      waiting: unknown;
      error: unknown;
      cachedFrom: unknown;
    };
    assert.equal(job.requestId, 'req-ok');
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(job.params, { text: TEXT, mode: 'ok', apiKey: '***' });
    assert.deepEqual(job.attempts.map((x) => x.outcome), ['succeeded']);
    assert.deepEqual(job.events.map((e) => e.event), ['requested', 'started', 'succeeded']);
    assert.ok(job.events.every((e) => !Number.isNaN(Date.parse(e.at))));
    assert.equal(job.waiting, null);
    assert.equal(job.error, null);
    assert.equal(job.cachedFrom, null);
    assert.equal(job.outputs.length, 1);
    assert.deepEqual([job.outputs[0].name, job.outputs[0].bytes], ['result.txt', TEXT.length]);
    assert.match(job.outputs[0].sha256, /^[0-9a-f]{64}$/);
    const res = await fetch(job.outputs[0].link, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), TEXT);
  });

  it('a failed job shows its error without the secret, in the job, the lists and the error statistics', async () => {
    const job = await json<{ state: string; error: { code: string; message: string } }>('/jobs/req-fail');
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'E_RUN_EXIT');
    const errors = await json<{ errors: Array<{ id: string; recipe: string; email: string; message: string }> }>('/statistics/errors?recipe=secretive');
    assert.equal(errors.errors.length, 1);
    assert.equal(errors.errors[0].email, 'someone@example.org');
    assert.equal(errors.errors[0].message, job.error.message);
  });

  it('a job waiting for its time says so, with its place in the lane', async () => {
    const job = await json<{ state: string; waiting: { reason: string; position: number } }>('/jobs/req-later');
    assert.equal(job.state, 'queued');
    assert.match(job.waiting.reason, /not before 2099-01-01/);
    assert.equal(job.waiting.position, 1);
  });

  it('no route shows the secret', async () => {
    const ids = (await json<{ jobs: Array<{ id: string }> }>('/jobs')).jobs.map((j) => j.id);
    assert.equal(ids.length, 3);
    const paths = ['/status', '/jobs', '/jobs?state=failed', ...ids.map((id) => `/jobs/${id}`), '/statistics', '/statistics/requests', '/statistics/errors', '/metrics'];
    for (const p of paths) {
      const a = await get(p);
      assert.equal(a.status, 200, p);
      assert.ok(!a.text.includes(SECRET), `${p} shows the secret`);
      assert.ok(!a.text.includes('7f3a9c'), `${p} shows part of the secret`);
    }
  });

  it('GET /statistics counts the real jobs: one address in two cases, one error, the output bytes', async () => {
    const s = await json<{ totals: Record<string, Record<string, number | null>> }>('/statistics?recipe=secretive');
    const t = s.totals.secretive;
    assert.deepEqual(
      { requests: t.requests, emails: t.emails, errors: t.errors, bytes: t.bytes, cacheHits: t.cacheHits },
      { requests: 3, emails: 1, errors: 1, bytes: TEXT.length, cacheHits: 0 },
    );
    assert.equal(typeof t.meanRunSeconds, 'number');
    assert.equal(t.p95RunSeconds, t.meanRunSeconds, 'one succeeded run: mean and p95 are that run');
  });
});
