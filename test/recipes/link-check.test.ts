import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { outboundModuleUrl } from '../../src/net/childPolicy.js';
import { ended, manualClock, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { httpServer, REFUSING_PORT, type TestServer } from '../helpers/http.js';
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


/** An HTTP server on another loopback address (Linux routes all of 127/8 to lo), counting what reaches it. */
async function serverOn(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; port: number; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = createHttpServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The script run by hand, bounded in time, without blocking this process (its servers must answer). */
function runScript(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: unknown }).code as number | null) : 0, stdout, stderr });
    });
  });
}

const REFUSED_LOOPBACK = /^refused: (localhost \()?(127\.0\.0\.1|::ffff:7f00:1)\)? is a loopback address; hopper reaches it only if hopper\.yaml's outbound\.allow names it$/;
const REFUSED_METADATA = /^refused: 169\.254\.169\.254 is a link-local address \(where clouds serve instance metadata\); hopper reaches it only if hopper\.yaml's outbound\.allow names it$/;

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

  it('checks the given links in paced batches and emails a CSV of statuses and redirect hops (loopback allowed by outbound.allow)', { timeout: 60_000 }, async () => {
    const s = await sites();
    cleanups.push(() => s.close());
    const dead = REFUSING_PORT;
    const t = rootWithRecipe();
    cleanups.push(t.cleanup);
    const d = await testDaemon({ root: t.root, config: { outbound: { allow: ['127.0.0.1'] } } });
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

  it('refuses links to loopback when outbound.allow does not name it: reported as refused, never requested', { timeout: 60_000 }, async () => {
    const s = await sites();
    cleanups.push(() => s.close());
    const t = rootWithRecipe();
    cleanups.push(t.cleanup);
    const d = await testDaemon({ root: t.root, config: { outbound: { allow: [] } } });
    cleanups.push(() => d.stop());
    const port = new URL(s.url).port;
    // An address, a name resolving to it (checked after DNS) and the same address IPv4-mapped.
    const urls = [`${s.url}/ok`, `http://localhost:${port}/ok`, `http://[::ffff:127.0.0.1]:${port}/ok`];
    d.drop('lc.yaml', request('link-check', { urls, pauseMs: 0 }, { id: 'lc-refused' }));
    const job = await d.job('lc-refused', ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const rows = csvRows(readFileSync(path.join(d.root, 'outputs', job.id, 'report.csv'), 'utf8'));
    assert.equal(rows.length, 1 + urls.length);
    for (const [i, url] of urls.entries()) {
      const [shown, status, ok, finalUrl, redirects, , error] = rows[1 + i];
      assert.deepEqual([shown, status, ok, finalUrl, redirects], [url, 'refused', 'no', url, '']);
      assert.match(error, REFUSED_LOOPBACK);
    }
    assert.deepEqual(s.arrivals, [], 'no request reached the loopback service');
    const log = readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
    assert.match(log, /report: 3 links, 0 ok, 3 broken \(3 refused by the outbound policy\)/);
  });

  it('refuses a redirect hop into loopback or cloud metadata, and a metadata address given literally, before connecting', { timeout: 60_000 }, async () => {
    // The service a redirect must not reach: 127.0.0.1, another port.
    const inner = await serverOn('127.0.0.1', (_req, res) => res.writeHead(200).end('secret'));
    cleanups.push(() => inner.close());
    // The site the requester names, at an address outbound.allow names.
    const outer = await serverOn('127.0.0.2', (req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      const to = (location: string) => res.writeHead(302, { location }).end();
      if (p === '/ok') return res.writeHead(200).end('fine');
      if (p === '/to-ok') return to('/ok');
      if (p === '/to-loopback') return to(`${inner.url}/secret`);
      if (p === '/to-localhost') return to(`http://localhost:${inner.port}/secret`);
      if (p === '/via') return to('/to-loopback');
      if (p === '/to-metadata') return to('http://169.254.169.254/latest/meta-data/iam/security-credentials/');
      res.writeHead(404).end();
    });
    cleanups.push(() => outer.close());
    const t = rootWithRecipe();
    cleanups.push(t.cleanup);
    const d = await testDaemon({ root: t.root, config: { outbound: { allow: ['127.0.0.2'] } } });
    cleanups.push(() => d.stop());
    const report = async (id: string, urls: string[]): Promise<Map<string, string[]>> => {
      d.drop(`${id}.yaml`, request('link-check', { urls, pauseMs: 0 }, { id }));
      const job = await d.job(id, ended, 30_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      const rows = csvRows(readFileSync(path.join(d.root, 'outputs', job.id, 'report.csv'), 'utf8'));
      assert.equal(rows.length, 1 + urls.length);
      return new Map(rows.slice(1).map((r) => [r[0], r]));
    };

    const hops = await report('lc-hops', ['/to-ok', '/to-loopback', '/to-localhost', '/via'].map((p) => outer.url + p));
    assert.deepEqual(hops.get(`${outer.url}/to-ok`)!.slice(1, 5), ['200', 'yes', `${outer.url}/ok`, `302 ${outer.url}/ok`], 'an allowed hop is followed');
    for (const [from, to] of [
      ['/to-loopback', `${inner.url}/secret`],
      ['/to-localhost', `http://localhost:${inner.port}/secret`],
    ]) {
      const row = hops.get(outer.url + from)!;
      assert.deepEqual(row.slice(1, 5), ['refused', 'no', to, `302 ${to}`], from);
      assert.match(row[6], REFUSED_LOOPBACK);
    }
    assert.deepEqual(hops.get(`${outer.url}/via`)!.slice(1, 5), ['refused', 'no', `${inner.url}/secret`, `302 ${outer.url}/to-loopback -> 302 ${inner.url}/secret`], 'refused at the second hop');
    assert.deepEqual(inner.hits, [], 'no redirect reached the loopback service');

    // Only now (the hop check holds, so nothing will be sent there): the metadata address.
    const metadata = 'http://169.254.169.254/latest/meta-data/';
    const meta = await report('lc-metadata', [`${outer.url}/to-metadata`, metadata]);
    const hop = 'http://169.254.169.254/latest/meta-data/iam/security-credentials/';
    const viaHop = meta.get(`${outer.url}/to-metadata`)!;
    assert.deepEqual(viaHop.slice(1, 5), ['refused', 'no', hop, `302 ${hop}`]);
    assert.match(viaHop[6], REFUSED_METADATA);
    const literal = meta.get(metadata)!;
    assert.deepEqual(literal.slice(1, 5), ['refused', 'no', metadata, '']);
    assert.match(literal[6], REFUSED_METADATA, 'refused by the policy for the literal address, not by a failed connection');
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

  it('its script refuses bad usage with one line and exit 2, and quotes CSV fields', { timeout: 60_000 }, async () => {
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
      const policy = { HOPPER_OUTBOUND_MODULE: await outboundModuleUrl(path.join(t.root, 'state')), HOPPER_OUTBOUND_ALLOW: '[]' };
      const r = await runScript(['--out', out, '--urls', 'ftp://a,b/"c"\nnot a url', '--timeout-ms', '1000'], policy);
      assert.equal(r.code, 0, r.stderr);
      const text = readFileSync(out, 'utf8');
      assert.match(text, /^"ftp:\/\/a,b\/""c""",,no,/m, 'RFC 4180 quoting');
      assert.match(text, /\r\nnot a url,,no,not a url,,\d+,not a valid URL\r\n/);
    } finally {
      t.cleanup();
    }
  });

  it("its script checks nothing without hopper's outbound policy: exit 3, one line, no request, no report", { timeout: 60_000 }, async () => {
    const s = await sites();
    cleanups.push(() => s.close());
    const t = tempRoot();
    cleanups.push(t.cleanup);
    const out = path.join(t.root, 'r.csv');
    const good = await outboundModuleUrl(path.join(t.root, 'state'));
    for (const [env, words] of [
      [{}, /HOPPER_OUTBOUND_MODULE is not set/],
      [{ HOPPER_OUTBOUND_MODULE: good }, /HOPPER_OUTBOUND_ALLOW is not set/],
      [{ HOPPER_OUTBOUND_MODULE: good, HOPPER_OUTBOUND_ALLOW: '127.0.0.1' }, /HOPPER_OUTBOUND_ALLOW is not JSON/],
      [{ HOPPER_OUTBOUND_MODULE: good, HOPPER_OUTBOUND_ALLOW: '["not/a/range"]' }, /the outbound policy refused its allow list/],
      [{ HOPPER_OUTBOUND_MODULE: 'file:///nonexistent/outbound.js', HOPPER_OUTBOUND_ALLOW: '["127.0.0.1"]' }, /cannot load the outbound policy from file:\/\/\/nonexistent\/outbound\.js/],
      [{ HOPPER_OUTBOUND_MODULE: 'data:text/javascript,export const x = 1', HOPPER_OUTBOUND_ALLOW: '["127.0.0.1"]' }, /exports no OutboundPolicy/],
    ] as Array<[Record<string, string>, RegExp]>) {
      const r = await runScript(['--out', out, '--urls', `${s.url}/ok`], env);
      assert.equal(r.code, 3, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, words);
      assert.match(r.stderr, /no link was checked/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
      assert.equal(existsSync(out), false);
    }
    assert.deepEqual(s.arrivals, [], 'nothing was requested unguarded');
    // The same run with the policy (allowing the test server) does check.
    const r = await runScript(['--out', out, '--urls', `${s.url}/ok`], { HOPPER_OUTBOUND_MODULE: good, HOPPER_OUTBOUND_ALLOW: '["127.0.0.1"]' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(csvRows(readFileSync(out, 'utf8'))[1].slice(0, 3), [`${s.url}/ok`, '200', 'yes']);
  });
});
