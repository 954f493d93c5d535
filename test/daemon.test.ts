import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signedLink } from '../src/delivery/links.js';
import { createLogger } from '../src/log.js';
import { ended, testDaemon, type TestDaemon } from './helpers/daemon.js';
import { httpServer, type TestServer } from './helpers/http.js';
import { emlFiles, readEml } from './helpers/mail.js';
import { echoRecipe } from './helpers/recipes.js';
import { waitFor } from './helpers/wait.js';
import { readZip } from './helpers/zip.js';

const recipeText = readFileSync(new URL('../recipes/package-url.yaml', import.meta.url), 'utf8');

// The same on hopper's worker threads (the default, one per core) and with
// `threads: 0`, where steps and outbox mail run on the main thread.
for (const { how, config } of [
  { how: 'on embedded defaults', config: {} },
  { how: 'with threads: 0', config: { threads: 0 } },
]) describe(`end to end: package-url ${how}`, () => {
  let d: TestDaemon;
  let files: TestServer;
  const payload = Buffer.concat([Buffer.from('id,value\n'), Buffer.from(randomBytes(150_000).toString('base64'))]);

  before(async () => {
    files = await httpServer((req, res) => {
      if (req.url === '/data/big.csv') {
        res.writeHead(200, { 'content-type': 'text/csv', 'content-length': payload.length });
        res.end(payload);
      } else {
        res.writeHead(404).end('no');
      }
    });
    d = await testDaemon({ recipes: { 'package-url': recipeText }, config });
    assert.equal(d.ctx.offload.threads, config.threads ?? Math.max(1, os.availableParallelism() - 1));
  });
  after(async () => {
    await d.cleanup();
    await files.close();
  });

  it('turns a dropped request into a zip, an email with a link, and a download of the same bytes', async () => {
    d.drop('order.yaml', {
      kind: 'request',
      recipe: 'package-url',
      id: 'order-4711',
      params: { url: `${files.url}/data/big.csv` },
      notify: { email: 'someone@example.org' },
    });
    const job = await d.job('order-4711', ended);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');

    const zipPath = path.join(d.root, 'outputs', job.id, `${job.id}.zip`);
    const entries = await readZip(zipPath);
    assert.deepEqual([...entries.keys()], ['big.csv']);
    assert.ok(entries.get('big.csv')!.equals(payload), 'the zipped file has the fetched bytes');

    const eml = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-succeeded`)));
    const mail = readEml(eml);
    assert.match(mail.headers.to, /someone@example\.org/);
    assert.match(mail.headers.subject, /package-url download is ready/);
    const link = /https?:\/\/\S+\/downloads\/\S+/.exec(mail.body)?.[0];
    assert.ok(link, `a download link in the email:\n${mail.body}`);
    assert.doesNotMatch(mail.body, /\{\{/, 'every placeholder was filled');

    const res = await fetch(link);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /attachment/);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(readFileSync(zipPath)), 'the link downloads the zip byte for byte');

    const ranged = await fetch(link, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(readFileSync(zipPath).subarray(10, 20)));

    const tampered = link.replace(/sig=([0-9a-f])/, (_m, c: string) => `sig=${c === 'a' ? 'b' : 'a'}`);
    assert.equal((await fetch(tampered)).status, 403);
    const otherFile = link.replace(`${job.id}.zip`, 'other.zip');
    assert.equal((await fetch(otherFile)).status, 403, 'a signature does not carry over to another file');

    const expired = signedLink(d.ctx.publicUrl(), d.ctx.linkKey, job.id, `${job.id}.zip`, Date.now() - 1000);
    const expiredRes = await fetch(expired);
    assert.equal(expiredRes.status, 403);
    assert.match(((await expiredRes.json()) as { error: string }).error, /expired/);
  });
});

describe('state at rest: readable by hopper\'s user alone, whatever the umask', () => {
  it('the database and its WAL, archived requests, job logs and emails are 0600 in 0700 folders under umask 000', async () => {
    const old = process.umask(0);
    let d: TestDaemon | undefined;
    try {
      d = await testDaemon({ recipes: { echo: { ...echoRecipe(), notify: { email: { to: 'someone@example.org' } } } } });
      d.drop('modes.yaml', { kind: 'request', recipe: 'echo', id: 'modes', params: { text: 'x' } });
      const job = await d.job('modes', ended);
      const outbox = path.join(d.root, 'outbox');
      await waitFor('the email', () => emlFiles(outbox).length > 0);
      const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
      const state = path.join(d.root, 'state');
      for (const dir of [state, path.join(state, 'archive'), path.join(state, 'jobs'), path.join(d.root, 'outputs'), outbox]) assert.equal(mode(dir), '700', dir);
      for (const f of ['hopper.db', 'hopper.db-wal', 'hopper.db-shm']) assert.equal(mode(path.join(state, f)), '600', f);
      assert.equal(mode(path.join(state, 'archive', `${job.id}-modes.yaml`)), '600');
      assert.equal(mode(path.join(state, 'jobs', job.id, 'job.log')), '600');
      assert.equal(mode(emlFiles(outbox)[0]), '600');
    } finally {
      process.umask(old);
      await d?.cleanup();
    }
  });
});

describe('Daemon.ready', () => {
  const capture = (): { lines: string[]; log: ReturnType<typeof createLogger> } => {
    const lines: string[] = [];
    return { lines, log: createLogger({ destination: { write: (line: string) => void lines.push(line) } }) };
  };
  const started = (lines: string[]): number => lines.filter((l) => l.includes('"msg":"hopper started"')).length;

  it('says "hopper started" once the step threads have loaded what the recipes use', async () => {
    const { lines, log } = capture();
    const d = await testDaemon({ recipes: { e: echoRecipe('e') }, log });
    try {
      let loaded = false;
      void d.warm.then(() => (loaded = true));
      assert.equal(started(lines), 0, 'not before ready()');
      await d.ready();
      assert.ok(loaded, 'the threads had loaded');
      assert.equal(started(lines), 1);
    } finally {
      await d.cleanup();
    }
  });

  it('says nothing of a start once a stop came first', async () => {
    const { lines, log } = capture();
    const d = await testDaemon({ recipes: { e: echoRecipe('e') }, log });
    try {
      await d.stop();
      await d.ready();
      assert.equal(started(lines), 0);
      assert.ok(lines.some((l) => l.includes('"msg":"hopper stopped"')));
    } finally {
      await d.cleanup();
    }
  });
});
