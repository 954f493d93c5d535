import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiGet, errorOf } from '../helpers/api.js';
import { testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { insertFixture } from '../helpers/jobrows.js';

const TOKEN = 'tok-3b9e1d0c7a5f';
const ROUTES = ['/status', '/jobs', '/jobs/a1', '/jobs/nope', '/statistics', '/statistics/requests', '/statistics/errors', '/metrics'];

describe('the bearer token (config http.token)', () => {
  let d: TestDaemon;
  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => apiGet(d.http.address(), p, headers, method);

  before(async () => {
    d = await testDaemon({ config: { http: { port: 0, token: TOKEN } } });
    insertFixture(d.ctx.store.db);
  });
  after(async () => {
    await d?.cleanup();
  });

  const wrong: Array<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer tok-wrong' }],
    ['the token with one character more', { authorization: `Bearer ${TOKEN}x` }],
    ['the token without its last character', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the token without "Bearer "', { authorization: TOKEN }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['the token in the query instead', {}],
  ];
  for (const [what, headers] of wrong) {
    it(`answers 401 to ${what} on every route but /healthz and /downloads`, async () => {
      for (const route of ROUTES) {
        const p = what.includes('query') ? `${route}?token=${TOKEN}` : route;
        const a = await get(p, headers);
        assert.equal(a.status, 401, `${what}: ${p} answered ${a.status}`);
        assert.equal(a.headers['www-authenticate'], 'Bearer');
        assert.match(errorOf(a), /token/);
        assert.deepEqual(Object.keys(a.json as object), ['error'], 'nothing but the error behind a 401');
      }
    });
  }

  it('answers with the right token (HEAD too)', async () => {
    for (const route of ROUTES) {
      const a = await get(route, { authorization: `Bearer ${TOKEN}` });
      assert.equal(a.status, route === '/jobs/nope' ? 404 : 200, `${route}: ${a.text.slice(0, 200)}`);
      assert.equal((await get(route, { authorization: `Bearer ${TOKEN}` }, 'HEAD')).status, route === '/jobs/nope' ? 404 : 200);
    }
  });

  it('checks the token before the parameters: a bad parameter without a token is a 401, not a 400', async () => {
    const a = await get('/jobs?limit=-1');
    assert.equal(a.status, 401);
    const b = await get('/jobs?limit=-1', { authorization: `Bearer ${TOKEN}` });
    assert.equal(b.status, 400);
  });

  it('serves /healthz and /downloads without the token (downloads check their signature instead)', async () => {
    const h = await get('/healthz');
    assert.equal(h.status, 200);
    assert.equal((h.json as { status: string }).status, 'ok');
    const dl = await get('/downloads/a1/a1.zip?expires=1&sig=00');
    assert.equal(dl.status, 403);
  });
});

describe('without a token: only at the daemon\'s own name (DNS rebinding)', () => {
  let d: TestDaemon;
  const get = (p: string, host: string) => apiGet(d.http.address(), p, { host });

  before(async () => {
    d = await testDaemon({ config: { http: { port: 0, publicUrl: 'http://hopper.internal:8765' } } });
    insertFixture(d.ctx.store.db);
  });
  after(async () => {
    await d?.cleanup();
  });

  it('refuses every read route to a request naming another host, as a page rebound to 127.0.0.1 would', async () => {
    for (const route of [...ROUTES, '/dashboard', '/jobs/a1/log']) {
      const a = await get(route, 'attacker.example:8765');
      assert.equal(a.status, 403, `${route} answered ${a.status}`);
      assert.match(errorOf(a), /only at this daemon's own address, not at "attacker\.example:8765"/);
    }
  });

  it('answers at its own names: loopback, localhost, the bound address and publicUrl\'s host; /healthz at any', async () => {
    const port = new URL(d.http.address()).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'hopper.internal:8765']) {
      assert.equal((await get('/status', host)).status, 200, host);
    }
    assert.equal((await get('/healthz', 'attacker.example')).status, 200);
  });
});
