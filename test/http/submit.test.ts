import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { apiGet, apiPost, errorOf, type ApiAnswer } from '../helpers/api.js';
import { ended, rejectionOf, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';

const TOKEN = 'tok-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_TYPE = { 'content-type': 'application/json', ...AUTH };

interface Answer {
  id: string;
  requestId: string | null;
  state: string;
  links: { self: string };
}

interface Problems {
  error: string;
  problems: Array<{ path: string; line: number | null; column: number | null; message: string }>;
}

const bodyOf = <T>(a: ApiAnswer): T => a.json as T;

/** A recipe whose params are strict, to get problems out of a request. */
const strict = {
  ...echoRecipe('strict'),
  params: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: { type: 'string', maxLength: 20 }, seconds: { type: 'number', default: 0 } } },
};

describe('POST /requests', () => {
  let d: TestDaemon;
  let base: string;
  before(async () => {
    const toS3 = { ...echoRecipe('to-s3'), output: { files: ['out/result.txt'], upload: 's3' } };
    d = await testDaemon({ recipes: { echo: echoRecipe('echo'), strict, 'to-s3': toS3 }, config: { http: { port: 0, token: TOKEN }, inbox: { maxFileBytes: '4KiB' } } });
    base = d.http.address();
  });
  after(() => d.cleanup());

  it('takes a JSON request: 201 with the job, its links; the job runs as a dropped one does', async () => {
    const a = await apiPost(base, '/requests', JSON.stringify(request('echo', { text: 'from http' }, { notify: { email: 'someone@example.org' } })), JSON_TYPE);
    assert.equal(a.status, 201, a.text);
    const body = bodyOf<Answer>(a);
    assert.match(body.id, /^\d{8}-\d{6}-[0-9a-f]{10}$/);
    assert.equal(body.requestId, null);
    assert.equal(body.state, 'queued');
    assert.equal(body.links.self, `${d.ctx.publicUrl()}/jobs/${body.id}`);
    const job = await d.job(body.id, ended);
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => e.event), ['requested', 'started', 'succeeded']);
    const self = await apiGet(base, `/jobs/${body.id}`, AUTH);
    assert.equal(self.status, 200);
  });

  it('takes YAML with kind left out, and counts the request in the statistics as a dropped one', async () => {
    const before = (bodyOf<{ totals: Record<string, { requests: number }> }>(await apiGet(base, '/statistics?recipe=echo', AUTH)).totals.echo?.requests ?? 0);
    const a = await apiPost(base, '/requests', 'recipe: echo\nparams:\n  text: yaml body\n', { 'content-type': 'application/yaml', ...AUTH });
    assert.equal(a.status, 201, a.text);
    await d.job(bodyOf<Answer>(a).id, ended);
    const now = bodyOf<{ totals: Record<string, { requests: number }> }>(await apiGet(base, '/statistics?recipe=echo', AUTH)).totals.echo.requests;
    assert.equal(now, before + 1);
  });

  it('is idempotent by id: the same id and content answers 200 with the same job; other content 409', async () => {
    const doc = request('echo', { text: 'once' }, { id: 'http-order-1' });
    const first = await apiPost(base, '/requests', JSON.stringify(doc), JSON_TYPE);
    assert.equal(first.status, 201);
    const again = await apiPost(base, '/requests', stringify(doc), AUTH);
    assert.equal(again.status, 200, again.text);
    assert.equal(bodyOf<Answer>(again).id, bodyOf<Answer>(first).id);
    assert.equal(bodyOf<Answer>(again).requestId, 'http-order-1');
    const other = await apiPost(base, '/requests', JSON.stringify(request('echo', { text: 'twice' }, { id: 'http-order-1' })), JSON_TYPE);
    assert.equal(other.status, 409);
    assert.match(errorOf(other), /id "http-order-1" is already job .+, with different content/);
    assert.equal(d.ctx.store.jobs.list({ recipe: 'echo', limit: 1000 }).filter((j) => j.requestId === 'http-order-1').length, 1);
  });

  it('answers 400 with each problem at its line and column, in the same words as NAME.error.txt', async () => {
    const text = 'kind: request\nrecipe: strict\nparams:\n  text: this text is longer than twenty\n  colour: red\n';
    const a = await apiPost(base, '/requests', text, AUTH);
    assert.equal(a.status, 400, a.text);
    const body = bodyOf<Problems>(a);
    assert.match(body.error, /not valid \(2 problems\)/);
    const byPath = new Map(body.problems.map((p) => [p.path, p]));
    assert.equal(byPath.get('params.text')?.line, 4);
    assert.equal(byPath.get('params.colour')?.line, 5);
    for (const p of body.problems) assert.equal(typeof p.column, 'number');
    d.drop('same-as-http.yaml', text);
    const file = await rejectionOf(d, 'same-as-http.yaml');
    for (const p of body.problems) assert.ok(file.includes(p.message), `NAME.error.txt says: ${p.message}\n${file}`);
    assert.equal(d.ctx.store.jobs.list({ recipe: 'strict' }).length, 0, 'nothing stored');
  });

  it('an unknown recipe and a misspelt key are refused with the sentences a file gets', async () => {
    const a = await apiPost(base, '/requests', JSON.stringify({ recipe: 'ecko', parms: {} }), JSON_TYPE);
    assert.equal(a.status, 400);
    const messages = bodyOf<Problems>(a).problems.map((p) => `${p.path}: ${p.message}`).join('\n');
    assert.match(messages, /did you mean "echo"/);
    assert.match(messages, /parms/);
  });

  const refusals: Array<[string, string | Buffer, Record<string, string>, RegExp]> = [
    ['an empty body', '', {}, /empty/],
    ['a binary body', Buffer.from([0x6b, 0x00, 0x01, 0xff]), {}, /binary/],
    ['a list, not a document', '- recipe: echo\n', {}, /must be a mapping/],
    ['a cancel', 'kind: cancel\njob: x\n', {}, /takes requests.*POST \/jobs\/ID\/cancel/],
    ['a recipe', 'kind: recipe\nname: sneaky\n', {}, /takes requests/],
    ['broken YAML', 'recipe: [echo\n', {}, /line/],
    ['two documents', 'recipe: echo\n---\nrecipe: echo\n', {}, /more than one YAML document/],
    ['an alias bomb', `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nrecipe: echo\n`, {}, /alias/i],
    ['nesting 100 levels deep', `${'['.repeat(100)}${']'.repeat(100)}`, {}, /nests deeper/],
  ];
  for (const [what, body, headers, why] of refusals) {
    it(`refuses ${what} with 400 and a reason; the daemon goes on`, async () => {
      const a = await apiPost(base, '/requests', body, { ...AUTH, ...headers });
      assert.equal(a.status, 400, a.text);
      assert.match(JSON.stringify(bodyOf<Problems>(a).problems), why);
      assert.equal((await apiGet(base, '/healthz')).status, 200);
    });
  }

  it('refuses a body over inbox.maxFileBytes with 413, by its Content-Length or as it streams', async () => {
    const big = `recipe: echo\nparams:\n  text: ${'x'.repeat(8000)}\n`;
    const declared = await apiPost(base, '/requests', big, AUTH);
    assert.equal(declared.status, 413);
    assert.match(errorOf(declared), /at most 4\.0 KiB \(inbox\.maxFileBytes\)/);
    const streamed = await apiPost(base, '/requests', big, AUTH, { chunks: 8 });
    assert.equal(streamed.status, 413);
    assert.equal((await apiGet(base, '/healthz')).status, 200);
  });

  it('refuses a compressed body (415) and a query string (400)', async () => {
    const gz = await apiPost(base, '/requests', 'recipe: echo\n', { ...AUTH, 'content-encoding': 'gzip' });
    assert.equal(gz.status, 415);
    const q = await apiPost(base, '/requests?recipe=echo', 'recipe: echo\n', AUTH);
    assert.equal(q.status, 400);
  });

  it('two submissions without an id are two jobs, as two dropped files are', async () => {
    const doc = JSON.stringify(request('echo', { text: 'twice' }));
    const [a, b] = await Promise.all([apiPost(base, '/requests', doc, JSON_TYPE), apiPost(base, '/requests', doc, JSON_TYPE)]);
    assert.deepEqual([a.status, b.status], [201, 201]);
    assert.notEqual(bodyOf<Answer>(a).id, bodyOf<Answer>(b).id);
  });

  it('refuses what this host could never run, as intake does (a recipe uploading to S3 without s3)', async () => {
    const a = await apiPost(base, '/requests', 'recipe: to-s3\nparams: { text: x }\n', AUTH);
    assert.equal(a.status, 400, a.text);
    assert.match(bodyOf<Problems>(a).problems[0].message, /uploads to S3, but hopper\.yaml has no s3 section/);
  });

  it('refuses a request a web page of another site sends, even with the token (403)', async () => {
    const sites: Array<Record<string, string>> = [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }];
    for (const headers of sites) {
      const a = await apiPost(base, '/requests', 'recipe: echo\n', { ...AUTH, ...headers });
      assert.equal(a.status, 403, a.text);
      assert.match(errorOf(a), /web page/);
    }
  });

  it('ends the connection after refusing a body it did not read (401), instead of reading on', async () => {
    const a = await apiPost(base, '/requests', 'recipe: echo\n'.repeat(100), {});
    assert.equal(a.status, 401);
    assert.equal(a.headers.connection, 'close');
  });

  it('needs the token: 401 without it or with a wrong one; GET is 405', async () => {
    const tries: Array<Record<string, string>> = [{}, { authorization: 'Bearer tok-wrong-wrong-wrong' }];
    for (const headers of tries) {
      const a = await apiPost(base, '/requests', 'recipe: echo\n', headers);
      assert.equal(a.status, 401);
    }
    assert.equal((await apiGet(base, '/requests', AUTH)).status, 405);
  });
});

describe('POST /jobs/:id/cancel', () => {
  let d: TestDaemon;
  let base: string;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe('echo') }, config: { http: { port: 0, token: TOKEN } } });
    base = d.http.address();
  });
  after(() => d.cleanup());

  it('cancels a running job by its request id, as a cancel file does', async () => {
    const a = await apiPost(base, '/requests', JSON.stringify(request('echo', { text: 'long', seconds: 30 }, { id: 'http-long' })), JSON_TYPE);
    assert.equal(a.status, 201);
    await d.job('http-long', (j) => j.state === 'running');
    const c = await apiPost(base, '/jobs/http-long/cancel', '', AUTH);
    assert.equal(c.status, 200, c.text);
    assert.equal(bodyOf<{ cancelRequested: boolean }>(c).cancelRequested, true);
    assert.equal(bodyOf<Answer>(c).id, bodyOf<Answer>(a).id);
    const job = await d.job('http-long', ended, 10_000);
    assert.equal(job.state, 'canceled');
  });

  it('cancels a queued job by its job id before it runs', async () => {
    const a = await apiPost(base, '/requests', JSON.stringify(request('echo', { text: 'later' }, { notBefore: '2099-01-01T00:00:00Z' })), JSON_TYPE);
    const id = bodyOf<Answer>(a).id;
    const c = await apiPost(base, `/jobs/${id}/cancel`, '', AUTH);
    assert.equal(c.status, 200);
    const job = await d.job(id, ended);
    assert.equal(job.state, 'canceled');
    assert.equal(job.startedAt, null);
  });

  it('404 for no such job, 409 for one that ended, 401 without the token', async () => {
    const none = await apiPost(base, '/jobs/no-such-job/cancel', '', AUTH);
    assert.equal(none.status, 404);
    assert.match(errorOf(none), /no job or request with id "no-such-job"/);
    const a = await apiPost(base, '/requests', JSON.stringify(request('echo', { text: 'quick' })), JSON_TYPE);
    const id = bodyOf<Answer>(a).id;
    await d.job(id, ended);
    const late = await apiPost(base, `/jobs/${id}/cancel`, '', AUTH);
    assert.equal(late.status, 409);
    assert.match(errorOf(late), /already ended \(succeeded\)/);
    assert.equal((await apiPost(base, `/jobs/${id}/cancel`, '')).status, 401);
  });
});

describe('taking requests over HTTP without a token', () => {
  it('is refused (403) even on loopback, while reads stay open', async (t) => {
    const d = await testDaemon({ recipes: { echo: echoRecipe('echo') } });
    t.after(() => d.cleanup());
    const a = await apiPost(d.http.address(), '/requests', 'recipe: echo\n');
    assert.equal(a.status, 403);
    assert.match(errorOf(a), /needs http\.token .*allowAnonymousSubmit/);
    assert.equal((await apiPost(d.http.address(), '/jobs/x/cancel', '')).status, 403);
    assert.equal((await apiGet(d.http.address(), '/status')).status, 200);
    assert.equal(d.ctx.store.jobs.list().length, 0);
  });

  it('is taken with http.allowAnonymousSubmit: true, from programs and from its own pages', async (t) => {
    const d = await testDaemon({ recipes: { echo: echoRecipe('echo') }, config: { http: { port: 0, allowAnonymousSubmit: true } } });
    t.after(() => d.cleanup());
    const base = d.http.address();
    const a = await apiPost(base, '/requests', 'recipe: echo\nparams: { text: anonymous }\n');
    assert.equal(a.status, 201, a.text);
    assert.equal((await d.job(bodyOf<Answer>(a).id, ended)).state, 'succeeded');
    const own = await apiPost(base, '/requests', 'recipe: echo\n', { origin: base, 'sec-fetch-site': 'same-origin' });
    assert.equal(own.status, 201, own.text);
  });

  it('with allowAnonymousSubmit, still refuses other sites and other names for this address (DNS rebinding)', async (t) => {
    const d = await testDaemon({ recipes: { echo: echoRecipe('echo') }, config: { http: { port: 0, allowAnonymousSubmit: true } } });
    t.after(() => d.cleanup());
    const base = d.http.address();
    const refused: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
      { 'sec-fetch-site': 'same-site' },
      { host: `rebound.evil.example:${new URL(base).port}` },
    ];
    for (const headers of refused) {
      const a = await apiPost(base, '/requests', 'recipe: echo\n', headers);
      assert.equal(a.status, 403, `${JSON.stringify(headers)}: ${a.text}`);
      assert.equal((await apiPost(base, '/jobs/x/cancel', '', headers)).status, 403);
    }
    assert.equal(d.ctx.store.jobs.list().length, 0, 'nothing taken');
  });

  it('with a token set as well, a request without it is still 401', async (t) => {
    const d = await testDaemon({ recipes: { echo: echoRecipe('echo') }, config: { http: { port: 0, token: TOKEN, allowAnonymousSubmit: true } } });
    t.after(() => d.cleanup());
    assert.equal((await apiPost(d.http.address(), '/requests', 'recipe: echo\n')).status, 401);
  });
});
