import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ended, rejectionOf, tempRoot, testDaemon } from '../helpers/daemon.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { request } from '../helpers/recipes.js';
import { s3Server } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';

/** Makes `mb` MiB of random bytes in out/, and prints their sha256, with `head` and `sha256sum`. */
function bigRecipe(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'recipe',
    name: 'big',
    params: { type: 'object', properties: { mb: { type: 'integer', default: 1 } } },
    steps: [{ run: { command: ['sh', '-c', 'mkdir -p out && head -c "$(( $1 * 1048576 ))" /dev/urandom > out/big.bin', 'sh', '{{params.mb}}'] } }],
    output: { files: ['out/big.bin'], upload: 's3', prefix: 'other/' },
    notify: { email: { to: 'ops@example.org', body: 'Link: {{output.links}}' } },
    ...extra,
  };
}

describe('S3 delivery', () => {
  it('uploads a 50 MB output with multipart and the emailed presigned link downloads it byte for byte', { timeout: 120_000 }, async () => {
    const s3 = await s3Server();
    const d = await testDaemon({ recipes: { big: bigRecipe() }, config: { s3: s3.config } });
    try {
      d.drop('big.yaml', request('big', { mb: 50 }, { id: 'big-50' }));
      const job = await d.job('big-50', ended, 90_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      const [out] = d.ctx.store.outputs.forJob(job.id);
      assert.equal(out.location, 's3');
      assert.equal(out.ref, `other/${job.id}/big.bin`);
      assert.equal(out.bytes, 50 * 1024 * 1024);
      const eml = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-succeeded`)));
      const link = /https?:\/\/\S+/.exec(readEml(eml).body)![0];
      assert.ok(link.startsWith(`${s3.endpoint}/outputs/other/${job.id}/big.bin?`), link);
      assert.match(link, /X-Amz-Signature=/);
      const res = await fetch(link);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-disposition') ?? '', /attachment; filename="big\.bin"/);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(body.length, out.bytes);
      assert.equal(createHash('sha256').update(body).digest('hex'), out.sha256, 'the same bytes came back');
    } finally {
      await d.cleanup();
      await s3.close();
    }
  });

  // Outages, a cut upload and a refused bucket: test/queue/delivering.test.ts (the delivery stage).

  it('a stop waits for a job being served from the cache: the store does not close under it', { timeout: 60_000 }, async () => {
    const s3 = await s3Server();
    const { root, cleanup } = tempRoot();
    let d = await testDaemon({ root, recipes: { big: bigRecipe({ cache: '1h' }) }, config: { s3: s3.config } });
    try {
      d.drop('first.yaml', request('big', { mb: 1 }, { id: 'cache-first' }));
      assert.equal((await d.job('cache-first', ended, 30_000)).state, 'succeeded');
      // Presigning the cached output's link now takes a while (credentials are looked up slowly).
      const client = d.ctx.s3!.client;
      const slow = { accessKeyId: String(s3.config.accessKeyId), secretAccessKey: String(s3.config.secretAccessKey) };
      client.config.credentials = () => new Promise((resolve) => setTimeout(() => resolve(slow), 400));
      d.drop('again.yaml', request('big', { mb: 1 }, { id: 'cache-again' }));
      await waitFor('the second job to be taken', () => d.ctx.store.jobs.find('cache-again'));
      await new Promise((r) => setTimeout(r, 100));
      await d.stop(1000);
      const stoppedAt = Date.now();
      d = await testDaemon({ root, config: { s3: s3.config } });
      const job = await d.job('cache-again', ended, 20_000);
      assert.equal(job.state, 'succeeded');
      assert.equal(d.ctx.store.jobs.attemptsOf(job.id).length, 0, 'served from the cache, without a run');
      assert.ok(job.finishedAt! <= stoppedAt, 'settled by the daemon that was stopping, not left to the next start');
    } finally {
      await d.cleanup();
      await s3.close();
      cleanup();
    }
  });

  it('a request for an S3 recipe is rejected when no S3 is configured', async () => {
    const d = await testDaemon({ recipes: { big: bigRecipe() } });
    try {
      d.drop('nos3.yaml', request('big', {}, { id: 'nos3' }));
      assert.match(await rejectionOf(d, 'nos3.yaml'), /uploads to S3, but hopper\.yaml has no s3 section/);
    } finally {
      await d.cleanup();
    }
  });
});
