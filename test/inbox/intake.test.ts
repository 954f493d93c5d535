import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync, openSync, writeSync, closeSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { drop, ended, rejectionOf, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const escapeRecipe = {
  kind: 'recipe',
  name: 'named',
  params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
  steps: [{ run: { command: ['sh', '-c', 'echo hi > "$1"', 'sh', '{{params.name}}'] } }, { zip: { from: '{{params.name}}', to: 'out.zip' } }],
};

const rejection = (d: TestDaemon, name: string): Promise<string> => rejectionOf(d, name);

describe('inbox: rejections', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe(), named: escapeRecipe, fetcher: fetchRecipe() }, config: { inbox: { maxFileBytes: '4KiB' } } });
  });
  after(() => d.cleanup());

  it('bad YAML is rejected with the line and column of the syntax error', async () => {
    d.drop('bad-yaml.yaml', 'kind: request\nrecipe: echo\nparams: { text: [unclosed\n');
    const text = await rejection(d, 'bad-yaml.yaml');
    assert.match(text, /bad-yaml\.yaml:\d+:\d+: YAML syntax/);
    assert.doesNotMatch(text, /at .*\.ts:\d+/, 'no stack trace');
  });

  it('an unknown kind is rejected naming the kinds there are', async () => {
    d.drop('kind.yaml', 'kind: requets\nrecipe: echo\n');
    const text = await rejection(d, 'kind.yaml');
    assert.match(text, /kind\.yaml:1:\d+: kind: unknown kind "requets" \(expected one of request, cancel, recipe\)/);
  });

  it('a missing kind is rejected', async () => {
    d.drop('nokind.yaml', 'recipe: echo\n');
    assert.match(await rejection(d, 'nokind.yaml'), /kind: is required/);
  });

  it('an unknown recipe is rejected naming the loaded ones', async () => {
    d.drop('recipe.yaml', request('no-such-recipe'));
    assert.match(await rejection(d, 'recipe.yaml'), /recipe\.yaml:2:9: recipe: no recipe named "no-such-recipe" is loaded \(loaded: echo, fetcher, named\)/);
  });

  it('a schema failure names the field, in words, at its line and column', async () => {
    d.drop('schema.yaml', 'kind: request\nrecipe: fetcher\nparams:\n  url: not a url\npriority: high\nrecipie: x\n');
    const text = await rejection(d, 'schema.yaml');
    assert.match(text, /schema\.yaml:5:11: priority: must be a whole number/);
    assert.match(text, /schema\.yaml:6:1: recipie: unknown key \(did you mean "recipe"\?\)/);
    // params are checked once the request itself is well formed
    d.drop('params.yaml', 'kind: request\nrecipe: fetcher\nparams:\n  url: not a url\n');
    assert.match(await rejection(d, 'params.yaml'), /params\.yaml:4:8: params\.url: must be a URI/);
  });

  it('every problem of a request is named at once: the request\'s own and its params\', each at its line', async () => {
    d.drop('both.yaml', 'kind: request\nrecipe: fetcher\nparams:\n  url: not a url\nnotify:\n  email: not-an-address\n');
    const text = await rejection(d, 'both.yaml');
    assert.match(text, /both\.yaml:4:8: params\.url: must be a URI/);
    assert.match(text, /both\.yaml:6:10: notify\.email: must be an email address/);
  });

  it('an unknown recipe gets "did you mean" for a near name', async () => {
    d.drop('typo.yaml', request('ecoh'));
    assert.match(await rejection(d, 'typo.yaml'), /recipe: no recipe named "ecoh" is loaded \(did you mean "echo"\? loaded: echo, fetcher, named\)/);
  });

  it('a slip of indentation is one sentence saying what to check, with the parser\'s words after it', async () => {
    d.drop('indent.yaml', 'kind: request\nrecipe: echo\nparams:\n  text: a\n   seconds: 1\n');
    const text = await rejection(d, 'indent.yaml');
    const problems = text.split('\n').filter((l) => l.startsWith('indent.yaml:'));
    assert.equal(problems.length, 1, text);
    assert.match(problems[0], /^indent\.yaml:4:9: YAML syntax: a value runs on into the next line: the keys of one mapping start at the same column \(check the indentation of the next line\) \(the parser says: .+\)$/);
  });

  it('a parameter that would lead out of the work dir is rejected before it becomes a job', async () => {
    d.drop('escape.yaml', request('named', { name: '../../etc/passwd' }));
    const text = await rejection(d, 'escape.yaml');
    assert.match(text, /params\.name: steps\[1\]\.zip\.from \(recipe named\): must not contain "\.\."/);
    d.drop('absolute.yaml', request('named', { name: '/etc/passwd' }));
    assert.match(await rejection(d, 'absolute.yaml'), /must be relative to the job's work dir/);
    assert.equal(d.ctx.store.jobs.list().length, 0, 'no job was made');
  });

  it('a file over inbox.maxFileBytes is rejected unread', async () => {
    d.drop('huge.yaml', `kind: request\nrecipe: echo\n# ${'x'.repeat(10_000)}\n`);
    assert.match(await rejection(d, 'huge.yaml'), /takes files up to 4\.0 KiB/);
  });

  it('binary and hostile files are rejected without harming the daemon', async () => {
    d.drop('binary.yaml', Buffer.from([0, 1, 2, 255, 254, 0]).toString('latin1'));
    assert.match(await rejection(d, 'binary.yaml'), /binary file/);
    d.drop('bomb.yaml', 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n');
    assert.match(await rejection(d, 'bomb.yaml'), /alias/i);
    d.drop('list.yaml', '- kind: request\n');
    assert.match(await rejection(d, 'list.yaml'), /must be a mapping/);
    d.drop('two.yaml', 'kind: request\nrecipe: echo\n---\nkind: request\nrecipe: echo\n');
    assert.match(await rejection(d, 'two.yaml'), /more than one YAML document/);
  });

  it('a rejected file harms no other file dropped with it', async () => {
    d.drop('good-1.yaml', request('echo', { text: 'one' }, { id: 'good-1' }));
    d.drop('bad-1.yaml', '{{{{');
    d.drop('good-2.yaml', request('echo', { text: 'two' }, { id: 'good-2' }));
    await rejection(d, 'bad-1.yaml');
    assert.equal((await d.job('good-1', ended)).state, 'succeeded');
    assert.equal((await d.job('good-2', ended)).state, 'succeeded');
  });

  it('a second rejected file of the same name keeps both, each with its reason', async () => {
    d.drop('twice.yaml', 'kind: nope\n');
    await rejection(d, 'twice.yaml');
    d.drop('twice.yaml', 'kind: nope2\n');
    const second = await waitFor('second rejection', () => existsSync(path.join(d.inboxDir, 'rejected', 'twice-2.yaml.error.txt')) && readFileSync(path.join(d.inboxDir, 'rejected', 'twice-2.yaml.error.txt'), 'utf8'));
    assert.match(second, /nope2/);
  });

  it('a rejected file is never seen without its whole reason beside it', { timeout: 60_000 }, async () => {
    const dir = path.join(d.inboxDir, 'rejected');
    const names = Array.from({ length: 40 }, (_, i) => `watched-${i}.yaml`);
    let looks = 0;
    const broken: string[] = [];
    let watching = true;
    // Looks at inbox/rejected/ as often as it can while the 40 are rejected.
    const observer = (async () => {
      while (watching) {
        looks++;
        // Every reason there is complete, and every rejected file has one.
        for (const f of readdirSync(dir).filter((n) => n.startsWith('watched-'))) {
          const reason = path.join(dir, f.endsWith('.error.txt') ? f : `${f}.error.txt`);
          const text = existsSync(reason) ? readFileSync(reason, 'utf8') : '';
          if (!text.endsWith('drop it into the inbox again.\n')) broken.push(`${f}: ${JSON.stringify(text.slice(0, 40))}`);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (const n of names) d.drop(n, 'kind: nope\n');
    for (const n of names) await rejection(d, n);
    watching = false;
    await observer;
    assert.ok(looks > 40, `looked ${looks} times`);
    assert.deepEqual(broken, []);
  });

  it('files with ignored names stay in the inbox untouched', async () => {
    for (const name of ['.hidden.yaml', 'draft.yaml.tmp', 'upload.yaml.part', 'backup.yaml~']) writeFileSync(path.join(d.inboxDir, name), 'kind: nope\n');
    d.drop('marker.yaml', 'kind: nope\n');
    await rejection(d, 'marker.yaml');
    await sleep(300);
    for (const name of ['.hidden.yaml', 'draft.yaml.tmp', 'upload.yaml.part', 'backup.yaml~']) assert.ok(existsSync(path.join(d.inboxDir, name)), name);
  });
});

function fetchRecipe(): Record<string, unknown> {
  return {
    kind: 'recipe',
    name: 'fetcher',
    params: { type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } },
    steps: [{ fetch: { url: '{{params.url}}', to: 'in/' } }, { zip: { from: 'in', to: 'out.zip' } }],
  };
}

describe('inbox: acceptance', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe() }, config: { lanes: { fast: { concurrency: 4 } } } });
  });
  after(() => d.cleanup());

  it('a file renamed over one already read (same name) is not moved away with it: both become jobs', async () => {
    // Holding the commits keeps intake between its read and its move (the window a sync or a checkpoint opens).
    const release = d.ctx.store.hold();
    try {
      d.drop('same.yaml', request('echo', { text: 'first' }, { id: 'same-1' }));
      await sleep(800); // read, parsed, waiting to be stored
      d.drop('same.yaml', request('echo', { text: 'second' }, { id: 'same-2' }));
    } finally {
      release();
    }
    assert.equal((await d.job('same-1', ended)).state, 'succeeded');
    assert.equal((await d.job('same-2', ended, 15_000)).state, 'succeeded', 'the second file was taken, not archived as the first');
    // The first file is gone (the writer's rename replaced it); the second is archived under its own job.
    const second = await d.job('same-2', ended);
    await waitFor('the inbox without same.yaml', () => (existsSync(path.join(d.inboxDir, 'same.yaml')) ? undefined : true), 10_000);
    assert.deepEqual(readdirSync(path.join(d.root, 'state', 'archive')).filter((n) => n.endsWith('same.yaml')), [`${second.id}-same.yaml`]);
  });

  it('a bad file replaced by a good one of the same name after it was read: the good one is not rejected with the bad one\'s reasons', async () => {
    const release = d.ctx.store.hold();
    try {
      d.drop('swap.yaml', 'kind: request\nrecipe: [not closed\n');
      await sleep(800);
      d.drop('swap.yaml', request('echo', { text: 'good' }, { id: 'swap-good' }));
    } finally {
      release();
    }
    assert.equal((await d.job('swap-good', ended, 15_000)).state, 'succeeded');
  });

  it('an accepted file is moved to state/archive and its job stored', async () => {
    d.drop('a.yaml', request('echo', { text: 'abc' }, { id: 'acc-a' }));
    const job = await d.job('acc-a', ended);
    assert.equal(job.state, 'succeeded');
    assert.ok(!existsSync(path.join(d.inboxDir, 'a.yaml')));
    assert.ok(readdirSync(path.join(d.root, 'state', 'archive')).some((n) => n === `${job.id}-a.yaml`));
    assert.equal(readFileSync(path.join(d.root, 'outputs', job.id, 'result.txt'), 'utf8'), 'abc');
  });

  it('the same request id again returns the existing job; different content under it is rejected', async () => {
    d.drop('idem-1.yaml', request('echo', { text: 'same' }, { id: 'idem' }));
    const first = await d.job('idem');
    d.drop('idem-2.yaml', request('echo', { text: 'same' }, { id: 'idem' }));
    await waitFor('idem-2 archived', () => readdirSync(path.join(d.root, 'state', 'archive')).includes(`${first.id}-idem-2.yaml`));
    assert.equal(d.ctx.store.jobs.list({ limit: 1000 }).filter((j) => j.requestId === 'idem').length, 1);
    d.drop('idem-3.yaml', request('echo', { text: 'different' }, { id: 'idem' }));
    const text = await rejection(d, 'idem-3.yaml');
    assert.match(text, new RegExp(`id: id "idem" is already job ${first.id}, with different content`));
  });

  it('a file written slowly in place is taken only once complete', async () => {
    const file = path.join(d.inboxDir, 'slow.yaml');
    const text = Buffer.from(`kind: request\nrecipe: echo\nid: slow-writer\nparams:\n  text: "${'z'.repeat(200)}"\n`);
    const fd = openSync(file, 'w');
    // Chunks 40 ms apart: less than the settle time, so the file never looks finished early.
    for (let i = 0; i < text.length; i += 16) {
      writeSync(fd, text.subarray(i, i + 16));
      await sleep(i % 64 === 0 ? 40 : 5);
    }
    closeSync(fd);
    const job = await d.job('slow-writer', ended);
    assert.equal(job.state, 'succeeded');
    assert.equal(job.params.text, 'z'.repeat(200));
    assert.ok(!existsSync(path.join(d.inboxDir, 'rejected', 'slow.yaml')));
  });

  it('a recipe dropped into the inbox is installed into recipes/ and usable', async () => {
    d.drop('new-recipe.yaml', echoRecipe('dropped'));
    await waitFor('recipe installed', () => existsSync(path.join(d.root, 'recipes', 'dropped.yaml')));
    d.drop('use-dropped.yaml', request('dropped', { text: 'via inbox' }, { id: 'use-dropped' }));
    assert.equal((await d.job('use-dropped', ended)).state, 'succeeded');
  });
});

describe('inbox: many files and restarts', () => {
  it('200 files dropped at once become 200 jobs, each once', { timeout: 120_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const d = await testDaemon({ root, recipes: { echo: echoRecipe() }, config: { lanes: { fast: { concurrency: 8 } } } });
    try {
      // Written by another process: a process writing into a folder it watches slows chokidar down.
      const script = `
        const fs = require('fs'), path = require('path');
        const dir = process.argv[1];
        for (let i = 0; i < 200; i++) {
          const tmp = path.join(dir, '.r' + i + '.tmp');
          fs.writeFileSync(tmp, 'kind: request\\nrecipe: echo\\nid: bulk-' + i + '\\nparams: { text: "n' + i + '" }\\n');
          fs.renameSync(tmp, path.join(dir, 'r' + i + '.yaml'));
        }`;
      await new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', script, d.inboxDir], { stdio: 'inherit' });
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
      });
      const succeeded = (): number => (d.ctx.store.db.prepare(`SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'`).get() as { n: number }).n;
      await waitFor('200 jobs to end', () => succeeded() === 200, 90_000, 200);
      const rows = d.ctx.store.db.prepare('SELECT request_id FROM jobs').all() as Array<{ request_id: string }>;
      assert.equal(new Set(rows.map((r) => r.request_id)).size, 200);
      assert.deepEqual(readdirSync(d.inboxDir).filter((n) => n.endsWith('.yaml')), []);
      assert.deepEqual(readdirSync(path.join(d.inboxDir, 'rejected')), []);
    } finally {
      await d.cleanup();
      cleanup();
    }
  });

  it('a batch of 200 files with broken ones among them: each broken one is rejected with its reason, every other becomes one job', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const d = await testDaemon({ root, recipes: { echo: echoRecipe() } });
    try {
      const later = '2999-01-01T00:00:00Z';
      const files: Record<string, string> = {};
      for (let i = 0; i < 200; i++) {
        const name = `b${String(i).padStart(3, '0')}.yaml`;
        if (i % 20 === 3) files[name] = 'kind: request\nrecipe: echo\nparams: { text: [unclosed\n';
        else if (i % 20 === 7) files[name] = `kind: request\nrecipe: nope\nid: batch-${i}\n`;
        else if (i % 20 === 11) files[name] = `kind: request\nrecipe: echo\nid: batch-${i}\nparams: { text: 5 }\n`;
        else files[name] = `kind: request\nrecipe: echo\nid: batch-${i}\nnotBefore: "${later}"\nparams: { text: "n${i}" }\n`;
      }
      // The same id as b000 with other content: refused as a conflict, even within one batch.
      files['b999.yaml'] = `kind: request\nrecipe: echo\nid: batch-0\nnotBefore: "${later}"\nparams: { text: "other" }\n`;
      const script = `const fs=require('fs'),p=require('path');const files=JSON.parse(fs.readFileSync(0,'utf8'));for(const [n,t] of Object.entries(files)){fs.writeFileSync(p.join(process.argv[1],'.'+n+'.tmp'),t);fs.renameSync(p.join(process.argv[1],'.'+n+'.tmp'),p.join(process.argv[1],n));}`;
      await new Promise<void>((resolve) => {
        const child = spawn(process.execPath, ['-e', script, d.inboxDir], { stdio: ['pipe', 'inherit', 'inherit'] });
        child.stdin.end(JSON.stringify(files));
        child.on('exit', () => resolve());
      });
      const broken = Object.keys(files).filter((n, i) => n === 'b999.yaml' || [3, 7, 11].includes(i % 20));
      for (const n of broken) await rejection(d, n);
      const jobs = (): number => (d.ctx.store.db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
      await waitFor('the good ones to be jobs', () => jobs() === 200 - 30, 20_000);
      assert.match(readFileSync(path.join(d.inboxDir, 'rejected', 'b003.yaml.error.txt'), 'utf8'), /YAML syntax/);
      assert.match(readFileSync(path.join(d.inboxDir, 'rejected', 'b007.yaml.error.txt'), 'utf8'), /no recipe named "nope"/);
      assert.match(readFileSync(path.join(d.inboxDir, 'rejected', 'b011.yaml.error.txt'), 'utf8'), /params\.text: must be a string/);
      assert.match(readFileSync(path.join(d.inboxDir, 'rejected', 'b999.yaml.error.txt'), 'utf8'), /id "batch-0" is already job/);
      const ids = d.ctx.store.db.prepare('SELECT request_id FROM jobs').all() as Array<{ request_id: string }>;
      assert.equal(new Set(ids.map((r) => r.request_id)).size, 170, 'each once');
      await waitFor('the inbox to be empty', () => readdirSync(d.inboxDir).filter((n) => n.endsWith('.yaml')).length === 0);
    } finally {
      await d.cleanup();
      cleanup();
    }
  });

  it('files already in the inbox at start are taken', async () => {
    const { root, cleanup } = tempRoot();
    drop(path.join(root, 'recipes'), 'echo.yaml', echoRecipe());
    drop(path.join(root, 'inbox'), 'early-1.yaml', request('echo', { text: '1' }, { id: 'early-1' }));
    drop(path.join(root, 'inbox'), 'early-2.yaml', request('echo', { text: '2' }, { id: 'early-2' }));
    const d = await testDaemon({ root });
    try {
      assert.equal((await d.job('early-1', ended)).state, 'succeeded');
      assert.equal((await d.job('early-2', ended)).state, 'succeeded');
    } finally {
      await d.cleanup();
      cleanup();
    }
  });

  it('a file stored but not yet moved when hopper died is not made twice', async () => {
    const { root, cleanup } = tempRoot();
    let d = await testDaemon({ root, recipes: { echo: echoRecipe() } });
    const file = d.drop('once.yaml', request('echo', { text: 'once' }));
    const job = await waitFor('the job to end', () => d.ctx.store.jobs.list().find(ended));
    await d.stop();
    // Put the very same file (same inode and times) back: as if the move never happened.
    renameSync(path.join(root, 'state', 'archive', `${job.id}-once.yaml`), file);
    d = await testDaemon({ root });
    try {
      await waitFor('the file to leave the inbox', () => !existsSync(file));
      assert.equal(d.ctx.store.jobs.list().length, 1, 'still one job');
    } finally {
      await d.cleanup();
      cleanup();
    }
  });
});

describe('inbox: a burst taken in several batches at once', () => {
  it('batches are stored in order: a request for a recipe dropped in an earlier batch is accepted, and a cancel reaches a request of an earlier batch', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const inbox = path.join(root, 'inbox');
    // Oldest first: the recipe file, seven requests (batch 1 is 8 files), then the later ones (batch 2 and 3).
    const files: Array<[string, object]> = [
      ['00-recipe.yaml', echoRecipe('fresh')],
      ...Array.from({ length: 7 }, (_, i): [string, object] => [`01-filler-${i}.yaml`, request('echo', { text: `f${i}` }, { id: `filler-${i}`, notBefore: '2999-01-01T00:00:00Z' })]),
      ['02-uses-fresh.yaml', request('fresh', { text: 'new' }, { id: 'uses-fresh' })],
      ...Array.from({ length: 8 }, (_, i): [string, object] => [`03-more-${i}.yaml`, request('echo', { text: `m${i}` }, { id: `more-${i}` })]),
      ['04-cancel.yaml', { kind: 'cancel', job: 'filler-0' }],
    ];
    const t0 = Date.now() / 1000 - 60;
    files.forEach(([name, doc], i) => {
      const file = drop(inbox, name, doc);
      utimesSync(file, t0 + i, t0 + i);
    });
    // All present at start: the first look takes them in one pass, 8 a batch.
    const d = await testDaemon({ root, recipes: { echo: echoRecipe() } });
    try {
      const fresh = await d.job('uses-fresh', ended, 30_000);
      assert.equal(fresh.state, 'succeeded', fresh.errorMessage ?? '');
      assert.equal((await d.job('filler-0', ended, 30_000)).state, 'canceled');
      assert.deepEqual(existsSync(path.join(inbox, 'rejected')) ? readdirSync(path.join(inbox, 'rejected')) : [], [], 'nothing rejected');
    } finally {
      await d.cleanup();
      cleanup();
    }
  });
});
