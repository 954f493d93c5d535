import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createGzip, gzipSync } from 'node:zlib';
import { waitFor } from '../helpers/wait.js';
import { afterEach, describe, it } from 'node:test';
import { HopperError } from '../../src/errors.js';
import { DEFAULTS, type Step } from '../../src/recipes/recipe.js';
import { csvField, fetchPagesStep } from '../../src/steps/fetchPages.js';
import { parseSize } from '../../src/units.js';
import { httpServer, REFUSING_PORT, type TestServer } from '../helpers/http.js';
import { afterStep, cleanupStepHarnesses, isCode, stepHarness } from '../helpers/steps.js';

type PagesStep = Extract<Step, { kind: 'fetchPages' }>;

afterEach(cleanupStepHarnesses);

const row = (i: number): Record<string, unknown> => ({ _id: i, name: `row ${i}`, note: i % 7 === 0 ? 'has, a comma and "quotes"\nand a newline' : 'plain', value: i * 1.5 });

/** A CKAN datastore_search in miniature: offset/limit, result.records and result.total. */
async function datastore(total: number, fail: (offset: number, hit: number) => boolean = () => false): Promise<TestServer & { pages: string[] }> {
  const pages: string[] = [];
  let hits = 0;
  const s = await httpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const offset = Number(url.searchParams.get('offset'));
    const limit = Number(url.searchParams.get('limit'));
    pages.push(url.search);
    if (fail(offset, hits++)) return void res.writeHead(503).end('busy');
    const records = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, k) => row(offset + k));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ success: true, result: { records, total } }));
  });
  afterStep(() => s.close());
  return Object.assign(s, { pages });
}

/**
 * `{"result":{"total":1,"records":[{},{},...]}}` of about `bytes` bytes: the
 * records that cost JSON.parse the most for their size (~20 times), as a
 * hostile API would send them.
 */
function emptyRecords(bytes: number): Buffer {
  const head = Buffer.from('{"result":{"total":1,"records":[');
  const tail = Buffer.from('{}]}}');
  const n = Math.floor((bytes - head.length - tail.length) / 3);
  const page = Buffer.alloc(head.length + n * 3 + tail.length);
  head.copy(page, 0);
  page.fill('{},', head.length, head.length + n * 3);
  tail.copy(page, head.length + n * 3);
  return page;
}

/**
 * Runs `work` while a timer ticks every 10 ms on this thread, and returns the
 * longest time between two ticks: a main thread kept busy (a page parsed on
 * it) shows up as a long gap, as it did for the daemon's /healthz.
 */
async function longestStall<T>(work: () => Promise<T>): Promise<{ stallMs: number; outcome: PromiseSettledResult<T> }> {
  let last = performance.now();
  let stallMs = 0;
  const tick = (): void => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  };
  const timer = setInterval(tick, 10);
  try {
    const [outcome] = await Promise.allSettled([work()]);
    tick();
    return { stallMs, outcome };
  } finally {
    clearInterval(timer);
  }
}

/**
 * A real server on 127.0.0.1 answering every request with `page`, run on a
 * thread of its own: writing tens of MiB to a socket takes a main thread's
 * time too, and the stall probe is there to see hopper's, not the server's.
 */
async function offThreadServer(page: Buffer): Promise<{ url: string }> {
  const code = `const { parentPort, workerData } = require('node:worker_threads');
    const server = require('node:http').createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.from(workerData.page));
    });
    server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`;
  const bytes = page.buffer.slice(page.byteOffset, page.byteOffset + page.byteLength) as ArrayBuffer;
  const worker = new Worker(code, { eval: true, execArgv: [], workerData: { page: bytes }, transferList: [bytes] });
  afterStep(() => worker.terminate().then(() => {}));
  const [port] = (await once(worker, 'message', { signal: AbortSignal.timeout(10_000) })) as [number];
  return { url: `http://127.0.0.1:${port}` };
}

/** The threads of this process (Linux): a page worker left running would show as one more. */
function threads(): number | undefined {
  return existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : undefined;
}

function pagesOf(o: Partial<PagesStep> & { url: string; to: string }): PagesStep {
  return { kind: 'fetchPages', query: {}, pageSize: 1000, records: 'result.records', total: 'result.total', limit: undefined, offset: undefined, format: undefined, headers: {}, timeoutMs: 10_000, maxPageBytes: 64 * 1024 * 1024, ...o };
}

describe('fetchPagesStep', () => {
  it('streams every page to CSV with a header and RFC 4180 quoting, row for row', async () => {
    const api = await datastore(12_345);
    const h = stepHarness({ scope: { params: { resource: 'abc-123' } } });
    await fetchPagesStep(pagesOf({ url: `${api.url}/api/3/action/datastore_search`, query: { resource_id: '{{params.resource}}', filters: { kind: 'x' } }, to: 'out/data.csv' }), h.env);
    const lines = readFileSync(path.join(h.workDir, 'out', 'data.csv'), 'utf8');
    const expected = ['_id,name,note,value', ...Array.from({ length: 12_345 }, (_, i) => Object.values(row(i)).map(csvField).join(','))].join('\r\n') + '\r\n';
    assert.equal(lines, expected);
    assert.equal(api.pages.length, 13);
    assert.match(api.pages[0], /resource_id=abc-123/);
    assert.match(decodeURIComponent(api.pages[0]), /filters=\{"kind":"x"\}/);
    assert.ok(!existsSync(path.join(h.workDir, 'out', 'data.csv.part')));
  });

  it('stops at limit, and writes JSONL when asked', async () => {
    const api = await datastore(10_000);
    const h = stepHarness({ scope: { params: { limit: 2500 } } });
    await fetchPagesStep(pagesOf({ url: api.url, limit: '{{params.limit}}', to: 'rows.jsonl' }), h.env);
    const rows = readFileSync(path.join(h.workDir, 'rows.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { _id: number });
    assert.equal(rows.length, 2500);
    assert.equal(rows[2499]._id, 2499);
  });

  it('starts at offset: the rows before it are skipped, limit counts from it, and the header is still written', async () => {
    const api = await datastore(10_000);
    const h = stepHarness({ scope: { params: { limit: 2500, offset: 7000 } } });
    await fetchPagesStep(pagesOf({ url: api.url, pageSize: 1000, limit: '{{params.limit}}', offset: '{{params.offset}}', to: 'rows.jsonl' }), h.env);
    const rows = readFileSync(path.join(h.workDir, 'rows.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { _id: number });
    assert.deepEqual([rows.length, rows[0]._id, rows[2499]._id], [2500, 7000, 9499]);
    assert.match(api.pages[0], /offset=7000&limit=1000/);
    // Past the end: as many as there are.
    const tail = stepHarness({ scope: { params: { offset: 9990 } } });
    await fetchPagesStep(pagesOf({ url: api.url, offset: '{{params.offset}}', to: 'tail.csv' }), tail.env);
    const lines = readFileSync(path.join(tail.workDir, 'tail.csv'), 'utf8').trim().split('\r\n');
    assert.equal(lines.length, 11, 'a header and the last ten rows');
    // No offset given (an optional param left out): from the first row.
    const none = stepHarness({ scope: { params: {} } });
    await fetchPagesStep(pagesOf({ url: api.url, offset: '{{params.offset}}', limit: '3', to: 'first.jsonl' }), none.env);
    assert.equal((JSON.parse(readFileSync(path.join(none.workDir, 'first.jsonl'), 'utf8').split('\n')[0]) as { _id: number })._id, 0);
  });

  it('tries a failing page again, and fails naming the offset when it keeps failing', async () => {
    const flaky = await datastore(3000, (offset, hit) => offset === 1000 && hit < 3);
    const h = stepHarness();
    await fetchPagesStep(pagesOf({ url: flaky.url, to: 'a.csv' }), h.env);
    assert.equal(readFileSync(path.join(h.workDir, 'a.csv'), 'utf8').trim().split('\r\n').length, 3001);

    const broken = await datastore(3000, (offset) => offset === 2000);
    const h2 = stepHarness({ scope: { params: { key: 'secret-key-4711' } } });
    await assert.rejects(
      fetchPagesStep(pagesOf({ url: `${broken.url}/?token={{params.key}}`, headers: { Authorization: '{{params.key}}' }, to: 'b.csv' }), { ...h2.env, secrets: ['secret-key-4711'] }),
      isCode('E_PAGES', /page at offset 2000 failed 3 times \(answered 503\)/),
    );
    assert.ok(!existsSync(path.join(h2.workDir, 'b.csv')) && !existsSync(path.join(h2.workDir, 'b.csv.part')));
  });

  it('fails at once, without trying the page again, when the API answers 4xx (but 408 and 429) or the host does not exist', async () => {
    let hits = 0;
    const refusing = await httpServer((req, res) => {
      hits++;
      res.writeHead(req.url?.includes('slow') ? 429 : 404).end('no such resource');
    });
    afterStep(() => refusing.close());
    const h = stepHarness({ scope: { params: { key: 'secret-key-4711' } } });
    await assert.rejects(
      fetchPagesStep(pagesOf({ url: `${refusing.url}/api/{{params.key}}`, to: 'a.csv' }), { ...h.env, secrets: ['secret-key-4711'] }),
      (err: HopperError) => err.code === 'E_PAGES_CLIENT' && /answered 404 Not Found for the page at offset 0 of http:\/\/127\.0\.0\.1:\d+\/api\/\*\*\*/.test(err.message) && !err.message.includes('secret-key-4711'),
    );
    assert.equal(hits, 1, 'asked once');
    // 429 says: come back later. It is tried again, as a 5xx is.
    await assert.rejects(fetchPagesStep(pagesOf({ url: `${refusing.url}/slow`, to: 'b.csv' }), stepHarness().env), isCode('E_PAGES', /failed 3 times \(answered 429\)/));
    assert.equal(hits, 4);
    await assert.rejects(fetchPagesStep(pagesOf({ url: 'http://no-such-host.invalid/api', to: 'c.csv' }), stepHarness().env), isCode('E_PAGES_NO_HOST', /no such host: no-such-host\.invalid/));
  });

  it('says so when the answer has no list where records points', async () => {
    const api = await datastore(10);
    const h = stepHarness();
    await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, records: 'result.rows', to: 'c.csv' }), h.env), isCode('E_PAGES_SHAPE', /no list at "result\.rows"/));
  });

  it('asks for compression and reads a gzip page as the rows it holds', async () => {
    const encodings: string[] = [];
    const api = await httpServer((req, res) => {
      encodings.push(String(req.headers['accept-encoding']));
      const records = Array.from({ length: 500 }, (_, k) => row(k));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(JSON.stringify({ result: { records, total: 500 } })));
    });
    afterStep(() => api.close());
    const h = stepHarness();
    await fetchPagesStep(pagesOf({ url: api.url, to: 'z.csv' }), h.env);
    assert.equal(readFileSync(path.join(h.workDir, 'z.csv'), 'utf8').split('\r\n')[500], Object.values(row(499)).map(csvField).join(','));
    assert.match(encodings[0], /gzip/);
  });

  it('follows a redirect, and the API key goes only to the origin it was given for', async () => {
    const auths: Array<string | undefined> = [];
    const other = await httpServer((req, res) => {
      auths.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: { records: [row(1)], total: 1 } }));
    });
    const api = await httpServer((req, res) => {
      auths.push(req.headers.authorization);
      res.writeHead(302, { location: `${other.url}/moved${req.url}` }).end();
    });
    afterStep(() => Promise.all([api.close(), other.close()]).then(() => {}));
    const h = stepHarness();
    await fetchPagesStep(pagesOf({ url: api.url, headers: { Authorization: 'key-4711' }, to: 'r.csv' }), h.env);
    assert.deepEqual(auths, ['key-4711', undefined]);
    assert.equal(other.hits.length, 1);
    assert.match(other.hits[0], /^\/moved\/\?offset=0&limit=1000$/);
  });

  for (const [what, handler, code, message] of [
    ['a page larger than maxPageBytes', (res: import('node:http').ServerResponse) => res.writeHead(200).end(JSON.stringify({ result: { records: Array.from({ length: 2000 }, (_, k) => row(k)) } })), 'E_PAGES_SIZE', /offset 0 is larger than maxPageBytes \(64\.0 KiB\)/],
    ['an endless page', (res: import('node:http').ServerResponse) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'.repeat(16_384)), 1);
      res.on('close', () => clearInterval(timer));
    }, 'E_PAGES_SIZE', /maxPageBytes/],
    ['a page that is not JSON', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>'), 'E_PAGES_SHAPE', /offset 0 is not JSON/],
    ['records that are not objects, for CSV', (res: import('node:http').ServerResponse) => res.writeHead(200).end(JSON.stringify({ result: { records: [1, 2, 3], total: 3 } })), 'E_PAGES_SHAPE', /record 0 is not an object/],
    // 60 KiB of `{}` parse to ~1.3 MiB: over what a 64 KiB page may take (16 times), refused unparsed.
    ['a page that would take too much memory to parse', (res: import('node:http').ServerResponse) => res.writeHead(200).end(emptyRecords(60 * 1024)), 'E_PAGES_SIZE', /offset 0 needs more memory to parse than hopper allows \(up to [\d.]+ MiB for its 60\.0 KiB of JSON, at most 1\.0 MiB, with maxPageBytes 64\.0 KiB\)/],
    // A first record of 5,000 fields makes 5,000 columns in every row: 45 KiB of JSON, 500 KiB of CSV.
    ['a page whose rows would be far larger than the page', (res: import('node:http').ServerResponse) => {
      const wide = Object.fromEntries(Array.from({ length: 5000 }, (_, k) => [`k${k}`, 0]));
      res.writeHead(200).end(JSON.stringify({ result: { records: [wide, ...Array.from({ length: 100 }, () => ({}))], total: 101 } }));
    }, 'E_PAGES_SIZE', /rows of the page at offset 0 come to more than hopper allows \(at most 256\.0 KiB of CSV/],
    ['a redirect to a file: URL', (res: import('node:http').ServerResponse) => res.writeHead(302, { location: 'file:///etc/passwd' }).end(), 'E_PAGES_URL', /file:/],
  ] as const) {
    it(`fails clearly on ${what}, leaving no file`, { timeout: 20_000 }, async () => {
      const api = await httpServer((req, res) => {
        req.resume();
        handler(res);
      });
      afterStep(() => api.close());
      const h = stepHarness();
      await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, to: 'x.csv', maxPageBytes: 64 * 1024 }), h.env), isCode(code, message));
      assert.ok(!existsSync(path.join(h.workDir, 'x.csv')) && !existsSync(path.join(h.workDir, 'x.csv.part')));
    });
  }

  it('fails naming the offset when the API never answers or refuses connections', { timeout: 20_000 }, async () => {
    const silent = await httpServer(() => {});
    afterStep(() => silent.close());
    const h = stepHarness();
    await assert.rejects(fetchPagesStep(pagesOf({ url: silent.url, to: 's.csv', timeoutMs: 200 }), h.env), isCode('E_PAGES', /offset 0 failed 3 times \(no answer within 200ms\)/));
    await assert.rejects(fetchPagesStep(pagesOf({ url: `http://127.0.0.1:${REFUSING_PORT}/api`, to: 's.csv' }), h.env), isCode('E_PAGES', /ECONNREFUSED/));
    await assert.rejects(fetchPagesStep(pagesOf({ url: 'ftp://x/', to: 's.csv' }), h.env), isCode('E_PAGES_URL', /ftp:/));
    await assert.rejects(fetchPagesStep(pagesOf({ url: 'no url', to: 's.csv' }), h.env), isCode('E_PAGES_URL', /not a URL/));
  });

  it('stops at once when the job is canceled mid-page', { timeout: 20_000 }, async () => {
    const silent = await httpServer(() => {});
    afterStep(() => silent.close());
    const h = stepHarness();
    const run = fetchPagesStep(pagesOf({ url: silent.url, to: 'c.csv', timeoutMs: 60_000 }), h.env);
    setTimeout(() => h.abort.abort(new HopperError('E_CANCELED', 'canceled by request')), 200);
    const started = Date.now();
    await assert.rejects(run, isCode('E_CANCELED'));
    assert.ok(Date.now() - started < 5000);
  });

  it('gives up a compressed page over maxPageBytes at once, closing the connection (not at the timeout)', { timeout: 20_000 }, async () => {
    let closedAt = 0;
    const api = await httpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-encoding': 'gzip' });
      const gzip = createGzip();
      gzip.pipe(res);
      const timer = setInterval(() => gzip.write(randomBytes(16_384)), 1);
      res.on('close', () => {
        clearInterval(timer);
        closedAt = Date.now();
      });
    });
    afterStep(() => api.close());
    const h = stepHarness();
    const started = Date.now();
    await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, to: 'g.csv', maxPageBytes: 256 * 1024, timeoutMs: 15_000 }), h.env), isCode('E_PAGES_SIZE'));
    await waitFor('the server to see the connection closed', () => closedAt > 0, 5000);
    assert.ok(closedAt - started < 5000, `closed after ${closedAt - started} ms`);
  });

  it('fails naming the offset and the counts when a page holds more records than were asked for', async () => {
    // An API that ignores `limit` on its second page.
    const api = await httpServer((req, res) => {
      const offset = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('offset'));
      const records = Array.from({ length: offset === 0 ? 1000 : 1500 }, (_, k) => row(offset + k));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: { records, total: 5000 } }));
    });
    afterStep(() => api.close());
    const h = stepHarness();
    await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, to: 'm.csv' }), h.env), isCode('E_PAGES_SHAPE', /the answer at offset 1000 holds 1500 records where 1000 were asked for/));
    assert.equal(api.hits.length, 2);
    assert.ok(!existsSync(path.join(h.workDir, 'm.csv')) && !existsSync(path.join(h.workDir, 'm.csv.part')));
  });

  it('refuses a gzip bomb by its decoded size (the default limit), and the event loop never stalls', { timeout: 60_000 }, async (t) => {
    const limit = parseSize(DEFAULTS.maxPageBytes);
    // A few KiB on the wire, 20 MiB of `{}` once decoded: only decoded bytes can catch it.
    const bomb = gzipSync(emptyRecords(20 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < limit / 100, `${bomb.length} bytes compressed`);
    const api = await httpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(bomb);
    });
    afterStep(() => api.close());
    const h = stepHarness();
    const { stallMs, outcome } = await longestStall(() => fetchPagesStep(pagesOf({ url: api.url, to: 'b.csv', maxPageBytes: limit }), h.env));
    t.diagnostic(`longest gap between 10 ms ticks: ${stallMs.toFixed(0)} ms`);
    assert.ok(stallMs < 250, `the event loop stalled for ${stallMs.toFixed(0)} ms`);
    assert.equal(outcome.status, 'rejected');
    isCode('E_PAGES_SIZE', /offset 0 is larger than maxPageBytes \(16\.0 MiB\)/)((outcome as PromiseRejectedResult).reason);
    assert.ok(limit <= 16 * 1024 * 1024, `the default maxPageBytes (${DEFAULTS.maxPageBytes}) is set for real pages, which are a few MiB`);
    assert.ok(!existsSync(path.join(h.workDir, 'b.csv')) && !existsSync(path.join(h.workDir, 'b.csv.part')));
  });

  it('parses a page of millions of tiny objects off the main thread, failing in words', { timeout: 60_000 }, async (t) => {
    // 5 MiB of `{}`: under the default limit and under what it may take to parse
    // (~110 MiB of heap, a second's work), so the worker parses it, then finds
    // 1.7 million records where 1000 were asked for.
    const api = await offThreadServer(emptyRecords(5 * 1024 * 1024));
    const h = stepHarness();
    const { stallMs, outcome } = await longestStall(() => fetchPagesStep(pagesOf({ url: api.url, to: 't.csv', maxPageBytes: parseSize(DEFAULTS.maxPageBytes) }), h.env));
    t.diagnostic(`longest gap between 10 ms ticks: ${stallMs.toFixed(0)} ms`);
    assert.ok(stallMs < 250, `the event loop stalled for ${stallMs.toFixed(0)} ms`);
    assert.equal(outcome.status, 'rejected');
    isCode('E_PAGES_SHAPE', /the answer at offset 0 holds \d{7} records where 1000 were asked for/)((outcome as PromiseRejectedResult).reason);
  });

  it('refuses 32 MiB of tiny objects under a high maxPageBytes (48 MiB) without parsing them, the event loop never stalling', { timeout: 60_000 }, async (t) => {
    // Parsed, these would take ~700 MiB and many seconds; the worker counts them first.
    // (Reading a page is on the main thread, ~2 ms a MiB: the page is not larger, so
    // that a loaded machine does not stretch that past the probe's bound.)
    const api = await offThreadServer(emptyRecords(32 * 1024 * 1024));
    const h = stepHarness();
    const { stallMs, outcome } = await longestStall(() => fetchPagesStep(pagesOf({ url: api.url, to: 'h.csv', maxPageBytes: 48 * 1024 * 1024 }), h.env));
    t.diagnostic(`longest gap between 10 ms ticks: ${stallMs.toFixed(0)} ms`);
    assert.ok(stallMs < 250, `the event loop stalled for ${stallMs.toFixed(0)} ms`);
    assert.equal(outcome.status, 'rejected');
    isCode('E_PAGES_SIZE', /the page at offset 0 needs more memory to parse than hopper allows \(up to [\d.]+ GiB for its 32\.0 MiB of JSON, at most 768\.0 MiB, with maxPageBytes 48\.0 MiB\): ask for a smaller pageSize/)((outcome as PromiseRejectedResult).reason);
    assert.ok(!existsSync(path.join(h.workDir, 'h.csv')) && !existsSync(path.join(h.workDir, 'h.csv.part')));
  });

  it('ends its page worker with the step: done, failed, or canceled with a page in the works', { timeout: 60_000 }, async () => {
    await stat('.'); // libuv starts its thread pool on first use: before counting
    const before = threads();
    const api = await datastore(3000);
    const h = stepHarness();
    await fetchPagesStep(pagesOf({ url: api.url, to: 'done.csv' }), h.env);
    assert.equal(threads(), before, 'after a step that succeeded');
    await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, records: 'result.rows', to: 'failed.csv' }), h.env), isCode('E_PAGES_SHAPE'));
    assert.equal(threads(), before, 'after a step that failed');

    // 8 MiB of `{}` keep the worker parsing for a second or more; the job is canceled as the page arrives.
    const h2 = stepHarness();
    const page = emptyRecords(8 * 1024 * 1024);
    const slow = await httpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(page, () => setTimeout(() => h2.abort.abort(new HopperError('E_CANCELED', 'canceled by request')), 50));
    });
    afterStep(() => slow.close());
    const started = Date.now();
    await assert.rejects(fetchPagesStep(pagesOf({ url: slow.url, to: 'c.csv', maxPageBytes: 64 * 1024 * 1024 }), h2.env), isCode('E_CANCELED'));
    assert.ok(Date.now() - started < 2000, `canceled after ${Date.now() - started} ms`);
    // A JSON.parse under way runs to its end before the thread can stop.
    await waitFor('the page worker of the canceled step to end', () => threads() === before, 15_000);
  });

  it('refuses an offset that is not a whole number of rows', async () => {
    for (const offset of ['-1', '2.5', 'abc']) {
      const h = stepHarness({ scope: { params: { offset } } });
      await assert.rejects(fetchPagesStep(pagesOf({ url: 'http://127.0.0.1:9/', offset: '{{params.offset}}', to: 'o.csv' }), h.env), isCode('E_PAGES_LIMIT', /offset .* whole number/));
    }
  });

  it('refuses a limit that is not a whole number of rows', async () => {
    const h = stepHarness({ scope: { params: { limit: '2.5' } } });
    await assert.rejects(fetchPagesStep(pagesOf({ url: 'http://127.0.0.1:9/', limit: '{{params.limit}}', to: 'l.csv' }), h.env), isCode('E_PAGES_LIMIT', /whole number/));
  });
});
