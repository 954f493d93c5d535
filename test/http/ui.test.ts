import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHttpServer } from '../../src/http/server.js';
import { UI_CSP, uiRoutes } from '../../src/http/ui.js';
import { apiGet, apiJson, errorOf } from '../helpers/api.js';
import { REPO } from '../helpers/cli.js';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { jobWriter } from '../helpers/jobrows.js';
import { request, shStep } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import type { Job } from '../../src/store/jobs.js';

const UI_DIR = path.join(REPO, 'src', 'http', 'ui');
const ASSETS: Array<[string, string, string]> = [
  ['/ui', 'index.html', 'text/html; charset=utf-8'],
  ['/ui/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/ui/style.css', 'style.css', 'text/css; charset=utf-8'],
  ['/ui/icon.svg', 'icon.svg', 'image/svg+xml'],
];
const TOKEN = 'tok-ui-5d1e9a0b7c3f';
const SECRET = 'sk-UI-Secret-9b2d4f';
const HOSTILE = '<img src=x onerror="window.__pwned=1">';

describe('GET /ui: the dashboard files', () => {
  let d: TestDaemon;
  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => apiGet(d.http.address(), p, headers, method);
  before(async () => {
    d = await testDaemon({ config: { http: { port: 0, token: TOKEN } } });
  });
  after(async () => {
    await d?.cleanup();
  });

  it('serves each file without the token, with its type, a strict CSP and no caching without asking', async () => {
    for (const [url, file, type] of ASSETS) {
      const a = await get(url);
      assert.equal(a.status, 200, url);
      assert.equal(a.text, readFileSync(path.join(UI_DIR, file), 'utf8'), url);
      assert.equal(a.headers['content-type'], type, url);
      assert.equal(a.headers['content-security-policy'], UI_CSP, url);
      assert.equal(a.headers['x-content-type-options'], 'nosniff', url);
      assert.equal(a.headers['referrer-policy'], 'no-referrer', url);
      assert.equal(a.headers['x-frame-options'], 'DENY', url);
      assert.equal(a.headers['cache-control'], 'no-cache', url);
      assert.match(String(a.headers.etag), /^"[\w-]{27}"$/, url);
    }
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) {
      assert.ok(UI_CSP.includes(directive), directive);
    }
    assert.ok(!UI_CSP.includes('unsafe'), 'nothing unsafe-inline or unsafe-eval');
  });

  it('answers 304 to a copy it already gave, and HEAD without a body', async () => {
    const first = await get('/ui/app.js');
    const again = await get('/ui/app.js', { 'if-none-match': String(first.headers.etag) });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    const head = await get('/ui', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
  });

  it('says whether the JSON routes want a token, and holds no data itself', async () => {
    const a = await get('/ui/auth');
    assert.equal(a.status, 200);
    assert.deepEqual(a.json, { token: true });
    assert.equal((await get('/status')).status, 401, 'the data still needs the token');
  });

  it('has no inline script or style, and the script never writes HTML', () => {
    const html = readFileSync(path.join(UI_DIR, 'index.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'every script has a src');
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i, 'no inline style or event handler');
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from elsewhere');
    const js = readFileSync(path.join(UI_DIR, 'app.js'), 'utf8');
    assert.doesNotMatch(js, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\('style'|localStorage/);
    assert.doesNotMatch(readFileSync(path.join(UI_DIR, 'style.css'), 'utf8'), /@import|url\(\s*['"]?https?:/i, 'no stylesheet or font from elsewhere');
  });

  it('an installation without the files still starts, and /ui says what is missing', async () => {
    const empty = tempRoot('hopper-ui-empty-');
    const server = await startHttpServer(d.ctx, uiRoutes(d.ctx, empty.root));
    try {
      const a = await apiGet(server.address(), '/ui/style.css');
      assert.equal(a.status, 404);
      assert.match(errorOf(a), /the dashboard file style\.css is missing from this installation/);
    } finally {
      await server.close();
      empty.cleanup();
    }
  });

  const refusals: Array<[string, string, number, RegExp]> = [
    ['GET', '/ui/../package.json', 404, /no such route/],
    ['GET', '/ui/%2e%2e/package.json', 404, /no such route/],
    ['GET', '/ui/..%2F..%2Fpackage.json', 404, /no such route/],
    ['GET', '/ui/index.html', 404, /no such route/],
    ['GET', '/ui/app.js%00', 404, /no such route/],
    ['GET', '/ui/ui.ts', 404, /no such route/],
    ['GET', '/ui?token=abc', 400, /unknown query parameter "token"/],
    ['GET', `/ui/app.js?${'x'.repeat(300)}=1`, 400, /unknown query parameter/],
    ['GET', '/ui/auth?x=1', 400, /unknown query parameter "x"/],
    ['POST', '/ui', 405, /POST is not allowed/],
    ['DELETE', '/ui/app.js', 405, /DELETE is not allowed/],
  ];
  for (const [method, p, status, error] of refusals) {
    it(`refuses ${method} ${p.slice(0, 50)} with ${status}`, async () => {
      const a = await get(p, {}, method);
      assert.equal(a.status, status, a.text.slice(0, 200));
      assert.match(errorOf(a), error);
    });
  }
});

/** A port free now on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('the dashboard from the esbuild build (what npm start runs)', () => {
  const tmp = tempRoot('hopper-ui-dist-');
  after(() => tmp.cleanup());

  it('finds its files in src/http/ui from dist/ and serves them', async () => {
    // The package's own build (package.json "build"), into a copy of the package's layout.
    const pkg = path.join(tmp.root, 'pkg');
    mkdirSync(pkg);
    for (const name of ['src', 'node_modules', 'package.json']) symlinkSync(path.join(REPO, name), path.join(pkg, name));
    await build({ absWorkingDir: REPO, entryPoints: ['src/**/*.ts'], outdir: path.join(pkg, 'dist'), platform: 'node', format: 'esm', target: 'node24', logLevel: 'warning' });
    assert.ok(!existsSync(path.join(pkg, 'dist', 'http', 'ui', 'index.html')), 'the build holds no copy: the files are read from src/');
    const root = path.join(tmp.root, 'root');
    mkdirSync(root);
    const port = await freePort();
    writeFileSync(path.join(root, 'hopper.yaml'), `http: { port: ${port} }\n`);
    const child = spawn(process.execPath, [path.join(pkg, 'dist', 'cli', 'main.js'), 'start', '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const page = await waitFor(`the built daemon to serve /ui (${stderr})`, () => apiGet(base, '/ui').then((a) => a.status === 200 && a), 20_000, 200);
      assert.equal(page.text, readFileSync(path.join(UI_DIR, 'index.html'), 'utf8'));
      assert.equal((await apiGet(base, '/ui/app.js')).status, 200);
      assert.equal((await apiGet(base, '/dashboard')).status, 200);
    } finally {
      child.kill('SIGTERM');
      // Bounded: a daemon that does not stop within 15 s is killed.
      await new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(null);
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => resolve(clearTimeout(kill)));
      });
    }
  });
});

// ---- the page in a real browser ----------------------------------------------------------------

const CHROMIUM = '/usr/bin/chromium';
const browserMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (Debian: apt-get install chromium)`;
const browserRequired = process.env.HOPPER_REQUIRE_BROWSER === '1';
if (browserMissing && !browserRequired) console.log(`# skipping browser tests: ${browserMissing} (set HOPPER_REQUIRE_BROWSER=1 to make this a failure)`);

/** A run step that prints lines, a hostile one among them, and then works, fails or finishes as the params say. */
const work = {
  kind: 'recipe',
  name: 'work',
  description: 'Prints, then works for a while',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['apiKey'],
    properties: {
      note: { type: 'string', default: 'hello' },
      seconds: { type: 'number', default: 0 },
      fail: { type: 'boolean', default: false },
      apiKey: { type: 'string', writeOnly: true },
    },
  },
  resources: { cpus: 1, memory: '512MiB' },
  retries: { attempts: 1 },
  steps: [
    shStep(
      'echo "fetching with key $4"; echo "note: $1"; echo "row 1200 of 5000 written"; sleep "$2"; if [ "$3" = true ]; then echo "upstream answered 503 for $1" >&2; exit 3; fi; mkdir -p out; printf %s "$1" > out/result.txt',
      '{{params.note}}', '{{params.seconds}}', '{{params.fail}}', '{{params.apiKey}}',
    ),
  ],
  output: { files: ['out/result.txt'], minBytes: 1 },
};

/** Fails at once and waits an hour to be retried. */
const flaky = {
  kind: 'recipe',
  name: 'flaky',
  lane: 'slow',
  retries: { attempts: 3, backoff: 'fixed', delay: '1h' },
  steps: [{ run: { command: ['sh', '-c', 'echo "the mirror did not answer" >&2; exit 7'] } }],
};

/** Ended jobs of the last hour, written straight into the store, so the charts have something to draw. */
function seedHistory(d: TestDaemon): void {
  const writer = jobWriter(d.ctx.store.db);
  const now = Date.now();
  let seed = 7;
  const rand = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
  const recipes = ['package-url', 'render', 'link-check'];
  const failures = [
    { code: 'E_FETCH_STATUS', message: 'https://data.example.org/big.csv answered 404 Not Found' },
    { code: 'E_TIMEOUT', message: 'the job took longer than its timeout (30m) and was stopped' },
  ];
  d.ctx.store.db.transaction(() => {
    for (let i = 0; i < 140; i++) {
      const recipe = recipes[i % 3];
      const finishedAt = now - Math.floor(rand() * 58 * 60_000) - 30_000;
      const runMs = 2000 + Math.floor(rand() * (recipe === 'render' ? 20_000 : 90_000));
      const startedAt = finishedAt - runMs;
      const state = rand() < 0.06 ? 'failed' : rand() < 0.03 ? 'canceled' : 'succeeded';
      const error = state === 'failed' ? failures[i % 2] : state === 'canceled' ? { code: 'E_CANCELED', message: 'canceled by a cancel file' } : null;
      writer.insert({
        id: `h${String(i).padStart(4, '0')}`,
        recipe,
        state,
        createdAt: startedAt - 500,
        startedAt,
        finishedAt,
        email: `user${i % 23}@example.org`,
        attempts: [[startedAt, finishedAt, state, error ?? undefined]],
        error,
        outputs: state === 'succeeded' ? [{ name: 'out.zip', bytes: 20_000 + Math.floor(rand() * 4_000_000) }] : [],
      });
    }
  })();
}

// Required and missing: one named failure (a throw in before() alone leaves the summary at "fail 0").
if (browserMissing && browserRequired) {
  it('Chromium is there to drive (HOPPER_REQUIRE_BROWSER=1)', () => assert.fail(`${browserMissing}; HOPPER_REQUIRE_BROWSER=1 makes that a failure`));
}

describe('the dashboard in a real browser (headless Chromium)', { skip: browserMissing ?? false }, () => {
  let d: TestDaemon;
  let browser: Browser | undefined;
  let page: Page;
  let base: string;
  const ids: Record<string, string> = {};
  const problems: string[] = [];
  const requested: string[] = [];
  const auth = { authorization: `Bearer ${TOKEN}` };
  const api = <T>(p: string): Promise<T> => apiJson<T>(base, p, auth);
  const text = (selector: string): Promise<string> => page.locator(selector).first().innerText();
  const asNumber = (s: string): number => Number(s.replace(/,/g, ''));

  before(async () => {
    d = await testDaemon({ recipes: { work, flaky }, config: { http: { port: 0, token: TOKEN }, lanes: { fast: { concurrency: 3 }, slow: { concurrency: 1 } }, resources: { cpus: 4, memory: '4GiB', disk: '20GiB' } } });
    base = d.http.address();
    seedHistory(d);
    d.drop('ok.yaml', request('work', { note: HOSTILE, apiKey: SECRET }, { id: 'req-ok', notify: { email: 'ada@example.org' } }));
    d.drop('fail.yaml', request('work', { fail: true, note: 'report-7', apiKey: SECRET }, { id: 'req-fail', notify: { email: 'bob@example.org' } }));
    d.drop('busy.yaml', request('work', { seconds: 300, note: 'big-export', apiKey: SECRET }, { id: 'req-busy' }));
    d.drop('later.yaml', request('work', { apiKey: SECRET }, { id: 'req-later', notBefore: '2099-01-01T00:00:00Z' }));
    d.drop('gone.yaml', request('work', { apiKey: SECRET }, { id: 'req-gone', notBefore: '2099-01-01T00:00:00Z' }));
    d.drop('flaky.yaml', request('flaky', {}, { id: 'req-flaky' }));
    await d.job('req-gone');
    d.drop('cancel.yaml', { kind: 'cancel', job: 'req-gone' });
    const states: Record<string, (j: Job) => boolean> = {
      'req-ok': ended,
      'req-fail': ended,
      'req-busy': (j) => j.state === 'running',
      'req-later': (j) => j.waitReason !== null,
      'req-gone': (j) => j.state === 'canceled',
      'req-flaky': (j) => j.state === 'retrying',
    };
    for (const [rid, until] of Object.entries(states)) ids[rid] = (await d.job(rid, until, 20_000)).id;
    assert.equal(d.ctx.store.jobs.find('req-ok')?.state, 'succeeded');
    assert.equal(d.ctx.store.jobs.find('req-fail')?.state, 'failed');

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      // Without the background-networking flags Chromium's own connections are refused on a closed network, many at a time.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', locale: 'en-GB', timezoneId: 'UTC' });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    page.on('request', (r) => requested.push(r.url()));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await d?.cleanup();
  });

  it('asks for the token once, keeps it for the tab only, then shows the data', async () => {
    await page.goto(`${base}/ui`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#main').isVisible(), false);
    await page.fill('#token', TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.locator('#main').waitFor({ state: 'visible' });
    await page.locator(`#jobs tr[data-job="${ids['req-ok']}"]`).waitFor();
    const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('hopper.token'), local: localStorage.length, cookie: document.cookie }));
    assert.deepEqual(stored, { session: TOKEN, local: 0, cookie: '' });
    // A reload in the same tab does not ask again.
    await page.reload();
    await page.locator(`#jobs tr[data-job="${ids['req-ok']}"]`).waitFor();
    assert.equal(await page.locator('#login').isVisible(), false);
  });

  it('shows the counts /status and /dashboard answer, and the lanes', async () => {
    const status = await api<{ queueLength: number; delivering: number; processed: number; failed: number; lanes: Record<string, { running: number; concurrency: number; queued: number }> }>('/status');
    const want = { running: status.lanes.fast.running + status.lanes.slow.running, queueLength: status.queueLength, delivering: status.delivering, processed: status.processed, failed: status.failed };
    // The busy job runs; the later and the flaky (retrying) one wait; 140 seeded, ok, fail and gone ended.
    assert.deepEqual([want.running, want.queueLength, want.processed], [1, 2, 143]);
    await waitFor('the counts to be shown', async () => {
      for (const [name, n] of Object.entries(want)) if (asNumber(await text(`[data-count="${name}"]`)) !== n) return false;
      return true;
    });
    assert.match(await text('#lanes [data-lane="fast"]'), /1 of 3 running · 1 queued/);
    assert.match(await text('#lanes [data-lane="slow"]'), /0 of 1 running · 1 queued/);
    assert.match(await text('#resources'), /1 of 4/);
    assert.match(await text('#resources'), /512 MiB of 4\.0 GiB/);
    assert.match(await text('#docker'), /Docker (up|down)/);
    assert.match(await text('#version'), /^\d+\.\d+\.\d+/);
  });

  it('shows the running job ticking, with its last log line', async () => {
    const item = page.locator(`#running li[data-job="${ids['req-busy']}"]`);
    await item.waitFor();
    assert.match(await item.innerText(), /row 1200 of 5000 written/);
    const first = await item.locator('.elapsed').innerText();
    await waitFor('the elapsed time to tick', async () => (await item.locator('.elapsed').innerText()) !== first, 5000);
  });

  it('shows each recipe with the numbers /statistics answers, and a chart of the last hour', async () => {
    const stats = await api<{ totals: Record<string, { requests: number; emails: number; errors: number }> }>('/statistics');
    for (const name of ['work', 'flaky', 'package-url', 'render', 'link-check']) {
      const row = page.locator(`#recipes tr[data-recipe="${name}"]`);
      await row.waitFor();
      const cells = await row.locator('td').allInnerTexts();
      const t = stats.totals[name];
      assert.deepEqual(cells.slice(1, 4).map(asNumber), [t.requests, t.emails, t.errors], name);
      assert.ok((await row.locator('svg.spark rect').count()) > 0 || name === 'flaky', `${name} has bars`);
    }
    const label = await page.locator('#recipes tr[data-recipe="render"] svg.spark').getAttribute('aria-label');
    assert.match(label ?? '', /^render: \d+ ended in the last hour/);
  });

  it('lists failures in plain words', async () => {
    const item = page.locator(`#failures li[data-job="${ids['req-fail']}"]`);
    await item.waitFor();
    assert.match(await item.innerText(), /work: a command failed/);
  });

  it('filters the recent jobs by state and recipe', async () => {
    await page.selectOption('#filter-state', 'failed');
    await waitFor('only failed jobs', async () => {
      const states = await page.locator('#jobs tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.state));
      return states.length > 0 && states.every((s) => s === 'failed');
    });
    await page.selectOption('#filter-state', '');
    await page.selectOption('#filter-recipe', 'flaky');
    await waitFor('only the flaky job', async () => {
      const rows = await page.locator('#jobs tr').evaluateAll((rs) => rs.map((r) => (r as HTMLElement).dataset.job));
      return rows.length === 1 && rows[0] === ids['req-flaky'];
    });
    assert.match(await text(`#jobs tr[data-job="${ids['req-flaky']}"]`), /retrying/);
    await page.selectOption('#filter-recipe', '');
    await page.locator(`#jobs tr[data-job="${ids['req-ok']}"]`).waitFor();
  });

  it("opens a job's detail: params with the secret masked, events, attempts, outputs, log", async () => {
    await page.click(`#jobs tr[data-job="${ids['req-ok']}"]`);
    const body = page.locator('#detail-body');
    await body.locator('h3', { hasText: 'Outputs' }).waitFor();
    const shown = await body.innerText();
    assert.match(shown, /apiKey\s+\*\*\*\s*secret/);
    assert.ok(shown.includes(HOSTILE), 'the hostile param is shown as text');
    // (innerText shows headings as the CSS upper-cases them.)
    assert.match(shown, /events\s+requested.*\s+started.*\s+succeeded/is);
    assert.match(shown, /attempts[\s\S]*succeeded/i);
    assert.match(shown, /fetching with key \*\*\*/);
    const link = body.locator('a', { hasText: 'result.txt' });
    assert.match((await link.getAttribute('href')) ?? '', /^http:\/\/[^/]+\/downloads\//);
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.ok(!(await page.content()).includes(SECRET), 'the secret is nowhere in the page');
    await page.click('#detail-close');
    await body.waitFor({ state: 'hidden' });
  });

  it('says why a queued job waits, and its place', async () => {
    await page.click(`#jobs tr[data-job="${ids['req-later']}"]`);
    const waiting = page.locator('#detail-body .waiting');
    await waiting.waitFor();
    assert.match(await waiting.innerText(), /not before 2099-01-01.*number 1 in the fast lane/);
    await page.keyboard.press('Escape');
    await page.locator('#detail').waitFor({ state: 'hidden' });
  });

  it('shows hostile text as text: nothing it holds runs or becomes an element', async () => {
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    await page.click(`#jobs tr[data-job="${ids['req-ok']}"]`);
    await page.locator('#detail-body pre.log').waitFor();
    assert.ok((await page.locator('#detail-body pre.log').innerText()).includes(`note: ${HOSTILE}`));
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.click('#detail-close');
  });

  it('shows a job submitted after the page loaded, without a reload', async () => {
    const before = requested.filter((u) => u.endsWith('/ui')).length;
    d.drop('new.yaml', request('work', { apiKey: SECRET, note: 'arrived later' }, { id: 'req-new' }));
    const id = (await d.job('req-new')).id;
    await page.locator(`#jobs tr[data-job="${id}"]`).waitFor({ timeout: 15_000 });
    assert.equal(requested.filter((u) => u.endsWith('/ui')).length, before, 'no reload');
  });

  it('asks at most once a second, and not while the tab is hidden', async () => {
    const asked = (): number => requested.filter((u) => u.endsWith('/status')).length;
    const start = asked();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const visible = asked() - start;
    assert.ok(visible >= 1 && visible <= 4, `${visible} polls in 4 s`);
    const setVisibility = (state: string) =>
      page.evaluate((s) => {
        Object.defineProperty(document, 'visibilityState', { value: s, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    await new Promise((resolve) => setTimeout(resolve, 300)); // a poll already under way ends
    const hiddenFrom = asked();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.equal(asked(), hiddenFrom, 'no polls while hidden');
    await setVisibility('visible');
    await waitFor('polling to resume', () => asked() > hiddenFrom, 3000);
  });

  it('fits a phone (390 px) without scrolling sideways, the detail too', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await waitFor('the layout to fit 390 px', fits, 3000);
    await page.click(`#jobs tr[data-job="${ids['req-fail']}"]`);
    await page.locator('#detail-body .failure').waitFor();
    assert.ok(await fits());
    const dialog = await page.locator('#detail').evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    assert.ok(dialog.scroll <= dialog.client, `the detail fits: ${JSON.stringify(dialog)}`);
    await page.click('#detail-close');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('follows the system theme: dark and light differ', async () => {
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await background();
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await background();
    assert.notEqual(dark, light);
    assert.equal(light, 'rgb(244, 246, 249)');
  });

  it('writes a screenshot (docs/dashboard.png with HOPPER_UPDATE_SCREENSHOT=1)', async () => {
    await page.locator('#recipes tr[data-recipe="render"] svg.spark rect').first().waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    const file = process.env.HOPPER_UPDATE_SCREENSHOT === '1' ? path.join(REPO, 'docs', 'dashboard.png') : path.join(d.root, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: false });
    assert.ok(readFileSync(file).length > 10_000);
  });

  it('loaded without console errors or failed requests, asked only the daemon, and never put the token in a URL', () => {
    assert.deepEqual(problems, []);
    assert.ok(requested.length > 10);
    for (const url of requested) {
      assert.ok(url.startsWith(`${base}/`), `only the daemon is asked: ${url}`);
      assert.ok(!url.includes(TOKEN), `the token is in ${url}`);
    }
  });
});
