import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rejectionOf, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

// Attacks of someone who can write to the inbox (but may not define recipes),
// done for real against a daemon. Each failed before its fix.

const rejectedText = rejectionOf;

const evilRecipe = {
  kind: 'recipe',
  name: 'evil',
  steps: [{ run: { command: ['sh', '-c', 'id > pwned.txt'] } }],
  output: { files: ['pwned.txt'] },
};

describe('inbox: a writer who may not define recipes', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe() }, config: { inbox: { acceptRecipes: false } } });
  });
  after(() => d.cleanup());

  it('cannot turn inbox/rejected into a link to recipes/ and have a refused recipe installed', async () => {
    const rejected = path.join(d.inboxDir, 'rejected');
    mkdirSync(rejected, { recursive: true });
    renameSync(rejected, path.join(d.inboxDir, 'gone'));
    symlinkSync('../recipes', rejected);
    d.drop('evil.yaml', evilRecipe);
    const text = await rejectedText(d, 'evil.yaml');
    assert.match(text, /recipe files are not accepted in this inbox/);
    assert.ok(!existsSync(path.join(d.root, 'recipes', 'evil.yaml')), 'nothing was moved into recipes/');
    assert.ok(!lstatSync(rejected).isSymbolicLink(), 'inbox/rejected is a real folder again');
    assert.ok(readdirSync(d.inboxDir).some((n) => n.startsWith('.rejected.unsafe-')), 'the link was moved aside, not followed');
    assert.equal(d.recipes.get('evil'), undefined);
    d.drop('use-evil.yaml', request('evil'));
    assert.match(await rejectedText(d, 'use-evil.yaml'), /no recipe named "evil"/);
  });

  it('cannot put a file where inbox/rejected should be', async () => {
    const rejected = path.join(d.inboxDir, 'rejected');
    renameSync(rejected, path.join(d.inboxDir, 'gone-2'));
    writeFileSync(rejected, 'not a folder');
    d.drop('bad.yaml', 'kind: nope\n');
    assert.match(await rejectedText(d, 'bad.yaml'), /unknown kind "nope"/);
    assert.ok(statSync(rejected).isDirectory());
  });

  it('a symlink dropped into the inbox is rejected, not read through', async () => {
    const secret = path.join(d.root, 'secret.txt');
    writeFileSync(secret, 'kind: request\nrecipe: echo\nparams: { text: "the admin\'s file" }\n');
    symlinkSync(secret, path.join(d.inboxDir, 'link.yaml'));
    const text = await rejectedText(d, 'link.yaml');
    assert.match(text, /is a symbolic link/);
    assert.equal(d.ctx.store.jobs.list().length, 0, 'no job was made from the linked file');
  });

  it('rejected files are written so that their owner alone reads them, the reasons for the group', async () => {
    d.drop('modes.yaml', 'kind: request\nrecipe: echo\nparams: { text: 1 }\n');
    await rejectedText(d, 'modes.yaml');
    const dir = path.join(d.inboxDir, 'rejected');
    assert.equal(statSync(path.join(dir, 'modes.yaml')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dir, 'modes.yaml.error.txt')).mode & 0o777, 0o640);
  });
});

describe('recipes/: only regular files are loaded', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe() } });
  });
  after(() => d.cleanup());

  it('a symlink in recipes/ is refused with a reason, the recipe it points to is not loaded', async () => {
    const elsewhere = path.join(d.root, 'elsewhere.yaml');
    writeFileSync(elsewhere, JSON.stringify(evilRecipe));
    symlinkSync(elsewhere, path.join(d.root, 'recipes', 'evil.yaml'));
    await waitFor('the link to be looked at', () => d.recipes.errors().get('evil.yaml'));
    assert.match(d.recipes.errors().get('evil.yaml')!, /symbolic link/);
    assert.equal(d.recipes.get('evil'), undefined);
  });
});

/** A child process asking /healthz every 50 ms for `ms`; prints the slowest answer (or failure) in ms. */
function probe(url: string, ms: number): Promise<{ slowest: number; asked: number; failed: number }> {
  const script = `
    const url = process.argv[1], until = Date.now() + Number(process.argv[2]);
    let slowest = 0, asked = 0, failed = 0;
    (async () => {
      while (Date.now() < until) {
        const t = Date.now();
        asked++;
        try { const r = await fetch(url, { signal: AbortSignal.timeout(5000) }); await r.text(); if (!r.ok) failed++; }
        catch { failed++; }
        slowest = Math.max(slowest, Date.now() - t);
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(JSON.stringify({ slowest, asked, failed }));
    })();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, url, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { slowest: number; asked: number; failed: number }) : reject(new Error(`probe exited ${code}`))));
  });
}

const MiB = 1024 * 1024;
/** Hostile files, each just under the default inbox.maxFileBytes (1 MiB). */
function hostileFiles(): Record<string, string> {
  const head = 'kind: request\nrecipe: echo\nparams:\n';
  const fill = (line: (i: number) => string, budget = MiB - 8192): string => {
    const lines: string[] = [];
    let bytes = 0;
    for (let i = 0; bytes < budget; i++) {
      const l = line(i);
      lines.push(l);
      bytes += l.length + 1;
    }
    return lines.join('\n');
  };
  return {
    // 181,325 distinct keys in one mapping held the daemon for 9½ minutes.
    'flat-map.yaml': head + fill((i) => `  k${i}: 1`),
    'flat-seq.yaml': `${head}  text:\n${fill(() => '    - 1')}`,
    'flow-seq.yaml': `${head}  text: [${fill(() => '1').split('\n').join(',')}]\n`,
    'flow-map.yaml': `${head}  text: {${fill((i) => `k${i}: 1`, MiB * 0.85).split('\n').join(', ')}}\n`,
    'dup-keys.yaml': head + fill(() => '  same: 1'),
    'long-keys.yaml': head + fill((i) => `  ${String(i).padStart(8, '0')}${'k'.repeat(100_000)}: 1`, MiB - 110_000),
    'many-docs.yaml': fill(() => '---'),
    'deep.yaml': `${'['.repeat(200_000)}${']'.repeat(200_000)}\n`,
    'aliases.yaml': `a: &a [${'x,'.repeat(1000)}x]\n${fill((i) => `k${i}: [*a, *a, *a, *a, *a, *a, *a, *a]`)}\n`,
    // Just under the item limit: parsed, validated and placed in full.
    'just-under.yaml': `${head}${Array.from({ length: 9_990 }, (_, i) => `  k${'x'.repeat(30)}${i}: ${'v'.repeat(8)}`).join('\n')}\n`,
  };
}

describe('inbox: no file under the size limit keeps the daemon from answering', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe() } });
  });
  after(() => d.cleanup());

  it('huge flat maps and lists, long and repeated keys, alias bombs, deep nesting: each rejected, /healthz answered within a second throughout', { timeout: 120_000 }, async (t) => {
    const files = hostileFiles();
    for (const [name, text] of Object.entries(files)) assert.ok(text.length < MiB, `${name} is under 1 MiB (${text.length})`);
    const watching = probe(`${d.http.address()}/healthz`, 4000);
    await new Promise((r) => setTimeout(r, 300));
    // Written by another process: a process writing into a folder it watches slows chokidar down.
    const writer = spawn(process.execPath, ['-e', `
      const fs = require('fs'), path = require('path');
      const [dir, json] = [process.argv[1], require('fs').readFileSync(0, 'utf8')];
      for (const [name, text] of Object.entries(JSON.parse(json))) {
        fs.writeFileSync(path.join(dir, '.' + name + '.tmp'), text);
        fs.renameSync(path.join(dir, '.' + name + '.tmp'), path.join(dir, name));
      }`, d.inboxDir], { stdio: ['pipe', 'inherit', 'inherit'] });
    writer.stdin.end(JSON.stringify(files));
    const texts: Record<string, string> = {};
    for (const name of Object.keys(files)) texts[name] = await rejectedText(d, name, 60_000);
    const seen = await watching;
    t.diagnostic(`/healthz asked ${seen.asked} times, slowest ${seen.slowest} ms`);
    assert.equal(seen.failed, 0, 'every /healthz was answered');
    assert.ok(seen.slowest < 1000, `the slowest /healthz took ${seen.slowest} ms`);
    assert.match(texts['flat-map.yaml'], /more than 10000 lines and list items/);
    assert.match(texts['flow-seq.yaml'], /more than 10000 lines and list items/);
    assert.match(texts['deep.yaml'], /nests deeper than 64 levels/);
    assert.match(texts['many-docs.yaml'], /more than 10000 lines/);
    assert.match(texts['aliases.yaml'], /alias|more than 10000/i);
    assert.match(texts['just-under.yaml'], /\.\.\. and 9940 more problems/);
    for (const [name, text] of Object.entries(texts)) {
      assert.ok(text.length < 20_000, `${name}: the reason is short (${text.length} bytes)`);
      assert.doesNotMatch(text, /at .*\.(ts|js):\d+/, `${name}: no stack trace`);
    }
  });

  it('a file of many repeated keys, just under the item limit, gets each repeat named once and a count of the rest', async () => {
    const text = `kind: request\nrecipe: echo\nparams:\n${Array.from({ length: 9_000 }, () => '  same: 1').join('\n')}\n`;
    d.drop('repeats.yaml', text);
    const reason = await rejectedText(d, 'repeats.yaml', 30_000);
    assert.match(reason, /repeats\.yaml:5:3: YAML syntax: Map keys must be unique; "same" is repeated \(first on line 4\)/);
    assert.match(reason, /\.\.\. and 8949 more problems/);
    assert.ok(reason.split('\n').length < 60);
  });

  it('a request with 8,000 bad items gets the first 50 problems and a count of the rest', async () => {
    const text = `kind: request\nrecipe: echo\nparams:\n  text: t\n${Array.from({ length: 8_000 }, (_, i) => `  extra${i}: 1`).join('\n')}\n`;
    d.drop('items.yaml', text);
    const reason = await rejectedText(d, 'items.yaml', 30_000);
    assert.match(reason, /items\.yaml:5:3: params\.extra0: unknown key/);
    assert.match(reason, /\.\.\. and 7950 more problems/);
    assert.ok(reason.length < 10_000, `${reason.length} bytes`);
  });
});
