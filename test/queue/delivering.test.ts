import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { openStore } from '../../src/store/store.js';
import { hopper, startCli } from '../helpers/cli.js';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { request } from '../helpers/recipes.js';
import { s3Server, type TestS3 } from '../helpers/s3.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { waitFor } from '../helpers/wait.js';

// Issue 13: finished work is never redone because delivery failed. Each test
// counts the runs of the steps in a file beside the work dir (jobs/ID/runs).

/** `mb` MiB of random bytes in out/big.bin; each run of the step adds a line to ../runs. */
function countingRecipe(upload: 's3' | 'local', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'recipe',
    name: 'big',
    params: { type: 'object', properties: { mb: { type: 'integer', default: 1 } } },
    steps: [{ run: { command: ['sh', '-c', 'echo run >> ../runs && mkdir -p out && head -c "$(( $1 * 1048576 ))" /dev/urandom > out/big.bin', 'sh', '{{params.mb}}'] } }],
    output: { files: ['out/big.bin'], upload, ...(upload === 's3' ? { prefix: 'other/' } : {}) },
    notify: { email: { to: 'ops@example.org' } },
    ...extra,
  };
}

const QUICK = { kind: 'recipe', name: 'quick', steps: [{ run: { command: ['sh', '-c', 'echo hi > out.txt'] } }], output: { files: ['out.txt'] } };

/** A temp root whose outputs/ is a tmpfs of its own (`mount -o` options), for `body`; skipped, saying why, where mount is not allowed (not root). */
async function withOwnOutputs(t: TestContext, options: string, body: (root: string, outputs: string) => Promise<void>): Promise<void> {
  const { root, cleanup } = tempRoot();
  const outputs = path.join(root, 'outputs');
  const mounted = mountTmpfs(outputs, options);
  if ('why' in mounted) {
    cleanup();
    t.skip(mounted.why);
    return;
  }
  try {
    await body(root, outputs);
  } finally {
    mounted.unmount();
    cleanup();
  }
}

function runsOf(root: string, jobId: string): number {
  const file = path.join(root, 'state', 'jobs', jobId, 'runs');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').length : 0;
}

function s3Client(s3: { endpoint: string }): S3Client {
  return new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
}

async function objectsIn(s3: { endpoint: string }): Promise<Array<{ key: string; bytes: number }>> {
  const client = s3Client(s3);
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'outputs' }));
    return (listed.Contents ?? []).map((o) => ({ key: o.Key!, bytes: o.Size! }));
  } finally {
    client.destroy();
  }
}

/** Multipart uploads begun and neither completed nor aborted (what S3 keeps, and bills, until then). */
async function halfDoneUploads(s3: { endpoint: string }): Promise<string[]> {
  const client = s3Client(s3);
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: 'outputs' }));
    return (listed.Uploads ?? []).map((u) => u.Key!);
  } finally {
    client.destroy();
  }
}

async function sha256InS3(s3: { endpoint: string }, key: string): Promise<{ body: string; meta: string | undefined }> {
  const client = s3Client(s3);
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: 'outputs', Key: key }));
    const got = await client.send(new GetObjectCommand({ Bucket: 'outputs', Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    return { body: createHash('sha256').update(bytes).digest('hex'), meta: head.Metadata?.sha256 };
  } finally {
    client.destroy();
  }
}

async function getJson(d: TestDaemon, route: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${d.http.address()}${route}`);
  return (await res.json()) as Record<string, unknown>;
}

/** An S3 that is down now, on a port it can come back on. */
async function downS3(): Promise<{ config: Record<string, unknown>; port: number; up(): Promise<TestS3> }> {
  const s3 = await s3Server();
  await s3.close();
  return { config: s3.config, port: s3.port, up: () => s3Server(s3.port) };
}

describe('queue/delivering: the delivery stage', () => {
  it('S3 down when the steps end, up later: the job waits in delivery without its lane slot, then succeeds; the step ran once', { timeout: 90_000 }, async () => {
    const s3 = await downS3();
    let upS3: TestS3 | undefined;
    const d = await testDaemon({
      recipes: { big: countingRecipe('s3'), quick: QUICK },
      config: { s3: s3.config, lanes: { fast: { concurrency: 1 } } },
      deliveryRetryBaseMs: 200,
    });
    try {
      d.drop('big.yaml', request('big', { mb: 2 }, { id: 'waits', notify: { email: 'someone@example.org' } }));
      const waiting = await d.job('waits', (j) => j.state === 'delivering' && j.deliveryTries >= 1, 30_000);
      const detail = await getJson(d, `/jobs/${waiting.id}`);
      assert.equal(detail.state, 'delivering');
      const why = (detail.waiting as { reason: string; position: number | null }).reason;
      assert.match(why, /^delivering: upload of big\.bin failed: S3 at http:\/\/127\.0\.0\.1:\d+ refused the connection.*; next try in .+ \(try \d+\)$/);
      assert.equal((await getJson(d, '/status')).delivering, 1);
      const shown = await hopper(['show', 'waits', '--root', d.root]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /delivering/);
      assert.match(shown.stdout, /waiting: delivering: upload of big\.bin failed: S3 at .* refused the connection.*; next try in .+ \(try \d+\)/);
      assert.match(await (await fetch(`${d.http.address()}/metrics`)).text(), /state="delivering"\} 1/);

      // The lane (concurrency 1) is free: another job runs and ends meanwhile.
      d.drop('quick.yaml', request('quick', {}, { id: 'meanwhile' }));
      assert.equal((await d.job('meanwhile', ended, 20_000)).state, 'succeeded');
      assert.equal(d.ctx.store.jobs.find('waits')!.state, 'delivering');

      upS3 = await s3.up();
      const job = await d.job('waits', ended, 30_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      assert.equal(runsOf(d.root, job.id), 1, 'the step ran once');
      const [out] = d.ctx.store.outputs.forJob(job.id);
      assert.equal(out.ref, `other/${job.id}/big.bin`);
      assert.deepEqual(await objectsIn(upS3), [{ key: out.ref, bytes: 2 * 1024 * 1024 }]);
      const inS3 = await sha256InS3(upS3, out.ref);
      assert.equal(inS3.body, out.sha256, 'the bytes in S3 are the ones produced');
      assert.equal(inS3.meta, out.sha256, 'kept with the object, so a later try can tell it is there');
      assert.deepEqual(d.ctx.store.outputs.produced(job.id), [], 'the record of what waited is gone');
      assert.equal(existsSync(path.join(d.root, 'state', 'jobs', job.id, 'work')), false, 'the work dir went once delivered');
      const mail = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-succeeded`)));
      assert.ok(readEml(mail).body.includes(`/outputs/other/${job.id}/big.bin?`), 'the email has the link');
      assert.match(readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8'), /delivery try 1 failed: E_S3: upload of big\.bin failed: S3 at .* refused the connection/);
    } finally {
      await d.cleanup();
      await upS3?.close();
    }
  });

  it('S3 down for longer than s3.retryFor: the job fails with the last reason, and the email says the result could not be delivered', { timeout: 60_000 }, async () => {
    const s3 = await downS3();
    const d = await testDaemon({ recipes: { big: countingRecipe('s3') }, config: { s3: { ...s3.config, retryFor: '2s' } }, deliveryRetryBaseMs: 200 });
    try {
      d.drop('big.yaml', request('big', {}, { id: 'gives-up', notify: { email: 'someone@example.org' } }));
      const job = await d.job('gives-up', ended, 30_000);
      assert.equal(job.state, 'failed');
      assert.equal(job.errorCode, 'E_S3');
      assert.match(job.errorMessage!, /^the outputs could not be delivered for \d+(\.\d+)?s \(\d+ tries\): upload of big\.bin failed: S3 at http:\/\/127\.0\.0\.1:\d+ refused the connection/);
      assert.equal(runsOf(d.root, job.id), 1, 'no new run: the recipe has no retries');
      const mail = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-failed`)));
      assert.match(readEml(mail).body, /could not be delivered/);
      assert.ok(existsSync(path.join(d.root, 'state', 'jobs', job.id, 'work', 'out', 'big.bin')), 'the output is kept, for hopper retry');
    } finally {
      await d.cleanup();
    }
  });

  it('a secret param in an output name never shows in the delivery reason, job.log or /jobs/:id', { timeout: 60_000 }, async () => {
    const s3 = await downS3();
    const secret = 'tok-7f3a9c1e5b2d';
    const recipe = {
      kind: 'recipe',
      name: 'named',
      params: { type: 'object', required: ['token'], properties: { token: { type: 'string', writeOnly: true } } },
      steps: [{ run: { command: ['sh', '-c', 'echo data > "$1.csv"', 'sh', '{{params.token}}'] } }],
      output: { files: ['*.csv'], upload: 's3' },
    };
    const d = await testDaemon({ recipes: { named: recipe }, config: { s3: s3.config }, deliveryRetryBaseMs: 200 });
    try {
      d.drop('named.yaml', request('named', { token: secret }, { id: 'secret-name' }));
      const waiting = await d.job('secret-name', (j) => j.state === 'delivering' && j.deliveryTries >= 1, 30_000);
      assert.match(waiting.waitReason!, /upload of \*\*\*\.csv failed/);
      const view = await (await fetch(`${d.http.address()}/jobs/${waiting.id}`)).text();
      assert.ok(!view.includes(secret), 'not in /jobs/:id');
      assert.ok(!readFileSync(path.join(d.root, 'state', 'jobs', waiting.id, 'job.log'), 'utf8').includes(secret), 'not in job.log');
    } finally {
      await d.cleanup();
    }
  });

  it('when delivery gives up, the recipe\'s retries decide: the job runs again, and fails once they are used up', { timeout: 60_000 }, async () => {
    const s3 = await downS3();
    const d = await testDaemon({
      recipes: { big: countingRecipe('s3', { retries: { attempts: 2, delay: '100ms' } }) },
      config: { s3: { ...s3.config, retryFor: '1s' } },
      deliveryRetryBaseMs: 200,
    });
    try {
      d.drop('twice.yaml', request('big', {}, { id: 'runs-twice' }));
      const job = await d.job('runs-twice', ended, 40_000);
      assert.equal(job.state, 'failed');
      assert.equal(job.errorCode, 'E_S3');
      assert.equal(runsOf(d.root, job.id), 2, 'one run per attempt the recipe allows; none for a delivery try');
      assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => e.event), ['requested', 'started', 'retrying', 'started', 'failed']);
    } finally {
      await d.cleanup();
    }
  });

  it('a wrong bucket fails the job at once, in words: no try can fix it', { timeout: 60_000 }, async () => {
    const s3 = await s3Server();
    const d = await testDaemon({ recipes: { big: countingRecipe('s3') }, config: { s3: { ...s3.config, bucket: 'no-such-bucket' } } });
    try {
      const t0 = Date.now();
      d.drop('nb.yaml', request('big', {}, { id: 'no-bucket' }));
      const job = await d.job('no-bucket', ended, 30_000);
      assert.equal(job.state, 'failed');
      assert.equal(job.errorCode, 'E_S3_REFUSED');
      assert.match(job.errorMessage!, /the bucket "no-such-bucket" does not exist/);
      assert.ok(Date.now() - t0 < 10_000, 'no wait of 15 s for a try that cannot help');
      assert.equal(readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8').match(/delivery try \d+ failed/g)?.length, 1);
    } finally {
      await d.cleanup();
      await s3.close();
    }
  });

  it('S3 gone in the middle of a 30 MB multipart upload: tried again, one whole object, the step ran once', { timeout: 90_000 }, async () => {
    const s3 = await s3Server();
    // Forwards, but drops every connection once 12 MB went through, and refuses new ones for 1.5 s: S3 gone mid-upload, for a while.
    let forwarded = 0;
    let cut = false;
    let downUntil = 0;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      if (Date.now() < downUntil) return client.destroy();
      const upstream = net.connect(s3.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (chunk: Buffer) => {
        forwarded += chunk.length;
        if (forwarded > 12 * 1024 * 1024 && !cut) {
          cut = true;
          downUntil = Date.now() + 1500;
          for (const s of sockets) s.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const d = await testDaemon({ recipes: { big: countingRecipe('s3') }, config: { s3: { ...s3.config, endpoint } }, deliveryRetryBaseMs: 200 });
    try {
      d.drop('mid.yaml', request('big', { mb: 30 }, { id: 'mid-upload' }));
      const job = await d.job('mid-upload', ended, 60_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      assert.ok(cut, 'the upload was cut');
      assert.equal(runsOf(d.root, job.id), 1);
      const [out] = d.ctx.store.outputs.forJob(job.id);
      assert.deepEqual(await objectsIn(s3), [{ key: out.ref, bytes: 30 * 1024 * 1024 }], 'one object, whole');
      assert.equal((await sha256InS3(s3, out.ref)).body, out.sha256);
      assert.match(readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8'), /delivery try 1 failed: E_S3: upload of big\.bin failed: S3 at http:\/\/127\.0\.0\.1:\d+ /);
    } finally {
      await d.cleanup();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s3.close();
    }
  });

  it('a cancel reaches a job waiting in delivery: it ends canceled, and nothing is uploaded later', { timeout: 60_000 }, async () => {
    const s3 = await downS3();
    let upS3: TestS3 | undefined;
    const d = await testDaemon({ recipes: { big: countingRecipe('s3') }, config: { s3: s3.config }, deliveryRetryBaseMs: 300 });
    try {
      d.drop('c.yaml', request('big', {}, { id: 'cancel-me' }));
      const waiting = await d.job('cancel-me', (j) => j.state === 'delivering' && j.deliveryTries >= 1, 30_000);
      d.drop('cancel.yaml', { kind: 'cancel', job: 'cancel-me' });
      const job = await d.job('cancel-me', ended, 20_000);
      assert.equal(job.state, 'canceled');
      upS3 = await s3.up();
      await new Promise((resolve) => setTimeout(resolve, 1000)); // tries would have come by now
      assert.deepEqual(await objectsIn(upS3), []);
      assert.equal(d.ctx.store.jobs.find(waiting.id)!.state, 'canceled');
    } finally {
      await d.cleanup();
      await upS3?.close();
    }
  });

  it('hopper retry of a job that failed in delivery delivers again without running the steps; --rerun runs them', { timeout: 90_000 }, async () => {
    const s3 = await downS3();
    let upS3: TestS3 | undefined;
    const d = await testDaemon({ recipes: { big: countingRecipe('s3') }, config: { s3: { ...s3.config, retryFor: '1s' } }, deliveryRetryBaseMs: 200 });
    try {
      d.drop('a.yaml', request('big', {}, { id: 'again-a' }));
      d.drop('b.yaml', request('big', {}, { id: 'again-b' }));
      const a = await d.job('again-a', ended, 30_000);
      const b = await d.job('again-b', ended, 30_000);
      assert.equal(a.state, 'failed');
      assert.equal(b.state, 'failed');
      upS3 = await s3.up();
      const plain = await hopper(['retry', 'again-a', '--root', d.root]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, /failed in delivery: its outputs are delivered again, its steps do not run \(--rerun runs them\)/);
      const rerun = await hopper(['retry', 'again-b', '--rerun', '--root', d.root]);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.match(rerun.stdout, /is queued again/);
      assert.equal((await d.job('again-a', (j) => j.state === 'succeeded', 30_000)).state, 'succeeded');
      assert.equal((await d.job('again-b', (j) => j.state === 'succeeded', 30_000)).state, 'succeeded');
      assert.equal(runsOf(d.root, a.id), 1, 'delivered again: the steps did not run');
      assert.equal(runsOf(d.root, b.id), 2, '--rerun: the steps ran again');
      assert.equal((await objectsIn(upS3)).length, 2);
    } finally {
      await d.cleanup();
      await upS3?.close();
    }
  });

  it('kill -9 while a job waits in delivery: after the restart it is delivered, and its step ran once', { timeout: 120_000 }, async () => {
    const s3 = await downS3();
    let upS3: TestS3 | undefined;
    const { root, cleanup } = tempRoot();
    mkdirSync(path.join(root, 'recipes'), { recursive: true });
    writeFileSync(path.join(root, 'recipes', 'big.yaml'), stringify(countingRecipe('s3')));
    writeFileSync(path.join(root, 'hopper.yaml'), stringify({ http: { port: 0 }, s3: s3.config }));
    let daemon = await startCli(root);
    try {
      mkdirSync(path.join(root, 'inbox'), { recursive: true });
      writeFileSync(path.join(root, 'inbox', '.k.tmp'), stringify({ kind: 'request', recipe: 'big', id: 'killed', params: { mb: 1 } }));
      execFileSync('mv', [path.join(root, 'inbox', '.k.tmp'), path.join(root, 'inbox', 'k.yaml')]);
      const stateOf = (): { id: string; state: string } | undefined => {
        const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
        try {
          return store.db.prepare<[], { id: string; state: string }>("SELECT id, state FROM jobs WHERE request_id = 'killed'").get();
        } catch {
          return undefined;
        } finally {
          store.close();
        }
      };
      const waiting = await waitFor('the job to wait in delivery', () => (stateOf()?.state === 'delivering' ? stateOf() : undefined), 30_000);
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      upS3 = await s3.up();
      daemon = await startCli(root);
      await waitFor('the job to succeed after the restart', () => stateOf()?.state === 'succeeded', 30_000);
      assert.equal(runsOf(root, waiting.id), 1, 'the step ran once');
      assert.deepEqual(await objectsIn(upS3), [{ key: `other/${waiting.id}/big.bin`, bytes: 1024 * 1024 }]);
    } finally {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      await upS3?.close();
      cleanup();
    }
  });

  it('kill -9 in the middle of a 50 MB multipart upload: after the restart one whole object, and the step ran once', { timeout: 120_000 }, async () => {
    const s3 = await s3Server();
    // A proxy that forwards at ~10 MB/s, so the upload is still under way when hopper is killed.
    let forwarded = 0;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(s3.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (chunk: Buffer) => {
        forwarded += chunk.length;
        client.pause();
        upstream.write(chunk);
        setTimeout(() => client.resume(), Math.ceil(chunk.length / 10_000));
      });
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const { root, cleanup } = tempRoot();
    mkdirSync(path.join(root, 'recipes'), { recursive: true });
    writeFileSync(path.join(root, 'recipes', 'big.yaml'), stringify(countingRecipe('s3')));
    writeFileSync(path.join(root, 'hopper.yaml'), stringify({ http: { port: 0 }, s3: { ...s3.config, endpoint } }));
    let daemon = await startCli(root);
    try {
      mkdirSync(path.join(root, 'inbox'), { recursive: true });
      writeFileSync(path.join(root, 'inbox', '.m.tmp'), stringify({ kind: 'request', recipe: 'big', id: 'killed-mid', params: { mb: 50 } }));
      execFileSync('mv', [path.join(root, 'inbox', '.m.tmp'), path.join(root, 'inbox', 'm.yaml')]);
      await waitFor('the upload to be under way', () => forwarded > 15 * 1024 * 1024, 60_000);
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      for (const sock of sockets) sock.destroy();
      assert.equal((await halfDoneUploads(s3)).length, 1, 'the killed upload was left half done');
      daemon = await startCli(root);
      const store = (): ReturnType<typeof openStore> => openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
      const job = await waitFor('the job to succeed after the restart', () => {
        const s = store();
        try {
          const row = s.db.prepare<[], { id: string; state: string }>("SELECT id, state FROM jobs WHERE request_id = 'killed-mid'").get();
          return row?.state === 'succeeded' ? row : undefined;
        } finally {
          s.close();
        }
      }, 60_000);
      assert.equal(runsOf(root, job.id), 1, 'the step ran once');
      const s = store();
      const out = s.outputs.forJob(job.id)[0];
      s.close();
      assert.deepEqual(await objectsIn(s3), [{ key: `other/${job.id}/big.bin`, bytes: 50 * 1024 * 1024 }], 'one object, under its one key');
      assert.equal((await sha256InS3(s3, out.ref)).body, out.sha256, 'whole: the bytes produced');
      assert.deepEqual(await halfDoneUploads(s3), [], 'the half-done upload was aborted');
    } finally {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s3.close();
      cleanup();
    }
  });

  it('outputs/ on a full disk: the job waits with the reason, and is delivered once space is freed', { timeout: 60_000 }, async (t) => {
    // A small tmpfs of its own for outputs/, so a copy there can run out of space (root only).
    await withOwnOutputs(t, 'size=3m', async (root, outputs) => {
      const filler = path.join(outputs, 'filler');
      writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
      const d = await testDaemon({ root, recipes: { big: countingRecipe('local') }, deliveryRetryBaseMs: 200 });
      try {
        d.drop('full.yaml', request('big', { mb: 2 }, { id: 'full-disk' }));
        const waiting = await d.job('full-disk', (j) => j.state === 'delivering' && j.deliveryTries >= 1, 30_000);
        assert.match(waiting.waitReason!, /^delivering: the disk of .*outputs is full \(ENOSPC\)/);
        assert.deepEqual(
          readdirSync(path.join(outputs, waiting.id)).filter((n) => n.endsWith('.part')),
          [],
          'no part of a failed copy holds the space',
        );
        rmSync(filler);
        const job = await d.job('full-disk', ended, 30_000);
        assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
        assert.equal(runsOf(root, job.id), 1);
        const [out] = d.ctx.store.outputs.forJob(job.id);
        assert.equal(createHash('sha256').update(readFileSync(path.join(outputs, out.ref))).digest('hex'), out.sha256);
      } finally {
        await d.cleanup();
      }
    });
  });

  it('outputs/ out of inodes (its folder for the job cannot be made): the job waits, and is delivered once one is freed', { timeout: 60_000 }, async (t) => {
    await withOwnOutputs(t, 'size=8m,nr_inodes=4', async (root, outputs) => {
      const fillers: string[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          const f = path.join(outputs, `filler-${i}`);
          writeFileSync(f, '');
          fillers.push(f);
        }
      } catch {
        /* out of inodes: as meant */
      }
      const d = await testDaemon({ root, recipes: { big: countingRecipe('local') }, deliveryRetryBaseMs: 200 });
      try {
        d.drop('inodes.yaml', request('big', {}, { id: 'no-inodes' }));
        const waiting = await d.job('no-inodes', (j) => j.state === 'delivering' && j.deliveryTries >= 1, 30_000);
        assert.match(waiting.waitReason!, /^delivering: the disk of .*outputs is full \(ENOSPC\)/);
        for (const f of fillers) rmSync(f);
        const job = await d.job('no-inodes', ended, 30_000);
        assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
        assert.equal(runsOf(root, job.id), 1, 'the step ran once');
      } finally {
        await d.cleanup();
      }
    });
  });
});
