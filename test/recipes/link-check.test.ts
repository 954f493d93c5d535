import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ended, manualClock, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const RECIPES = new URL('../../recipes/', import.meta.url).pathname;
const SCRIPT = path.join(RECIPES, 'link-check', 'check.mjs');

/** A root whose recipes/ holds the shipped link-check recipe and its folder, as on a real install. */
function rootWithRecipe(): { root: string; cleanup(): void } {
  const t = tempRoot();
  cpSync(path.join(RECIPES, 'link-check.yaml'), path.join(t.root, 'recipes', 'link-check.yaml'));
  cpSync(path.join(RECIPES, 'link-check'), path.join(t.root, 'recipes', 'link-check'), { recursive: true });
  return t;
}

/** Sites to check: fine, moved (in hops), gone, HEAD-refusing, looping, slow. */
async function sites(): Promise<TestServer & { arrivals: Array<{ path: string; at: number }> }> {
  const arrivals: Array<{ path: string; at: number }> = [];
  const s = await httpServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    arrivals.push({ path: p, at: Date.now() });
    const go = (status: number, to: string) => res.writeHead(status, { location: to }).end();
    if (p === '/ok' || p.startsWith('/page')) return res.writeHead(200).end('fine');
    if (p === '/moved') return go(301, '/ok');
    if (p === '/hops') return go(302, '/hops2');
    if (p === '/hops2') return go(308, `${s.url}/ok`);
    if (p === '/gone') return res.writeHead(404).end();
    if (p === '/no-head') return res.writeHead(req.method === 'HEAD' ? 405 : 200).end();
    if (p === '/loop') return go(302, '/loop2');
    if (p === '/loop2') return go(302, '/loop');
    res.writeHead(500).end();
  });
  return Object.assign(s, { arrivals });
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

const csvRows = (text: string): string[][] =>
  text
    .trimEnd()
    .split('\r\n')
    .map((l) => l.split(','));

describe('recipe link-check', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('checks the given links in paced batches and emails a CSV of statuses and redirect hops', { timeout: 60_000 }, async () => {
    const s = await sites();
    cleanups.push(() => s.close());
    const dead = await closedPort();
    const t = rootWithRecipe();
    cleanups.push(t.cleanup);
    const d = await testDaemon({ root: t.root });
    cleanups.push(() => d.stop());
    const urls = ['/ok', '/moved', '/hops', '/gone', '/no-head', '/loop', '/page3'].map((p) => s.url + p).concat(`http://127.0.0.1:${dead}/x`);
    d.drop('lc.yaml', request('link-check', { urls, batch: 3, pauseMs: 400 }, { id: 'lc', notify: { email: 'ops@example.org' } }));
    const job = await d.job('lc', ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');

    const report = readFileSync(path.join(d.root, 'outputs', job.id, 'report.csv'), 'utf8');
    const rows = csvRows(report);
    assert.deepEqual(rows[0], ['url', 'status', 'ok', 'final_url', 'redirects', 'ms', 'error']);
    const byUrl = new Map(rows.slice(1).map((r) => [r[0], r]));
    const row = (p: string) => byUrl.get(s.url + p)!;
    assert.deepEqual(row('/ok').slice(1, 5), ['200', 'yes', `${s.url}/ok`, '']);
    assert.deepEqual(row('/moved').slice(1, 5), ['200', 'yes', `${s.url}/ok`, `301 ${s.url}/ok`]);
    assert.deepEqual(row('/hops').slice(1, 5), ['200', 'yes', `${s.url}/ok`, `302 ${s.url}/hops2 -> 308 ${s.url}/ok`]);
    assert.deepEqual(row('/gone').slice(1, 3), ['404', 'no']);
    assert.deepEqual(row('/no-head').slice(1, 3), ['200', 'yes'], 'a server refusing HEAD is asked with GET');
    assert.match(row('/loop')[6], /redirect loop/);
    assert.match(byUrl.get(`http://127.0.0.1:${dead}/x`)![6], /ECONNREFUSED/);
    assert.equal(rows.length, 1 + urls.length);

    // Batches of 3, each starting 400 ms after the one before; the links of a batch go at once.
    // (The first batch's arrivals lag its start by fetch's own warm-up, so batches 2 and 3 are compared.)
    const firstOf = (p: string) => s.arrivals.find((a) => a.path === p)!.at;
    assert.ok(firstOf('/page3') - firstOf('/gone') >= 390, `paced: ${firstOf('/page3') - firstOf('/gone')} ms`);
    assert.ok(firstOf('/gone') - firstOf('/ok') >= 250, `paced: ${firstOf('/gone') - firstOf('/ok')} ms`);
    assert.ok(firstOf('/loop') - firstOf('/gone') < 300, 'a batch goes at once');

    const mail = await waitFor('the report email', () => emlFiles(path.join(d.root, 'outbox')).map(readEml).find((m) => m.body.includes('report.csv')));
    assert.match(mail.headers.to, /ops@example\.org/);
    const link = /(http:\/\/\S+report\.csv\S*)/.exec(mail.body)![1];
    const res = await fetch(link);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), report);
    const log = readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
    assert.match(log, /batch 3\/3: 8 of 8 checked, 3 broken/);
  });

  it('runs by itself on Monday at 04:00 with the list beside the recipe, reporting to its reportTo', { timeout: 60_000 }, async () => {
    const s = await sites();
    cleanups.push(() => s.close());
    const t = rootWithRecipe();
    cleanups.push(t.cleanup);
    writeFileSync(path.join(t.root, 'recipes', 'link-check', 'urls.txt'), `# weekly\n${s.url}/page1\n\n${s.url}/gone  # known broken\n`);
    const monday4 = new Date(2020, 10, 30, 4, 0).getTime();
    const clock = manualClock(monday4 - 5 * 60_000);
    const d: TestDaemon = await testDaemon({ root: t.root, clock, schedulePollMs: 20 });
    cleanups.push(() => d.stop());
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.arrivals.length, 0, 'not before its time');
    clock.set(monday4);
    const job = await waitFor('the scheduled run', () => d.ctx.store.jobs.find(`schedule-link-check-${new Date(monday4).toISOString().replace(/[-:]|\.\d+/g, '')}`));
    const done = await d.job(job.id, ended, 30_000);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.equal(done.lane, 'slow');
    const rows = csvRows(readFileSync(path.join(d.root, 'outputs', job.id, 'report.csv'), 'utf8'));
    assert.deepEqual(rows.slice(1).map((r) => [r[0], r[1]]), [
      [`${s.url}/page1`, '200'],
      [`${s.url}/gone`, '404'],
    ]);
    const mail = await waitFor('the report email', () => emlFiles(path.join(d.root, 'outbox')).map(readEml)[0]);
    assert.match(mail.headers.to, /webmaster@example\.org/);
  });

  it('its script refuses bad usage with one line and exit 2, and quotes CSV fields', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 20_000 });
    for (const [args, words] of [
      [[], /--out FILE is required/],
      [['--out', 'x.csv'], /no URLs/],
      [['--out', 'x.csv', '--urls', 'http://x', '--batch', '0'], /--batch takes a whole number from 1 to 100/],
      [['--out', 'x.csv', '--urls', 'http://x', '--batch', '1e3'], /--batch/],
      [['--out', 'x.csv', '--bogus'], /Unknown option '--bogus'/],
      [['--out', 'x.csv', '--list', '/nonexistent/list.txt'], /cannot read the list .*ENOENT/],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, words);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
    }
    const t = tempRoot();
    try {
      const out = path.join(t.root, 'r.csv');
      const r = run('--out', out, '--urls', 'ftp://a,b/"c"\nnot a url', '--timeout-ms', '1000');
      assert.equal(r.status, 0, r.stderr);
      const text = readFileSync(out, 'utf8');
      assert.match(text, /^"ftp:\/\/a,b\/""c""",,no,/m, 'RFC 4180 quoting');
      assert.match(text, /\r\nnot a url,,no,not a url,,\d+,not a valid URL\r\n/);
    } finally {
      t.cleanup();
    }
  });
});
