import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CONFIG_TEMPLATE } from '../../src/cli/init.js';
import { parseConfig } from '../../src/config/config.js';
import { configSchema } from '../../src/schemas/config.js';
import { drop, tempRoot } from '../helpers/daemon.js';
import { BIN, hopper } from '../helpers/cli.js';
import { echoRecipe } from '../helpers/recipes.js';

describe('cli: usage', () => {
  it('--help works on every command and exits 0', async () => {
    for (const cmd of [[], ['start'], ['init'], ['validate'], ['submit'], ['schema'], ['notify', 'resend'], ['cache', 'clear'], ['cancel'], ['retry']]) {
      const r = await hopper([...cmd, '--help']);
      assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /Usage: hopper/);
    }
  });

  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await hopper([flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('refuses a Node older than engines asks for, in words', () => {
    const { engines } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
    const major = Number(/^const NODE_MAJOR = (\d+);$/m.exec(readFileSync(BIN, 'utf8'))?.[1]);
    assert.equal(engines.node, `>=${major}`, 'bin.mjs checks the Node that package.json asks for');
    // This Node, made to say it is one major older.
    const older = `Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '${major - 1}.9.0' } });`;
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(older)}`, BIN, '--version'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`hopper needs Node ${major} or newer`));
    assert.equal(r.stdout, '');
  });

  it('an unknown command or option is bad usage: exit 2', async () => {
    assert.equal((await hopper(['frobnicate'])).code, 2);
    assert.equal((await hopper(['validate', '--bogus', 'x'])).code, 2);
    const r = await hopper(['schema', 'nonsense']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown kind "nonsense"/);
  });
});

describe('cli: schema', () => {
  it('prints each JSON Schema', async () => {
    for (const kind of ['recipe', 'request', 'cancel', 'config']) {
      const r = await hopper(['schema', kind]);
      assert.equal(r.code, 0);
      const schema = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
      assert.doesNotMatch(r.stdout, /x-hint/);
    }
  });
});

describe('cli: init', () => {
  it('makes the folders, a valid commented hopper.yaml and example recipes, and never overwrites', async () => {
    const { root, cleanup } = tempRoot();
    try {
      const target = path.join(root, 'site');
      const r = await hopper(['init', target]);
      assert.equal(r.code, 0, r.stderr);
      for (const dir of ['recipes', 'inbox', 'state', 'outputs', 'outbox']) assert.ok(existsSync(path.join(target, dir)), dir);
      assert.ok(readdirSync(path.join(target, 'recipes')).includes('package-url.yaml'));
      assert.ok(existsSync(path.join(target, 'recipes', 'render', 'render.mjs')), "a recipe's folder of scripts comes with it");
      assert.ok(existsSync(path.join(target, 'recipes', 'link-check', 'urls.txt')));
      const config = readFileSync(path.join(target, 'hopper.yaml'), 'utf8');
      assert.doesNotThrow(() => parseConfig(config, 'hopper.yaml'));
      writeFileSync(path.join(target, 'hopper.yaml'), 'lanes: { fast: { concurrency: 9 } }\n');
      const again = await hopper(['init', target]);
      assert.match(again.stdout, /already set up/);
      assert.match(readFileSync(path.join(target, 'hopper.yaml'), 'utf8'), /concurrency: 9/);
    } finally {
      cleanup();
    }
  });
});

describe('cli: init writes every setting', () => {
  it('the commented hopper.yaml names every top-level key of the config schema, and uncommented it is a valid config', () => {
    const keys = Object.keys(configSchema.properties);
    for (const key of keys) assert.match(CONFIG_TEMPLATE, new RegExp(`^# ${key}:`, 'm'), `${key} is in the template`);
    // Uncommented: the "# " at the start of each line and the comments after the values go.
    const uncommented = CONFIG_TEMPLATE.split('\n')
      .filter((l) => /^# {1,3}[a-zA-Z]/.test(l) && !/^# (hopper\.yaml|A value|\(systemd)/.test(l))
      .map((l) => l.replace(/^# /, '').replace(/\s+#\s.*$/, ''))
      .join('\n');
    const env = { HOPPER_TOKEN: 'a-token-of-sixteen-chars', HOPPER_SMTP_URL: 'smtp://127.0.0.1:2525', AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', HOPPER_WEBHOOK_SECRET: 'w', CKANPACKAGER_SECRET: 'ckan-secret' };
    const c = parseConfig(uncommented, 'hopper.yaml', env);
    assert.equal(c.s3?.bucket, 'outputs');
    assert.equal(c.docker.socketPath, '/var/run/docker.sock');
    assert.equal(c.smtp?.retryForMs, 24 * 3_600_000);
    assert.deepEqual(c.compat.ckanpackager, { secret: 'ckan-secret', datastore: 'package-datastore', url: 'package-url' });
  });
});

describe('cli: validate', () => {
  it('prints FILE:LINE:COL: message for each problem and exits 1; ok files exit 0', async () => {
    const { root, cleanup } = tempRoot();
    try {
      mkdirSync(path.join(root, 'recipes'));
      writeFileSync(path.join(root, 'recipes', 'echo.yaml'), stringify(echoRecipe()));
      const good = path.join(root, 'good.yaml');
      writeFileSync(good, 'kind: request\nrecipe: echo\nparams: { text: hi }\n');
      const ok = await hopper(['validate', '--root', root, good]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /good\.yaml: ok \(request for echo \(fast lane\)\)/);

      const bad = path.join(root, 'bad.yaml');
      writeFileSync(bad, 'kind: request\nrecipe: echo\nparams:\n  text: 5\n  extra: 1\n');
      const r = await hopper(['validate', '--root', root, good, bad]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`${bad.replace(/[.]/g, '\\.')}:4:9: params\\.text: must be a string`));
      assert.match(r.stdout, /bad\.yaml:5:3: params\.extra: unknown key/);

      const missing = await hopper(['validate', '--root', root, path.join(root, 'nope.yaml')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /nope\.yaml: no such file/);

      const recipe = path.join(root, 'new.yaml');
      writeFileSync(recipe, stringify(echoRecipe('brand-new')));
      const req = path.join(root, 'uses-new.yaml');
      writeFileSync(req, 'kind: request\nrecipe: brand-new\n');
      const both = await hopper(['validate', '--root', root, recipe, req]);
      assert.equal(both.code, 0, both.stdout);

      const cfg = path.join(root, 'hopper.yaml');
      writeFileSync(cfg, 'lanes: { fast: { concurrency: 0 } }\n');
      const badConfig = await hopper(['validate', '--root', root, good]);
      assert.equal(badConfig.code, 2, 'a bad config is exit 2');
      assert.match(badConfig.stderr, /hopper\.yaml:1:\d+: lanes\.fast\.concurrency: must be at least 1/);
    } finally {
      cleanup();
    }
  });
});

describe('cli: validate checks a request against this host, as intake does', () => {
  it('refuses a request whose recipe uploads to S3 when hopper.yaml has no s3, or needs more than the host has', async () => {
    const { root, cleanup } = tempRoot();
    try {
      mkdirSync(path.join(root, 'recipes'));
      writeFileSync(path.join(root, 'recipes', 'to-s3.yaml'), stringify(echoRecipe('to-s3', { output: { files: ['out/result.txt'], upload: 's3' } })));
      writeFileSync(path.join(root, 'recipes', 'huge.yaml'), stringify(echoRecipe('huge', { resources: { memory: '4TiB' } })));
      writeFileSync(path.join(root, 'hopper.yaml'), 'resources: { cpus: 2, memory: 4GiB, disk: 20GiB }\n');
      const s3 = path.join(root, 's3.yaml');
      writeFileSync(s3, 'kind: request\nrecipe: to-s3\n');
      const huge = path.join(root, 'huge-req.yaml');
      writeFileSync(huge, 'kind: request\nrecipe: huge\n');
      const r = await hopper(['validate', '--root', root, s3, huge]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /s3\.yaml:2:9: recipe: recipe to-s3 uploads to S3, but hopper\.yaml has no s3 section/);
      assert.match(r.stdout, /huge-req\.yaml:2:9: recipe: recipe huge .*could never start here/);
    } finally {
      cleanup();
    }
  });

  it('reports a bad root config named among the files in FILE:LINE:COL form (exit 1), still checking the others', async () => {
    const { root, cleanup } = tempRoot();
    try {
      const cfg = path.join(root, 'hopper.yaml');
      writeFileSync(cfg, 'lanes:\n  fast: { concurrency: 0 }\n');
      const cancel = path.join(root, 'c.yaml');
      writeFileSync(cancel, 'kind: cancel\njob: x\n');
      const r = await hopper(['validate', '--root', root, cfg, cancel]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /hopper\.yaml:2:\d+: lanes\.fast\.concurrency: must be at least 1/);
      assert.match(r.stdout, /c\.yaml: ok \(cancel\)/);
    } finally {
      cleanup();
    }
  });
});

describe('cli: submit without a set-up root', () => {
  it('says there is no inbox and exits 2, without a stack trace', async () => {
    const { root, cleanup } = tempRoot();
    try {
      const r = await hopper(['submit', 'echo', '--root', path.join(root, 'nowhere')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /there is no inbox at .*nowhere.*is --root right\?/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      cleanup();
    }
  });
});

describe('cli: submit --wait with no daemon', () => {
  it('says at once that no hopper runs on this root and exits 1, leaving the request in the inbox; --keep-waiting waits', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    try {
      drop(path.join(root, 'recipes'), 'echo.yaml', echoRecipe());
      mkdirSync(path.join(root, 'inbox'), { recursive: true });
      const started = Date.now();
      const r = await hopper(['submit', 'echo', '--root', root, '--id', 'nobody-home', '--wait']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /no hopper is running on .*: the request waits in the inbox and runs when hopper starts/);
      assert.ok(Date.now() - started < 15_000, 'said at once, not after a timeout');
      assert.ok(existsSync(path.join(root, 'inbox', 'nobody-home.yaml')));
      const keep = await hopper(['submit', 'echo', '--root', root, '--id', 'keep-1', '--wait', '--keep-waiting', '--timeout', '1s']);
      assert.match(keep.stderr, /no hopper is running on .*; waiting for it/);
      assert.equal(keep.code, 1, 'gave up after its timeout');
    } finally {
      cleanup();
    }
  });
});

describe('cli: a folder it cannot use', () => {
  it('is one line naming the path and why, exit 1, no stack trace', async () => {
    const { root, cleanup } = tempRoot();
    try {
      writeFileSync(path.join(root, 'a-file'), 'x');
      const r = await hopper(['init', path.join(root, 'a-file', 'site')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^hopper: cannot mkdir .*a-file\/site.*: a part of the path is not a folder\n$/);
    } finally {
      cleanup();
    }
  });
});

