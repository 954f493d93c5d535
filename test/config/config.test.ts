import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, isLoopback, loadConfig, parseConfig } from '../../src/config/config.js';

const FILE = '/etc/hopper/hopper.yaml';
const TOKEN = 'tok-0123456789abcdef-SECRET';

/** The ConfigError message thrown by fn; fails when fn does not throw one. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'E_CONFIG');
    return err.message;
  }
  assert.fail('expected a ConfigError, but nothing was thrown');
}

describe('config', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-config-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('defaults', () => {
    it('loadConfig - a root without hopper.yaml gets every default', () => {
      const root = path.join(dir, 'empty-root');
      mkdirSync(root);
      const c = loadConfig(root, undefined, {});
      assert.deepEqual(c.lanes, { fast: { concurrency: 4 }, slow: { concurrency: 1 } });
      assert.deepEqual(c.http, { host: '127.0.0.1', port: 8765, token: undefined, publicUrl: undefined, allowAnonymousSubmit: false });
      assert.equal(c.smtp, undefined);
      assert.equal(c.s3, undefined);
      assert.deepEqual(c.groups, {});
      assert.deepEqual(c.docker, { socketPath: '/var/run/docker.sock', swarm: undefined });
      assert.deepEqual(c.webhooks, { secret: undefined, retryForMs: 86_400_000 });
      assert.deepEqual(c.inbox, { acceptRecipes: true, maxFileBytes: 1024 ** 2 });
      assert.deepEqual(c.retention, { outputsMs: 7 * 86_400_000, jobsMs: 90 * 86_400_000 });
      assert.deepEqual(c.shutdown, { graceMs: 30_000 });
      assert.equal(c.resources.cpus, os.availableParallelism());
      assert.equal(c.resources.memory, os.totalmem());
      assert.ok(c.resources.disk > 0);
    });

    it('parseConfig - an empty or blank file gets every default', () => {
      assert.deepEqual(parseConfig('', FILE, {}), parseConfig('\n  \n', FILE, {}));
      assert.equal(parseConfig('', FILE, {}).http.port, 8765);
    });

    it('parseConfig - a file with only comments gets every default', () => {
      assert.deepEqual(parseConfig('# nothing set\n  # indented comment\n\n', FILE, {}), parseConfig('', FILE, {}));
    });

    it('loadConfig - an explicit config file that does not exist is an error naming it', () => {
      const missing = path.join(dir, 'nope.yaml');
      const message = configError(() => loadConfig(dir, missing, {}));
      assert.ok(message.includes(missing), message);
      assert.match(message, /cannot read: ENOENT/);
    });

    it('loadConfig - reads hopper.yaml from the root', () => {
      const root = path.join(dir, 'root-with-file');
      mkdirSync(root);
      writeFileSync(path.join(root, 'hopper.yaml'), 'lanes: { fast: { concurrency: 8 } }\n');
      assert.equal(loadConfig(root, undefined, {}).lanes.fast.concurrency, 8);
    });

    it('parseConfig - the example config of the spec parses', () => {
      const text = [
        'lanes: { fast: { concurrency: 4 }, slow: { concurrency: 1 } }',
        'resources: { cpus: 2, memory: 4GiB, disk: 20GiB }',
        'groups: { youtube: 2 }',
        'http: { host: 127.0.0.1, port: 8765, token: env:HOPPER_TOKEN, publicUrl: http://localhost:8765/ }',
        'smtp: { url: env:HOPPER_SMTP_URL, from: hopper@example.org }',
        's3: { endpoint: http://127.0.0.1:9000, region: us-east-1, bucket: outputs,',
        '      accessKeyId: env:AWS_ACCESS_KEY_ID, secretAccessKey: env:AWS_SECRET_ACCESS_KEY,',
        '      forcePathStyle: true, linkExpiry: 7d }',
        'docker: { socketPath: /var/run/docker.sock }',
        'webhooks: { secret: env:HOPPER_WEBHOOK_SECRET }',
        'inbox: { acceptRecipes: true, maxFileBytes: 1MiB }',
        'retention: { outputs: 7d, jobs: 90d }',
        '',
      ].join('\n');
      const env = {
        HOPPER_TOKEN: TOKEN,
        HOPPER_SMTP_URL: 'smtp://user:pw@mail.example.org:587',
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
        HOPPER_WEBHOOK_SECRET: 'whsec-value',
      };
      const c = parseConfig(text, FILE, env);
      assert.equal(c.http.token, TOKEN);
      assert.equal(c.http.publicUrl, 'http://localhost:8765');
      assert.deepEqual(c.smtp, { url: 'smtp://user:pw@mail.example.org:587', from: 'hopper@example.org', retryForMs: 86_400_000 });
      assert.equal(c.s3?.secretAccessKey, 'aws-secret-value');
      assert.equal(c.s3?.linkExpiryMs, 7 * 86_400_000);
      assert.equal(c.webhooks.secret, 'whsec-value');
      assert.deepEqual(c.resources, { cpus: 2, memory: 4 * 1024 ** 3, disk: 20 * 1024 ** 3 });
      assert.deepEqual(c.groups, { youtube: 2 });
    });
  });

  describe('env: and file: references', () => {
    it('parseConfig - env:NAME reads the variable from the env argument', () => {
      const c = parseConfig('http: { token: env:MY_TOKEN }\n', FILE, { MY_TOKEN: TOKEN });
      assert.equal(c.http.token, TOKEN);
    });

    it('parseConfig - never falls back to process.env when an env argument is given', () => {
      const name = Object.keys(process.env).find((k) => (process.env[k] ?? '').length >= 16);
      if (!name) return; // nothing suitable in this environment
      const message = configError(() => parseConfig(`http: { token: "env:${name}" }\n`, FILE, {}));
      assert.ok(message.includes(`environment variable ${name} is not set`), message);
      assert.ok(!message.includes(process.env[name] ?? '\u0000'), 'the process.env value leaked');
    });

    it('parseConfig - a missing env variable names the field and the variable, with its position', () => {
      const message = configError(() => parseConfig('smtp:\n  url: env:HOPPER_SMTP_URL\n', FILE, {}));
      assert.equal(message, `${FILE}:2:8: smtp.url: environment variable HOPPER_SMTP_URL is not set`);
    });

    it('parseConfig - an empty env variable counts as not set', () => {
      const message = configError(() => parseConfig('http: { token: env:T }\n', FILE, { T: '' }));
      assert.match(message, /http\.token: environment variable T is not set/);
    });

    it('parseConfig - every missing env variable is reported at once', () => {
      const message = configError(() => parseConfig('http: { token: env:A }\nwebhooks: { secret: env:B }\n', FILE, {}));
      assert.match(message, /http\.token: environment variable A is not set/);
      assert.match(message, /webhooks\.secret: environment variable B is not set/);
    });

    it('parseConfig - a missing env variable message shows no value from the file or environment', () => {
      const env = { OTHER: 'other-secret-value-123', T: undefined };
      const message = configError(() => parseConfig(`http: { token: env:T, publicUrl: "http://x" }\nwebhooks: { secret: "literal-secret-999" }\n`, FILE, env));
      assert.ok(!message.includes('other-secret-value-123'));
      assert.ok(!message.includes('literal-secret-999'));
    });

    it('parseConfig - file:PATH reads the file and drops one trailing newline', () => {
      const f = path.join(dir, 'token.txt');
      writeFileSync(f, `${TOKEN}\n`);
      assert.equal(parseConfig(`http: { token: "file:${f}" }\n`, FILE, {}).http.token, TOKEN);
      writeFileSync(f, `${TOKEN}\r\n`);
      assert.equal(parseConfig(`http: { token: "file:${f}" }\n`, FILE, {}).http.token, TOKEN);
    });

    it('parseConfig - a relative file: path is read next to the config file', () => {
      const sub = path.join(dir, 'rel');
      mkdirSync(sub);
      writeFileSync(path.join(sub, 'secret'), 'whsec-relative');
      const c = parseConfig('webhooks: { secret: file:secret }\n', path.join(sub, 'hopper.yaml'), {});
      assert.equal(c.webhooks.secret, 'whsec-relative');
    });

    it('parseConfig - file:$CREDENTIALS_DIRECTORY/NAME reads a systemd credential', () => {
      const creds = path.join(dir, 'creds');
      mkdirSync(creds);
      writeFileSync(path.join(creds, 'hopper-token'), TOKEN);
      const c = parseConfig('http: { token: file:$CREDENTIALS_DIRECTORY/hopper-token }\n', FILE, { CREDENTIALS_DIRECTORY: creds });
      assert.equal(c.http.token, TOKEN);
    });

    it('parseConfig - an unreadable file: reference names the field and the path, not any content', () => {
      const missing = path.join(dir, 'no-such-token');
      const message = configError(() => parseConfig(`http: { token: "file:${missing}" }\n`, FILE, {}));
      assert.ok(message.includes('http.token'), message);
      assert.ok(message.includes(`cannot read ${missing}: ENOENT`), message);
    });

    it('parseConfig - env: and file: resolve inside lists and nested mappings too', () => {
      const c = parseConfig('s3: { bucket: env:BUCKET, secretAccessKey: env:S }\n', FILE, { BUCKET: 'b1', S: 'shh' });
      assert.equal(c.s3?.bucket, 'b1');
      assert.equal(c.s3?.secretAccessKey, 'shh');
    });

    it('parseConfig - a value that only looks like a reference ("env:" alone, "xenv:A") stays literal', () => {
      assert.equal(parseConfig('smtp: { url: "smtp://h", from: "env:" }\n', FILE, {}).smtp?.from, 'env:');
      assert.equal(parseConfig('smtp: { url: "smtp://h", from: "xenv:A" }\n', FILE, {}).smtp?.from, 'xenv:A');
      assert.equal(parseConfig('smtp: { url: "smtp://h", from: " env:A" }\n', FILE, {}).smtp?.from, ' env:A');
    });
  });

  describe('validation', () => {
    it('parseConfig - an unknown top-level key says "did you mean" with its position', () => {
      const message = configError(() => parseConfig('lanes: {}\nhtpp: { port: 1 }\n', FILE, {}));
      assert.equal(message, `${FILE}:2:1: htpp: unknown key (did you mean "http"?)`);
    });

    it('parseConfig - an unknown nested key is named with its dotted path', () => {
      const message = configError(() => parseConfig('http:\n  portt: 80\n', FILE, {}));
      assert.equal(message, `${FILE}:2:3: http.portt: unknown key (did you mean "port"?)`);
    });

    it(
      'parseConfig - a key with two letters swapped (prot for port) still gets "did you mean"',
      () => {
        const message = configError(() => parseConfig('http:\n  prot: 80\n', FILE, {}));
        assert.equal(message, `${FILE}:2:3: http.prot: unknown key (did you mean "port"?)`);
      },
    );

    it('parseConfig - outbound.allow takes addresses, ranges and host names, and names a bad entry with its position', () => {
      assert.deepEqual(parseConfig('', FILE, {}).outbound.allow, [], 'by default only public addresses');
      const ok = parseConfig('outbound:\n  allow: [127.0.0.1, 10.0.0.0/8, "fd00::/8", "::1", ckan.internal]\n', FILE, {});
      assert.deepEqual(ok.outbound.allow, ['127.0.0.1', '10.0.0.0/8', 'fd00::/8', '::1', 'ckan.internal']);
      for (const bad of ['10.0.0.0/33', 'http://x', '1.2.3.4/x', 'a b', '999.1.1.1/8', '10.1']) {
        const message = configError(() => parseConfig(`outbound:\n  allow:\n    - ${JSON.stringify(bad)}\n`, FILE, {}));
        assert.match(message, new RegExp(`^${FILE}:3:7: outbound\\.allow\\[0\\]: (must be an address|"${bad.replace('.', '\\.')}" is not an address or range)`), `${bad}: ${message}`);
        assert.equal(message.split('\n').length, 1, message);
      }
    });

    it('parseConfig - docker.swarm: absent runs containers here; {} on Swarm with binds; nfs:// workDir split into server and export', () => {
      assert.equal(parseConfig('', FILE, {}).docker.swarm, undefined);
      assert.deepEqual(parseConfig('docker: { swarm: {} }\n', FILE, {}).docker.swarm, { workDir: undefined, constraints: [] });
      const nfs = parseConfig('docker:\n  swarm:\n    workDir: nfs://10.0.0.5/srv/hopper/state/jobs/\n    constraints: ["node.labels.hopper == true", "node.role!=manager"]\n', FILE, {});
      assert.deepEqual(nfs.docker.swarm, { workDir: { server: '10.0.0.5', path: '/srv/hopper/state/jobs' }, constraints: ['node.labels.hopper == true', 'node.role!=manager'] });
      assert.deepEqual(parseConfig('docker: { swarm: { workDir: "nfs://[fd00::5]/export/jobs" } }\n', FILE, {}).docker.swarm?.workDir, { server: 'fd00::5', path: '/export/jobs' });
    });

    it('parseConfig - a malformed docker.swarm is refused with its position: workDir not nfs://SERVER/PATH, a constraint that is no constraint', () => {
      for (const bad of ['/srv/jobs', 'nfs://10.0.0.5', 'nfs://10.0.0.5/', 'nfs://10.0.0.5/srv/../etc', 'nfs://10.0.0.5/a,b', 'smb://x/y', 'nfs://a b/c', `nfs://x/${'a'.repeat(1100)}`]) {
        const message = configError(() => parseConfig(`docker:\n  swarm:\n    workDir: ${JSON.stringify(bad)}\n`, FILE, {}));
        assert.match(message, new RegExp(`^${FILE}:3:14: docker\\.swarm\\.workDir: must (be nfs://SERVER/EXPORTED/PATH|be at most)`), `${bad}: ${message}`);
      }
      for (const bad of ['node.labels.x', 'x == ', '== y', '']) {
        const message = configError(() => parseConfig(`docker:\n  swarm:\n    constraints: [${JSON.stringify(bad)}]\n`, FILE, {}));
        assert.match(message, /docker\.swarm\.constraints\[0\]: must (be a Swarm placement constraint|be at least)/, `${bad}: ${message}`);
      }
      assert.match(configError(() => parseConfig('docker: { swarm: { workdir: x } }\n', FILE, {})), /docker\.swarm\.workdir: unknown key \(did you mean "workDir"\?\)/);
    });

    it('parseConfig - a bad duration explains how to write one', () => {
      const message = configError(() => parseConfig('retention: { outputs: 7 days }\n', FILE, {}));
      assert.match(message, /retention\.outputs: must be a duration like 30s, 10m, 24h or 7d/);
      assert.ok(message.startsWith(`${FILE}:1:`), message);
    });

    it('parseConfig - a bad size explains how to write one', () => {
      const message = configError(() => parseConfig('inbox:\n  maxFileBytes: 1 parsec\n', FILE, {}));
      assert.equal(message, `${FILE}:2:17: inbox.maxFileBytes: must be a size like 512MiB, 2GiB or 1000`);
    });

    it('parseConfig - sizes and durations may be plain numbers', () => {
      const c = parseConfig('inbox: { maxFileBytes: 2048 }\nretention: { outputs: 60000 }\nshutdown: { grace: 5s }\n', FILE, {});
      assert.equal(c.inbox.maxFileBytes, 2048);
      assert.equal(c.retention.outputsMs, 60_000);
      assert.equal(c.shutdown.graceMs, 5000);
    });

    it('parseConfig - negative numbers for sizes and durations are refused', () => {
      assert.match(configError(() => parseConfig('inbox: { maxFileBytes: -1 }\n', FILE, {})), /must be at least 0/);
      assert.match(configError(() => parseConfig('retention: { jobs: -5 }\n', FILE, {})), /must be at least 0/);
    });

    it('parseConfig - a wrong type says what it must be', () => {
      assert.match(configError(() => parseConfig('http: { port: eighty }\n', FILE, {})), /http\.port: must be a whole number/);
      assert.match(configError(() => parseConfig('inbox: { acceptRecipes: maybe }\n', FILE, {})), /inbox\.acceptRecipes: must be true or false/);
    });

    it('parseConfig - out-of-range values are refused', () => {
      assert.match(configError(() => parseConfig('http: { port: 70000 }\n', FILE, {})), /must be at most 65535/);
      assert.match(configError(() => parseConfig('lanes: { fast: { concurrency: 0 } }\n', FILE, {})), /lanes\.fast\.concurrency: must be at least 1/);
      assert.match(configError(() => parseConfig('resources: { cpus: 0 }\n', FILE, {})), /resources\.cpus: must be more than 0/);
    });

    it('parseConfig - a config that is not a mapping is refused', () => {
      assert.match(configError(() => parseConfig('- a\n- b\n', FILE, {})), /must be a mapping of settings/);
      assert.match(configError(() => parseConfig('just words\n', FILE, {})), /must be a mapping of settings/);
    });

    it('parseConfig - YAML syntax errors name the file, line and column', () => {
      const message = configError(() => parseConfig('http:\n\tport: 1\n', FILE, {}));
      assert.equal(message, `${FILE}:2:1: YAML syntax: a tab indents this line: YAML indents with spaces only (the parser says: Tabs are not allowed as indentation)`);
    });

    it('parseConfig - a bad group name is refused', () => {
      assert.ok(configError(() => parseConfig('groups: { "Bad Name": 2 }\n', FILE, {})).includes('groups'));
    });

    it('parseConfig - smtp needs an smtp:// or smtps:// URL', () => {
      assert.match(configError(() => parseConfig('smtp: { url: "http://mail" }\n', FILE, {})), /smtp\.url: must be an smtp:\/\/ or smtps:\/\/ URL/);
      assert.match(configError(() => parseConfig('smtp: { from: a@b.c }\n', FILE, {})), /smtp\.url: is required/);
    });

    it('parseConfig - publicUrl must be http or https and loses trailing slashes', () => {
      assert.match(configError(() => parseConfig('http: { publicUrl: "ftp://x" }\n', FILE, {})), /http\.publicUrl: must be an http or https URL/);
      assert.equal(parseConfig('http: { publicUrl: "https://h.example.org//" }\n', FILE, {}).http.publicUrl, 'https://h.example.org');
    });

    it('parseConfig - s3.linkExpiry over 7d is refused (presigned links cannot last longer), 7d is taken', () => {
      assert.match(configError(() => parseConfig('s3: { bucket: out, linkExpiry: 8d }\n', FILE, {})), /1:\d+.*s3\.linkExpiry: must be at most 7d: S3 presigned links cannot last longer|s3\.linkExpiry: must be at most 7d/);
      assert.equal(parseConfig('s3: { bucket: out, linkExpiry: 7d }\n', FILE, {}).s3?.linkExpiryMs, 7 * 24 * 3_600_000);
    });

    it('parseConfig - s3 needs a bucket and gets defaults for the rest', () => {
      assert.match(configError(() => parseConfig('s3: { region: eu }\n', FILE, {})), /s3\.bucket: is required/);
      const c = parseConfig('s3: { bucket: out }\n', FILE, {});
      assert.deepEqual(c.s3, {
        endpoint: undefined,
        region: 'us-east-1',
        bucket: 'out',
        accessKeyId: undefined,
        secretAccessKey: undefined,
        forcePathStyle: true,
        linkExpiryMs: 7 * 86_400_000,
        retryForMs: 86_400_000,
      });
    });

    it('parseConfig - delivery retry windows: s3.retryFor and outputs.retryFor, 24h by default; a bad one is said where it is', () => {
      assert.equal(parseConfig('s3: { bucket: out, retryFor: 90m }\n', FILE, {}).s3?.retryForMs, 90 * 60_000);
      assert.equal(parseConfig('outputs: { retryFor: 2h }\n', FILE, {}).outputs.retryForMs, 2 * 3_600_000);
      assert.equal(parseConfig('', FILE, {}).outputs.retryForMs, 86_400_000);
      assert.match(configError(() => parseConfig('outputs: { retryFor: soon }\n', FILE, {})), /:1:\d+: outputs\.retryFor: /);
      assert.match(configError(() => parseConfig('s3: { bucket: out, retryFor: -5s }\n', FILE, {})), /s3\.retryFor: /);
      assert.match(configError(() => parseConfig('outputs: { retryfor: 1h }\n', FILE, {})), /outputs: unknown key "retryfor"|retryfor/);
      assert.match(configError(() => parseConfig(`outputs: { retryFor: "${'9'.repeat(5000)}d" }\n`, FILE, {})), /outputs\.retryFor: /);
    });

    it('parseConfig - every size form the schema admits parses, like 1Mi', () => {
      assert.equal(parseConfig('inbox: { maxFileBytes: 1Mi }\n', FILE, {}).inbox.maxFileBytes, 1024 ** 2);
    });

    it(
      'parseConfig - a size or duration too large to hold is a ConfigError naming the file and field',
      () => {
        const size = configError(() => parseConfig('inbox: { maxFileBytes: 99999999999999TiB }\n', FILE, {}));
        assert.ok(size.includes('inbox.maxFileBytes'), size);
        const duration = configError(() => parseConfig('retention: { jobs: 999999999999999999999d }\n', FILE, {}));
        assert.ok(duration.includes('retention.jobs'), duration);
      },
    );
  });

  describe('http host and token', () => {
    it('isLoopback - knows the loopback names and addresses', () => {
      for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.ok(isLoopback(host), host);
      for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.org', '127.0.0.1.example.org', 'localhost.evil.org']) {
        assert.ok(!isLoopback(host), host);
      }
    });

    it('parseConfig - a non-loopback host without a token is refused, pointing at the host', () => {
      const message = configError(() => parseConfig('http:\n  host: 0.0.0.0\n', FILE, {}));
      assert.equal(message, `${FILE}:2:9: http.host: 0.0.0.0 is beyond loopback; set http.token before listening there`);
    });

    it('parseConfig - a non-loopback host with a token is allowed', () => {
      const c = parseConfig('http: { host: 0.0.0.0, token: env:T }\n', FILE, { T: TOKEN });
      assert.equal(c.http.host, '0.0.0.0');
      assert.equal(c.http.token, TOKEN);
    });

    it('parseConfig - a loopback host without a token is allowed', () => {
      assert.equal(parseConfig('http: { host: "::1" }\n', FILE, {}).http.token, undefined);
    });

    it('parseConfig - a token shorter than 16 characters is refused', () => {
      const message = configError(() => parseConfig('http: { token: env:T }\n', FILE, { T: 'short-secret' }));
      assert.equal(message, `${FILE}:1:16: http.token: must be at least 16 characters`);
    });

    it('parseConfig - a token of exactly 16 characters is accepted', () => {
      assert.equal(parseConfig('http: { token: env:T }\n', FILE, { T: 'x'.repeat(16) }).http.token, 'x'.repeat(16));
    });
  });

  describe('secrets never appear in error messages', () => {
    const secret = 'hunter2-SUPER-secret-value';
    const cases: Array<{ name: string; text: string; env: Record<string, string> }> = [
      { name: 'a too-short token from env', text: 'http: { token: env:T }\n', env: { T: 'hunter2-tiny' } },
      { name: 'a too-short literal token', text: 'http: { token: "hunter2-tiny" }\n', env: {} },
      { name: 'an smtp URL with a password and the wrong scheme', text: 'smtp: { url: env:S }\n', env: { S: `http://user:${secret}@mail.example.org` } },
      { name: 'an s3 endpoint that is not a URI', text: 's3: { bucket: b, endpoint: env:E }\n', env: { E: `not a uri ${secret}` } },
      { name: 'a secret given where a number belongs', text: 'http: { port: env:P }\n', env: { P: secret } },
      { name: 'a secret given where a boolean belongs', text: 's3: { bucket: b, forcePathStyle: env:F }\n', env: { F: secret } },
      { name: 'a secret given as a duration', text: 's3: { bucket: b, linkExpiry: env:L }\n', env: { L: secret } },
      { name: 'a secret given as a mapping', text: 'webhooks: env:W\n', env: { W: secret } },
      { name: 'a secret as the value of an unknown key', text: `http: { tokn: "${secret}" }\n`, env: {} },
      { name: 'an empty webhook secret beside a literal token', text: `http: { token: "${secret}" }\nwebhooks: { secret: "" }\n`, env: {} },
      { name: 'a file: secret of the wrong shape', text: 'smtp: { url: "file:SECRETFILE" }\n', env: {} },
      { name: 'a YAML syntax error right after a literal secret', text: `http:\n  token: "${secret}"\n\tport: 1\n`, env: {} },
      { name: 'a duplicate key holding a literal secret', text: `http: { token: "${secret}", token: "${secret}" }\n`, env: {} },
    ];
    let secretFile: string;
    before(() => {
      secretFile = path.join(dir, 'smtp-secret');
      writeFileSync(secretFile, `http://user:${secret}@mail\n`);
    });

    for (const c of cases) {
      it(`parseConfig - ${c.name}: the error shows neither the secret nor any part of it`, () => {
        const message = configError(() => parseConfig(c.text.replace('SECRETFILE', secretFile), FILE, c.env));
        for (const leak of [secret, 'hunter2']) assert.ok(!message.includes(leak), `"${leak}" leaked: ${message}`);
      });
    }
  });
});
