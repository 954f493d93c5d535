import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signedLink } from '../../src/delivery/links.js';
import { testDaemon, type TestDaemon } from '../helpers/daemon.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const JOB = 'job-1';
const FILE = 'result.zip';
const SECRET_TEXT = 'TOP-SECRET-OUTSIDE-OUTPUTS';

describe('GET /downloads/:job/:file', () => {
  let d: TestDaemon;
  let host: string;
  let port: number;
  const payload = randomBytes(1000);

  /** A request with the path sent exactly as given (no URL normalisation on the client side). */
  function raw(method: string, rawPath: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ host, port, method, path: rawPath, headers, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${rawPath.slice(0, 100)} within 5 s`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The path and query of a signed link for job/file expiring at `expiresAt` (ms). */
  function link(job = JOB, file = FILE, expiresAt = Date.now() + 3_600_000): string {
    const url = new URL(signedLink(d.ctx.publicUrl(), d.ctx.linkKey, job, file, expiresAt));
    assert.equal(url.origin, new URL(d.ctx.publicUrl()).origin);
    return url.pathname + url.search;
  }

  /** The query string of a valid link, to put behind a hand-written path. */
  const query = (job: string, file: string): string => link(job, file).replace(/^[^?]*/, '');

  function jsonError(a: Answer): string {
    assert.match(String(a.headers['content-type']), /application\/json/);
    const body = JSON.parse(a.body.toString('utf8')) as { error?: unknown };
    assert.equal(typeof body.error, 'string');
    return body.error as string;
  }

  before(async () => {
    d = await testDaemon();
    const addr = new URL(d.http.address());
    host = addr.hostname;
    port = Number(addr.port);
    assert.equal(host, '127.0.0.1');
    const outputs = path.join(d.root, 'outputs');
    mkdirSync(path.join(outputs, JOB, 'a-folder'), { recursive: true });
    writeFileSync(path.join(outputs, JOB, FILE), payload);
    mkdirSync(path.join(outputs, 'job-2'), { recursive: true });
    writeFileSync(path.join(outputs, 'job-2', 'other.zip'), 'other job');
    writeFileSync(path.join(d.root, 'secret.txt'), SECRET_TEXT);
    writeFileSync(path.join(outputs, 'secret.txt'), SECRET_TEXT);
  });
  after(async () => {
    await d?.cleanup();
  });

  describe('a good link', () => {
    it('answers 200 with exactly the bytes, as an attachment', async () => {
      const a = await raw('GET', link());
      assert.equal(a.status, 200);
      assert.ok(a.body.equals(payload));
      assert.equal(a.headers['content-length'], String(payload.length));
      assert.match(String(a.headers['content-disposition']), /^attachment; filename\*=UTF-8''result\.zip$/);
      assert.equal(a.headers['accept-ranges'], 'bytes');
    });

    it('works through fetch on the public URL as built', async () => {
      const url = `${d.http.address()}${link()}`;
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(payload));
    });

    it('answers HEAD with the headers and no body', async () => {
      const a = await raw('HEAD', link());
      assert.equal(a.status, 200);
      assert.equal(a.headers['content-length'], String(payload.length));
      assert.equal(a.body.length, 0);
    });

    it('answers 404 for a validly signed file that is not there, and for a folder', async () => {
      assert.equal((await raw('GET', link(JOB, 'gone.zip'))).status, 404);
      assert.equal((await raw('GET', link('job-404', FILE))).status, 404);
      const folder = await raw('GET', link(JOB, 'a-folder'));
      assert.equal(folder.status, 404);
      jsonError(folder);
    });
  });

  describe('Range', () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=0-9', 0, 10],
      ['bytes=-5', 995, 1000],
      ['bytes=5-', 5, 1000],
      ['bytes=990-5000', 990, 1000],
    ];
    for (const [range, from, to] of cases) {
      it(`answers ${range} with 206 and exactly bytes ${from}..${to - 1}`, async () => {
        const a = await raw('GET', link(), { range });
        assert.equal(a.status, 206);
        assert.equal(a.headers['content-range'], `bytes ${from}-${to - 1}/${payload.length}`);
        assert.equal(a.headers['content-length'], String(to - from));
        assert.ok(a.body.equals(payload.subarray(from, to)));
      });
    }

    it('answers an unsatisfiable range with 416', async () => {
      const a = await raw('GET', link(), { range: 'bytes=5000-6000' });
      assert.equal(a.status, 416);
      assert.match(jsonError(a), /range/);
    });

    it('ignores a malformed Range header and sends the whole file', async () => {
      const a = await raw('GET', link(), { range: 'bytes=abc' });
      assert.equal(a.status, 200);
      assert.ok(a.body.equals(payload));
    });
  });

  describe('a bad link is refused with 403', () => {
    const swapLast = (sig: string): string => sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    const withParams = (p: string, set: Record<string, string | null>): string => {
      const u = new URL(p, 'http://x');
      for (const [k, v] of Object.entries(set)) {
        if (v === null) u.searchParams.delete(k);
        else u.searchParams.set(k, v);
      }
      return u.pathname + u.search;
    };
    const sigOf = (p: string): string => new URL(p, 'http://x').searchParams.get('sig')!;
    const expiresOf = (p: string): string => new URL(p, 'http://x').searchParams.get('expires')!;

    const bad: Array<[string, () => string]> = [
      ['a tampered sig', () => withParams(link(), { sig: swapLast(sigOf(link())) })],
      ['a missing sig', () => withParams(link(), { sig: null })],
      ['an empty sig', () => withParams(link(), { sig: '' })],
      ['a non-hex sig', () => withParams(link(), { sig: 'z'.repeat(64) })],
      ['a short sig', () => withParams(link(), { sig: sigOf(link()).slice(0, 32) })],
      ['a sig twice as long', () => withParams(link(), { sig: sigOf(link()).repeat(2) })],
      ['a missing expires', () => withParams(link(), { expires: null })],
      ['an expires in the past', () => link(JOB, FILE, Date.now() - 60_000)],
      ['an expires that is not a number', () => withParams(link(), { expires: 'tomorrow' })],
      ['a negative expires', () => withParams(link(), { expires: '-1' })],
      ['a fractional expires', () => withParams(link(), { expires: `${expiresOf(link())}.5` })],
      ['a huge expires value', () => withParams(link(), { expires: '9'.repeat(40) })],
      ['an expires stretched beyond what was signed', () => withParams(link(), { expires: String(Number(expiresOf(link())) + 86_400) })],
      ['a sig for another file of the same job', () => `/downloads/${JOB}/${FILE}${query(JOB, 'other.zip')}`],
      ['a sig for the same file name of another job', () => `/downloads/${JOB}/${FILE}${query('job-2', FILE)}`],
      ['a sig for another job and file', () => `/downloads/${JOB}/${FILE}${query('job-2', 'other.zip')}`],
      ['no query at all', () => `/downloads/${JOB}/${FILE}`],
    ];
    for (const [what, make] of bad) {
      it(`refuses ${what}`, async () => {
        const a = await raw('GET', make());
        assert.equal(a.status, 403, a.body.toString());
        jsonError(a);
        assert.ok(!a.body.includes(payload.subarray(0, 16)));
      });
    }

    it('refuses a link that expired even if it was signed correctly (HEAD too)', async () => {
      const a = await raw('HEAD', link(JOB, FILE, Date.now() - 1000));
      assert.equal(a.status, 403);
    });
  });

  describe('hostile job ids and file names', () => {
    /** [what, raw path; a query is added, signed for what the server will decode where that makes sense]. */
    const hostile: Array<[string, string, { job: string; file: string } | null]> = [
      ['.. as the job, literally', '/downloads/../secret.txt', null],
      ['.. as the file, literally', '/downloads/job-1/../../secret.txt', null],
      ['%2e%2e as the job', '/downloads/%2e%2e/secret.txt', null],
      ['%2e%2e as the file', `/downloads/${JOB}/%2e%2e`, { job: JOB, file: '..' }],
      ['.. as the job, signed', '/downloads/../secret.txt', { job: '..', file: 'secret.txt' }],
      ['an encoded slash climbing out, signed', `/downloads/${JOB}/..%2F..%2Fsecret.txt`, { job: JOB, file: '../../secret.txt' }],
      ['an encoded slash in the job id, signed', '/downloads/job-1%2F..%2F..%2Fstate/link.key', { job: 'job-1/../../state', file: 'link.key' }],
      ['an encoded slash: job .. and the file in outputs/', '/downloads/..%2F/secret.txt', { job: '../', file: 'secret.txt' }],
      ['an encoded absolute path, signed', `/downloads/${JOB}/%2Fetc%2Fpasswd`, { job: JOB, file: '/etc/passwd' }],
      ['encoded backslashes, signed', `/downloads/${JOB}/..%5C..%5Csecret.txt`, { job: JOB, file: '..\\..\\secret.txt' }],
      ['a NUL in the file name, signed', `/downloads/${JOB}/${FILE}%00.txt`, { job: JOB, file: `${FILE}\u0000.txt` }],
      ['a NUL in the job id, signed', `/downloads/job-1%00/${FILE}`, { job: 'job-1\u0000', file: FILE }],
      ['bad percent-encoding in the file name', `/downloads/${JOB}/%E0%A4%A`, null],
      ['bad percent-encoding in the job id', `/downloads/%E0%A4%A/${FILE}`, null],
      ['a lone % in the file name', `/downloads/${JOB}/100%`, null],
      ['double-encoded dots and slash, signed', `/downloads/${JOB}/%252e%252e%252fsecret.txt`, { job: JOB, file: '%2e%2e%2fsecret.txt' }],
      ['a job id starting with a dot, signed', '/downloads/.hidden/secret.txt', { job: '.hidden', file: 'secret.txt' }],
      ['a file name of a single dot, signed', `/downloads/${JOB}/.`, { job: JOB, file: '.' }],
      ['an empty job id', `/downloads//${FILE}`, null],
      ['an extra path segment', `/downloads/${JOB}/x/${FILE}`, null],
    ];
    for (const [what, rawPath, signFor] of hostile) {
      it(`answers ${what} with 400/403/404, never 500 and never a file outside outputs/`, async () => {
        const q = signFor ? query(signFor.job, signFor.file) : query(JOB, FILE);
        const a = await raw('GET', `${rawPath}${q}`);
        assert.ok([400, 403, 404].includes(a.status), `status ${a.status}: ${a.body.toString()}`);
        jsonError(a);
        assert.ok(!a.body.includes(SECRET_TEXT), 'served a file outside the job folder');
        assert.ok(!a.body.includes(d.ctx.linkKey.toString('hex')), 'served the link key');
      });
    }

    it('refuses a validly signed traversal name with 400 before looking at the disk', async () => {
      const a = await raw('GET', `/downloads/${JOB}/..%2F..%2Fsecret.txt${query(JOB, '../../secret.txt')}`);
      assert.equal(a.status, 400);
    });

    /** Sends a request line exactly as given and returns the status of the answer. */
    function rawTarget(target: string): Promise<number> {
      return new Promise<number>((resolve, reject) => {
        const sock = connect(port, host);
        let text = '';
        const done = (): void => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0));
        sock.setTimeout(5000, () => sock.destroy(new Error('no answer within 5 s')));
        sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
        sock.on('close', done);
        sock.on('error', reject);
        sock.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      });
    }

    // Absolute-form request targets reach the handler as sent; one that does not parse as a URL must not crash it.
    for (const target of ['http://[/downloads/x/y', '//[/downloads/x/y', 'http://exa%mple/x', 'http://h:99999/x']) {
      it(`answers the unparseable request-target ${target} with a 4xx, never 500`, async () => {
        const status = await rawTarget(target);
        assert.ok(status >= 400 && status < 500, `${target}: answered ${status}`);
      });
    }
  });

  describe('other requests', () => {
    it('answers a URL over 8 KiB with 414', async () => {
      const a = await raw('GET', `/downloads/${JOB}/${'a'.repeat(9000)}`);
      assert.equal(a.status, 414);
      jsonError(a);
    });

    it('answers a URL too long for the HTTP parser with 431 JSON, whole, before it closes', async () => {
      // The client is still sending when the parser gives up: the answer must still arrive
      // (not a reset), at any length.
      for (const n of [70_000, 2_000_000]) {
        const a = await raw('GET', `/downloads/${JOB}/${'a'.repeat(n)}`);
        assert.equal(a.status, 431, String(n));
        assert.match(jsonError(a), /too long/);
      }
    });

    it('answers a request that is not HTTP with 400 JSON', async () => {
      const text = await new Promise<string>((resolve, reject) => {
        const sock = connect(port, host);
        let got = '';
        sock.setTimeout(5000, () => sock.destroy(new Error('no answer within 5 s')));
        sock.on('data', (c: Buffer) => (got += c.toString('latin1')));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
        sock.end('HELLO THERE\r\n\r\n');
      });
      assert.match(text, /^HTTP\/1\.1 400 /);
      assert.match(text, /application\/json/);
      assert.match(text, /\{"error":"[^"]+"\}$/);
    });

    for (const method of ['POST', 'PUT', 'DELETE']) {
      it(`answers ${method} on a download with 405 and serves nothing`, async () => {
        const a = await raw(method, link());
        assert.equal(a.status, 405);
        assert.match(jsonError(a), new RegExp(method));
        assert.ok(!a.body.includes(payload.subarray(0, 16)));
      });
    }

    it('answers an unknown route with 404 JSON {error}', async () => {
      for (const p of ['/nope', '/downloads', `/downloads/${JOB}`, '/']) {
        const a = await raw('GET', p);
        assert.equal(a.status, 404, p);
        assert.ok(jsonError(a).length > 0);
      }
    });

    it('answers GET /healthz with 200 {status, db}', async () => {
      const a = await raw('GET', '/healthz');
      assert.equal(a.status, 200);
      const body = JSON.parse(a.body.toString('utf8')) as Record<string, unknown>;
      assert.equal(body.status, 'ok');
      assert.equal(body.db, 'ok');
    });
  });
});
