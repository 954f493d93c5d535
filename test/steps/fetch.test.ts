import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { HopperError } from '../../src/errors.js';
import type { Step } from '../../src/recipes/recipe.js';
import { fetchStep, nameFromUrl } from '../../src/steps/fetch.js';
import { afterStep, cleanupStepHarnesses, isCode, stepHarness, type StepHarness } from '../helpers/steps.js';
import { httpServer, REFUSING_PORT, type TestServer } from '../helpers/http.js';

type FetchStep = Extract<Step, { kind: 'fetch' }>;

const SECRET = 'sekrit-Token-4711';

afterEach(cleanupStepHarnesses);

const harness = (params: Record<string, unknown> = {}, secrets: string[] = []): StepHarness => stepHarness({ scope: { params }, secrets });

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const s = await httpServer(handler);
  afterStep(() => s.close());
  return s;
}

function fetchOf(o: Partial<FetchStep> & { url: string; to: string }): FetchStep {
  return { kind: 'fetch', maxBytes: 1024 ** 3, timeoutMs: 10_000, maxRedirects: 5, headers: {}, ...o };
}

/** Every file under a folder, relative, sorted (to prove nothing, not even a .part, was left). */
function filesIn(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; name: string; parentPath?: string; path?: string }>)
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? d.path ?? dir, d.name)))
    .sort();
}


describe('nameFromUrl', () => {
  const safe = /^[A-Za-z0-9-][A-Za-z0-9._-]{0,199}$/;

  it("uses the URL path's last segment, ignoring query and fragment", () => {
    assert.equal(nameFromUrl(new URL('http://h.example/a/b/report.csv?x=1#frag')), 'report.csv');
    assert.equal(nameFromUrl(new URL('http://h.example/a/b/dir/')), 'dir');
  });

  it('decodes percent-encoding and replaces unsafe characters', () => {
    assert.equal(nameFromUrl(new URL('http://h.example/my%20file%20(1).csv')), 'my_file_1_.csv');
  });

  it("falls back to 'download' for an empty path or a name that is only dots", () => {
    for (const u of ['http://h.example', 'http://h.example/', 'http://h.example//', 'http://h.example/...', 'http://h.example/%00']) {
      assert.equal(nameFromUrl(new URL(u)), 'download', u);
    }
  });

  it("never yields '..', '.', a hidden name or a path for hostile segments", () => {
    const hostile = [
      'http://h.example/a/..',
      'http://h.example/a/%2e%2e',
      'http://h.example/a/%2E%2E/',
      'http://h.example/.%2e',
      'http://h.example/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      'http://h.example/..%2F..%2Fsecret',
      'http://h.example/a%5C..%5C..%5Cwin.ini',
      'http://h.example/.hidden',
      'http://h.example/%E0%A4%A',
      'http://h.example/%00..%00',
      `http://h.example/${'x'.repeat(500)}.csv`,
    ];
    for (const u of hostile) {
      const name = nameFromUrl(new URL(u));
      assert.match(name, safe, `${u} -> ${name}`);
      assert.notEqual(name, '..');
      assert.ok(!name.includes('/') && !name.includes('\\') && !name.includes('\u0000'), `${u} -> ${name}`);
    }
    assert.equal(nameFromUrl(new URL('http://h.example/%2e%2e%2f%2e%2e%2fetc%2fpasswd')), 'etc_passwd');
    assert.equal(nameFromUrl(new URL('http://h.example/.hidden')), 'hidden');
    assert.ok(nameFromUrl(new URL(`http://h.example/${'x'.repeat(500)}`)).length <= 200);
  });
});

describe('fetchStep', () => {
  it('streams the body to `to`, creating subfolders, and leaves nothing else behind', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Several writes: a real stream, not one buffer.
      for (let i = 0; i < body.length; i += 256 * 1024) res.write(body.subarray(i, i + 256 * 1024));
      res.end();
    });
    const h = harness();
    const result = await fetchStep(fetchOf({ url: `${s.url}/big.bin`, to: 'in/deeper/data.bin' }), h.env);
    assert.deepEqual(result, {});
    assert.ok(readFileSync(path.join(h.workDir, 'in/deeper/data.bin')).equals(body));
    assert.deepEqual(filesIn(h.workDir), [path.join('in', 'deeper', 'data.bin')]);
    assert.match(await h.logText(), /fetched 3\.0 MiB from http:\/\/127\.0\.0\.1:\d+\/big\.bin/);
  });

  it('fills placeholders in url, headers and to', async () => {
    let seen: IncomingMessage | undefined;
    const s = await serve((req, res) => {
      seen = req;
      res.end('ok');
    });
    const h = harness({ file: 'a.csv', tag: 'blue', name: 'out.txt' });
    await fetchStep(fetchOf({ url: `${s.url}/files/{{params.file}}`, to: 'x/{{params.name}}', headers: { 'X-Tag': '{{params.tag}}' } }), h.env);
    assert.equal(seen?.url, '/files/a.csv');
    assert.equal(seen?.headers['x-tag'], 'blue');
    assert.equal(readFileSync(path.join(h.workDir, 'x/out.txt'), 'utf8'), 'ok');
  });

  it("names the file after the URL when `to` ends in '/'", async () => {
    const s = await serve((_req, res) => res.end('csv-bytes'));
    const h = harness();
    await fetchStep(fetchOf({ url: `${s.url}/exports/report.csv?page=2`, to: 'incoming/' }), h.env);
    assert.equal(readFileSync(path.join(h.workDir, 'incoming/report.csv'), 'utf8'), 'csv-bytes');
  });

  it("keeps a hostile URL name inside the `to` folder and an empty path becomes 'download'", async () => {
    const s = await serve((_req, res) => res.end('x'));
    const h = harness();
    await fetchStep(fetchOf({ url: `${s.url}/%2e%2e%2f%2e%2e%2fescape.txt`, to: 'dl/' }), h.env);
    await fetchStep(fetchOf({ url: `${s.url}/a/%2e%2e`, to: 'dl2/' }), h.env);
    await fetchStep(fetchOf({ url: `${s.url}/..%5C..%5Cwin.ini`, to: 'dl3/' }), h.env);
    assert.deepEqual(filesIn(h.workDir), [path.join('dl', 'escape.txt'), path.join('dl2', 'download'), path.join('dl3', 'win.ini')]);
    assert.deepEqual(filesIn(path.dirname(h.workDir)).filter((f) => !f.startsWith('work')), ['job.log'], 'nothing was written beside the work dir');
  });

  it('refuses a `to` that leaves the work dir', async () => {
    const s = await serve((_req, res) => res.end('x'));
    const h = harness({ to: '../outside.txt' });
    await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/f`, to: '{{params.to}}' }), h.env), isCode('E_PATH'));
    assert.equal(existsSync(path.join(path.dirname(h.workDir), 'outside.txt')), false);
    assert.equal(s.hits.length, 0, 'nothing was fetched');
  });

  for (const [status, code] of [[404, 'E_FETCH_CLIENT'], [403, 'E_FETCH_CLIENT'], [500, 'E_FETCH_STATUS'], [429, 'E_FETCH_STATUS'], [408, 'E_FETCH_STATUS']] as const) {
    it(`fails with ${code} on HTTP ${status}, in words naming the status and the URL, writing nothing`, async () => {
      const s = await serve((_req, res) => res.writeHead(status).end('nope'));
      const h = harness();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/f.csv`, to: 'f.csv' }), h.env), isCode(code, new RegExp(`^the server answered ${status} .* for http://127\\.0\\.0\\.1:\\d+/f\\.csv$`)));
      assert.deepEqual(filesIn(h.workDir), []);
    });
  }

  it('a host name that does not exist fails with E_FETCH_NO_HOST, "no such host"', async () => {
    const h = harness();
    await assert.rejects(fetchStep(fetchOf({ url: 'http://no-such-host.invalid/f.csv', to: 'f.csv' }), h.env), isCode('E_FETCH_NO_HOST', /^no such host: no-such-host\.invalid$/));
  });

  it('refuses a non-http URL before fetching', async () => {
    const h = harness();
    await assert.rejects(fetchStep(fetchOf({ url: 'file:///etc/passwd', to: 'p' }), h.env), isCode('E_FETCH_URL', /file:/));
    await assert.rejects(fetchStep(fetchOf({ url: 'not a url', to: 'p' }), h.env), isCode('E_FETCH_URL'));
    assert.deepEqual(filesIn(h.workDir), []);
  });

  describe('maxBytes', () => {
    it('accepts a body of exactly maxBytes', async () => {
      const body = randomBytes(1000);
      const s = await serve((req, res) => {
        if (req.url === '/chunked') {
          res.write(body.subarray(0, 500));
          res.end(body.subarray(500));
        } else {
          res.writeHead(200, { 'content-length': body.length }).end(body);
        }
      });
      const h = harness();
      await fetchStep(fetchOf({ url: `${s.url}/sized`, to: 'a', maxBytes: 1000 }), h.env);
      await fetchStep(fetchOf({ url: `${s.url}/chunked`, to: 'b', maxBytes: 1000 }), h.env);
      assert.ok(readFileSync(path.join(h.workDir, 'a')).equals(body));
      assert.ok(readFileSync(path.join(h.workDir, 'b')).equals(body));
    });

    it('fails with E_FETCH_TOO_LARGE on a Content-Length over maxBytes, leaving no file', async () => {
      const s = await serve((_req, res) => {
        res.on('error', () => {});
        res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000, 1));
      });
      const h = harness();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/big`, to: 'big.bin', maxBytes: 1000 }), h.env), isCode('E_FETCH_TOO_LARGE', /maxBytes/));
      assert.deepEqual(filesIn(h.workDir), []);
    });

    it('fails with E_FETCH_TOO_LARGE on a chunked body that grows past maxBytes, stopping an endless stream', async () => {
      let writes = 0;
      const s = await serve((_req, res) => {
        res.on('error', () => {});
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked
        const timer = setInterval(() => {
          // Bounded: at most 2000 writes of 4 KiB, far past the limit.
          if (res.destroyed || writes++ > 2000) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(Buffer.alloc(4096, 7));
        }, 1);
        res.on('close', () => clearInterval(timer));
      });
      const h = harness();
      const started = Date.now();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/endless`, to: 'sub/endless.bin', maxBytes: 20_000 }), h.env), isCode('E_FETCH_TOO_LARGE'));
      assert.ok(Date.now() - started < 5000, 'stopped at the limit, not at the end of the stream');
      assert.ok(writes < 2000, `the download was cut off early (server wrote ${writes} chunks)`);
      assert.deepEqual(filesIn(h.workDir), []);
    });
  });

  describe('redirects', () => {
    /** /hop/N redirects to /hop/N-1 (relative Location); /hop/0 answers with the body. */
    async function chain(): Promise<TestServer> {
      return serve((req, res) => {
        const n = Number(/^\/hop\/(\d+)$/.exec(req.url ?? '')?.[1] ?? -1);
        if (n > 0) res.writeHead(302, { location: `/hop/${n - 1}` }).end();
        else if (n === 0) res.end('arrived');
        else res.writeHead(404).end();
      });
    }

    it('follows up to maxRedirects redirects and logs each hop', async () => {
      const s = await chain();
      const h = harness();
      await fetchStep(fetchOf({ url: `${s.url}/hop/3`, to: 'r.txt', maxRedirects: 3 }), h.env);
      assert.equal(readFileSync(path.join(h.workDir, 'r.txt'), 'utf8'), 'arrived');
      assert.deepEqual(s.hits, ['/hop/3', '/hop/2', '/hop/1', '/hop/0']);
      assert.equal((await h.logText()).match(/redirected to /g)?.length, 3);
    });

    it('fails with E_FETCH_REDIRECTS after maxRedirects, without fetching further', async () => {
      const s = await chain();
      const h = harness();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/hop/3`, to: 'r.txt', maxRedirects: 2 }), h.env), isCode('E_FETCH_REDIRECTS', /more than 2/));
      assert.deepEqual(s.hits, ['/hop/3', '/hop/2', '/hop/1']);
      assert.deepEqual(filesIn(h.workDir), []);
    });

    it('stops a redirect loop', async () => {
      const s = await serve((_req, res) => res.writeHead(301, { location: '/loop' }).end());
      const h = harness();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/loop`, to: 'r.txt', maxRedirects: 5 }), h.env), isCode('E_FETCH_REDIRECTS'));
      assert.equal(s.hits.length, 6);
    });

    it('with maxRedirects 0 refuses the first redirect', async () => {
      const s = await chain();
      const h = harness();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/hop/1`, to: 'r.txt', maxRedirects: 0 }), h.env), isCode('E_FETCH_REDIRECTS'));
      assert.deepEqual(s.hits, ['/hop/1']);
    });

    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1/admin', 'http://[::1]:9/']) {
      it(`refuses with E_OUTBOUND a redirect to a non-public address the config does not allow (${new URL(target).hostname})`, async () => {
        const s = await serve((_req, res) => res.writeHead(302, { location: target }).end());
        const h = harness();
        await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/go`, to: 'r.txt' }), h.env), isCode('E_OUTBOUND', /outbound\.allow/));
        assert.deepEqual(filesIn(h.workDir), []);
      });
    }

    it('refuses with E_OUTBOUND a URL naming a non-public address, before connecting', async () => {
      const s = await serve((_req, res) => res.end('no'));
      const h = harness();
      const url = s.url.replace('127.0.0.1', '127.0.0.2');
      await assert.rejects(fetchStep(fetchOf({ url: `${url}/x`, to: 'x' }), h.env), isCode('E_OUTBOUND', /127\.0\.0\.2 is a loopback address/));
      assert.equal(s.hits.length, 0);
    });

    for (const target of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'data:text/plain,hello', 'javascript:alert(1)']) {
      it(`refuses a redirect to ${target.split(':')[0]}:`, async () => {
        const s = await serve((_req, res) => res.writeHead(302, { location: target }).end());
        const h = harness();
        await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/go`, to: 'r.txt' }), h.env), isCode('E_FETCH_URL'));
        assert.deepEqual(filesIn(h.workDir), []);
      });
    }

    it(
      'does not forward request headers (credentials) to another origin on redirect',
      async () => {
        let leaked: string | undefined;
        let apiKey: string | undefined;
        const other = await serve((req, res) => {
          leaked = req.headers.authorization;
          apiKey = req.headers['x-api-key'] as string | undefined;
          res.end('other');
        });
        const s = await serve((_req, res) => res.writeHead(302, { location: `${other.url}/x` }).end());
        const h = harness({ key: SECRET }, [SECRET]);
        const headers = { Authorization: 'Bearer {{params.key}}', 'X-Api-Key': '{{params.key}}' };
        await fetchStep(fetchOf({ url: `${s.url}/go`, to: 'r.txt', headers }), h.env);
        assert.equal(leaked, undefined, 'the Authorization header went to a different origin');
        assert.equal(apiKey, undefined, 'a custom header with a key went to a different origin');
      },
    );
  });

  describe('timeouts and cancellation', () => {
    /** Sends headers and some bytes, then never finishes (until the test closes it). */
    async function stalling(): Promise<TestServer> {
      return serve((req, res) => {
        if (req.url === '/no-headers') return; // never answers at all
        res.writeHead(200, { 'content-length': 1_000_000 });
        res.write(Buffer.alloc(1000, 1));
      });
    }

    it('fails with E_FETCH_TIMEOUT within the bound when the body never finishes, leaving no partial file', async () => {
      const s = await stalling();
      const h = harness();
      const started = Date.now();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/slow`, to: 'slow.bin', timeoutMs: 300 }), h.env), isCode('E_FETCH_TIMEOUT', /300ms/));
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 3000, `took ${took} ms`);
      assert.deepEqual(filesIn(h.workDir), []);
    });

    it('fails with E_FETCH_TIMEOUT when the server never sends headers', async () => {
      const s = await stalling();
      const h = harness();
      const started = Date.now();
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/no-headers`, to: 'x', timeoutMs: 300 }), h.env), isCode('E_FETCH_TIMEOUT'));
      assert.ok(Date.now() - started < 3000);
    });

    it("rethrows the job signal's reason when the job is aborted mid-download, leaving no partial file", async () => {
      const s = await stalling();
      const h = harness();
      const reason = new HopperError('E_CANCELED', 'canceled by request');
      const p = fetchStep(fetchOf({ url: `${s.url}/slow`, to: 'slow.bin' }), h.env);
      // Abort once the download has started (the file exists), bounded by the step's own timeout.
      const deadline = Date.now() + 5000;
      while (!existsSync(path.join(h.workDir, 'slow.bin')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(existsSync(path.join(h.workDir, 'slow.bin')), 'the download started');
      h.abort.abort(reason);
      await assert.rejects(p, (err) => err === reason);
      assert.deepEqual(filesIn(h.workDir), []);
    });

    it("rethrows the job signal's reason when aborted before headers arrive", async () => {
      const s = await stalling();
      const h = harness();
      const reason = new Error('shutdown');
      const p = fetchStep(fetchOf({ url: `${s.url}/no-headers`, to: 'x' }), h.env);
      setTimeout(() => h.abort.abort(reason), 100);
      await assert.rejects(p, (err) => err === reason);
    });

    it('rethrows the reason at once when the job signal is already aborted', async () => {
      const s = await stalling();
      const h = harness();
      const reason = new Error('already gone');
      h.abort.abort(reason);
      await assert.rejects(fetchStep(fetchOf({ url: `${s.url}/slow`, to: 'x' }), h.env), (err) => err === reason);
    });
  });

  it('fails with E_FETCH_NETWORK when the connection is refused', async () => {
    const port = REFUSING_PORT;
    const h = harness();
    await assert.rejects(fetchStep(fetchOf({ url: `http://127.0.0.1:${port}/x`, to: 'x' }), h.env), isCode('E_FETCH_NETWORK', /ECONNREFUSED/));
    assert.deepEqual(filesIn(h.workDir), []);
  });

  describe('secrets in the URL', () => {
    const errorOf = async (p: Promise<unknown>): Promise<HopperError> => {
      try {
        await p;
      } catch (err) {
        assert.ok(err instanceof HopperError, String(err));
        return err;
      }
      assert.fail('expected the step to fail');
    };

    it('never appear in status, redirect, too-large, timeout or network errors, nor in job.log', async () => {
      const s = await serve((req, res) => {
        res.on('error', () => {});
        const u = new URL(req.url ?? '/', 'http://x');
        if (u.pathname === '/missing') res.writeHead(404).end();
        else if (u.pathname === '/loop') res.writeHead(302, { location: `/loop?key=${SECRET}` }).end();
        else if (u.pathname === '/hop') res.writeHead(302, { location: `/ok?key=${SECRET}` }).end();
        else if (u.pathname === '/big') res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000));
        else if (u.pathname === '/stall') res.writeHead(200).write('x');
        else res.end('fine');
      });
      const port = REFUSING_PORT;
      const h = harness({ key: SECRET }, [SECRET]);
      const q = '?key={{params.key}}';
      const errors = [
        await errorOf(fetchStep(fetchOf({ url: `${s.url}/missing${q}`, to: 'a' }), h.env)),
        await errorOf(fetchStep(fetchOf({ url: `${s.url}/loop${q}`, to: 'b', maxRedirects: 2 }), h.env)),
        await errorOf(fetchStep(fetchOf({ url: `${s.url}/big${q}`, to: 'c', maxBytes: 100 }), h.env)),
        await errorOf(fetchStep(fetchOf({ url: `${s.url}/stall${q}`, to: 'd', timeoutMs: 200 }), h.env)),
        await errorOf(fetchStep(fetchOf({ url: `http://127.0.0.1:${port}/x${q}`, to: 'e' }), h.env)),
      ];
      await fetchStep(fetchOf({ url: `${s.url}/hop${q}`, to: 'f' }), h.env);
      assert.deepEqual(errors.map((e) => e.code), ['E_FETCH_CLIENT', 'E_FETCH_REDIRECTS', 'E_FETCH_TOO_LARGE', 'E_FETCH_TIMEOUT', 'E_FETCH_NETWORK']);
      for (const e of errors) {
        assert.ok(!e.message.includes(SECRET), `secret in ${e.code}: ${e.message}`);
        assert.match(e.message, /key=\*\*\*/, `${e.code} shows the URL masked: ${e.message}`);
      }
      const log = await h.logText();
      assert.match(log, /redirected to .*key=\*\*\*/);
      assert.match(log, /fetched .*key=\*\*\*/);
      assert.ok(!log.includes(SECRET), log);
    });

    it('credentials in the URL travel as Basic auth and never reach the log', async () => {
      let auth: string | undefined;
      const s = await serve((req, res) => {
        auth = req.headers.authorization;
        res.end('x');
      });
      const h = harness({ key: SECRET }, [SECRET]);
      await fetchStep(fetchOf({ url: s.url.replace('://', '://user:{{params.key}}@') + '/f', to: 'f' }), h.env);
      assert.equal(auth, `Basic ${Buffer.from(`user:${SECRET}`).toString('base64')}`);
      assert.ok(!(await h.logText()).includes(SECRET));
    });

    it(
      'never appear in the error for a templated URL that does not parse',
      async () => {
        const h = harness({ key: SECRET }, [SECRET]);
        const err = await errorOf(fetchStep(fetchOf({ url: 'http://exa mple.invalid/?key={{params.key}}', to: 'f' }), h.env));
        assert.equal(err.code, 'E_FETCH_URL');
        assert.ok(!err.message.includes(SECRET), err.message);
      },
    );

    it(
      'never appear percent-encoded when the secret has characters a URL escapes',
      async () => {
        const secret = 'pass word"4711';
        const s = await serve((_req, res) => res.writeHead(404).end());
        const h = harness({ key: secret }, [secret]);
        const err = await errorOf(fetchStep(fetchOf({ url: `${s.url}/missing?key={{params.key}}`, to: 'f' }), h.env));
        assert.ok(!err.message.includes(encodeURIComponent(secret)) && !err.message.includes('pass%20word%224711'), err.message);
        assert.match(err.message, /key=\*\*\*/);
      },
    );
  });
});
