import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hopper } from '../helpers/cli.js';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe } from '../helpers/recipes.js';
import { REFUSING_PORT } from '../helpers/http.js';
import { daemonBase, tokenFor } from '../../src/cli/submit-http.js';

const TOKEN = 'tok-cli-0123456789abcdef';

/** A loopback port free to listen on (taken, then let go). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('cli: submit --http', () => {
  let d: TestDaemon;
  const elsewhere = tempRoot('hopper-cli-http-');
  before(async () => {
    const strict = { ...echoRecipe('strict'), params: { type: 'object', additionalProperties: false, properties: { text: { type: 'string', maxLength: 5 }, seconds: { type: 'number' } } } };
    d = await testDaemon({ recipes: { echo: echoRecipe('echo'), strict }, config: { http: { port: 0, token: TOKEN } } });
  });
  after(async () => {
    await d.cleanup();
    elsewhere.cleanup();
  });

  it('sends the request to POST /requests and, with --wait, follows it to its output (exit 0)', { timeout: 60_000 }, async () => {
    // A root of its own, without the daemon's recipes: -p values go as text, the daemon checks them.
    const r = await hopper(['submit', 'echo', '--root', elsewhere.root, '--http', d.http.address(), '-p', 'text=over http', '--id', 'cli-http-1', '--wait', '--timeout', '30s'], { env: { HOPPER_TOKEN: TOKEN } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /submitted cli-http-1: job \d{8}-\d{6}-[0-9a-f]{10} \(http:\/\/localhost:\d+\/jobs\//);
    assert.match(r.stdout, /requested\n.*started\n.*succeeded/s);
    assert.match(r.stdout, /output: result\.txt \(9 B\): http:\/\/localhost:\d+\/downloads\//);
    const job = await d.job('cli-http-1', ended);
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(job.params, { text: 'over http', seconds: 0 });
  });

  it('the same id again is the same job, said so', async () => {
    const r = await hopper(['submit', 'echo', '--root', elsewhere.root, '--http', d.http.address(), '-p', 'text=over http', '--id', 'cli-http-1'], { env: { HOPPER_TOKEN: TOKEN } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already submitted cli-http-1/);
  });

  it("prints the daemon's reasons with line and column and exits 1 for a request it refuses", async () => {
    const r = await hopper(['submit', 'strict', '--root', elsewhere.root, '--http', d.http.address(), '-p', 'text=far too long', '-p', 'colour=red'], { env: { HOPPER_TOKEN: TOKEN } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused the request \(400\)/);
    assert.match(r.stderr, /request:\d+:\d+: params\.text: /);
    assert.match(r.stderr, /params\.colour/);
    assert.doesNotMatch(r.stderr, /at .+\.ts:\d+/, 'no stack trace');
  });

  it('without the token: exit 1, saying to set HOPPER_TOKEN; the token never on the command line', async () => {
    const r = await hopper(['submit', 'echo', '--root', elsewhere.root, '--http', d.http.address()], { env: { HOPPER_TOKEN: '' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\(401\).*HOPPER_TOKEN/);
    const help = await hopper(['submit', '--help']);
    assert.doesNotMatch(help.stdout, /--token/);
  });

  it('no daemon at the address: exit 1 in words; a malformed address: exit 2', async () => {
    const r = await hopper(['submit', 'echo', '--root', elsewhere.root, '--http', `127.0.0.1:${REFUSING_PORT}`], { env: { HOPPER_TOKEN: TOKEN } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no hopper answered at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    const bad = await hopper(['submit', 'echo', '--root', elsewhere.root, '--http', 'ftp://example.org']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /http:\/\/ or https:\/\//);
  });
});

describe('cli: submit --http --wait across a restart', () => {
  it('rides out the daemon going away: says so, waits, and follows the job to its end when it is back', { timeout: 90_000 }, async () => {
    const port = await freePort();
    const config = { http: { port, token: TOKEN } };
    const first = await testDaemon({ recipes: { echo: echoRecipe('echo') }, config });
    let second: TestDaemon | undefined;
    try {
      const cli = hopper(['submit', 'echo', '--root', first.root, '--http', `127.0.0.1:${port}`, '-p', 'text=restart', '-p', 'seconds=2', '--id', 'cli-restart', '--wait', '--timeout', '60s'], {
        env: { HOPPER_TOKEN: TOKEN },
        timeoutMs: 80_000,
      });
      await first.job('cli-restart', (j) => j.state === 'running', 20_000);
      await first.stop(100); // the running job goes back to the queue
      await new Promise((resolve) => setTimeout(resolve, 1500));
      second = await testDaemon({ root: first.root, recipes: { echo: echoRecipe('echo') }, config });
      const r = await cli;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /no hopper answered at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); still waiting/);
      assert.match(r.stderr, /answers again/);
      assert.match(r.stdout, /succeeded/);
    } finally {
      await second?.cleanup();
      await first.cleanup();
    }
  });
});

describe('cli: submit --http, which token goes where', () => {
  const config = { token: 'tok-config-0123456789', port: 8765, publicUrl: 'https://hopper.example.org' };
  it('HOPPER_TOKEN first; the config token only to this root\'s own daemon', () => {
    assert.equal(tokenFor('http://10.0.0.9:8765', 'tok-env', config), 'tok-env');
    assert.equal(tokenFor('http://127.0.0.1:8765', undefined, config), config.token);
    assert.equal(tokenFor('http://localhost:8765', undefined, config), config.token);
    assert.equal(tokenFor('https://hopper.example.org', undefined, config), config.token);
    assert.equal(tokenFor('http://127.0.0.1:9999', undefined, config), undefined, 'another port');
    assert.equal(tokenFor('https://elsewhere.example.org', undefined, config), undefined, 'another host');
    assert.equal(tokenFor('http://hopper.example.org', undefined, config), undefined, 'the public host, but not its origin');
  });

  it('the address: a bare host:port gets http://; a query, fragment or trailing slash goes', () => {
    assert.equal(daemonBase('127.0.0.1:8765'), 'http://127.0.0.1:8765');
    assert.equal(daemonBase('https://h.example.org/hopper/?x=1#y'), 'https://h.example.org/hopper');
  });
});
