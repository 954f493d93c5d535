import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Job } from '../../src/store/jobs.js';
import { apiGet } from '../helpers/api.js';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { dockerForTests } from '../helpers/docker.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { request } from '../helpers/recipes.js';
import { s3Server, type TestS3 } from '../helpers/s3.js';
import { waitFor } from '../helpers/wait.js';
import { readZip } from '../helpers/zip.js';

const docker = await dockerForTests();
const recipe = readFileSync(new URL('../../recipes/container-farm.yaml', import.meta.url), 'utf8');
const WEBHOOK_SECRET = 'farm-webhook-secret-of-some-length';
// Distinctive, and of a length no other number in the output is likely to have.
const TOKEN = 'tok-Zq8vW3xK9mP2rT7yB4nL6cJ1hD5fG0';

interface Hook {
  event: string;
  signature: string;
  body: string;
  doc: { id: string; params: Record<string, unknown>; outputs: Array<{ name: string; link: string }> };
}

async function receiver(): Promise<TestServer & { hooks: Hook[] }> {
  const hooks: Hook[] = [];
  const server = await httpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ event: String(req.headers['x-hopper-event']), signature: String(req.headers['x-hopper-signature']), body, doc: JSON.parse(body) as Hook['doc'] });
      res.writeHead(200).end();
    });
  });
  return { ...server, hooks };
}

function signedWith(h: Hook, secret: string): boolean {
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(h.body).digest('hex')}`);
  const got = Buffer.from(h.signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

// A failed first try waits minutes for its retry: stop there and show why, instead of timing out.
const settled = (j: Job): boolean => ended(j) || j.state === 'retrying';

describe('recipe container-farm', { skip: docker.skip }, () => {
  let s3: TestS3;
  let rx: TestServer & { hooks: Hook[] };
  let d: TestDaemon;
  before(async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    s3 = await s3Server();
    rx = await receiver();
    d = await testDaemon({
      recipes: { 'container-farm': recipe },
      // Room for three farm jobs in the lane and the budget, so only the group can hold one back.
      config: { s3: s3.config, groups: { farm: 1 }, lanes: { slow: { concurrency: 3 } }, resources: { cpus: 3, memory: '1GiB' }, webhooks: { secret: WEBHOOK_SECRET } },
    });
  });
  after(async () => {
    await d?.cleanup();
    await rx?.close();
    await s3?.close();
  });

  it('runs the scraper with its flags, uploads the zip under farm/NAME/, posts the events to the callback, signs the webhooks, and the token reaches only the container', { timeout: 30_000 }, async () => {
    const url = 'https://example.org/wiki?a=1&b=$(id)';
    d.drop('farm.yaml', request('container-farm', { url, name: 'wiki', depth: 2, images: true, apiToken: TOKEN, callback: `${rx.url}/hooks/farm` }, { id: 'farm-1' }));
    const job = await d.job('farm-1', settled, 25_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');

    const [out, ...more] = d.ctx.store.outputs.forJob(job.id);
    assert.equal(more.length, 0);
    assert.equal(out.location, 's3');
    assert.equal(out.ref, `farm/wiki/${job.id}/wiki.zip`);
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: 'outputs' }));
    const keys = (listed.Contents ?? []).map((o) => o.Key);
    assert.deepEqual(keys, [`farm/wiki/${job.id}/wiki.zip`], 'under the prefix filled from params');
    client.destroy();

    const hooks = await waitFor('requested, started and succeeded webhooks', () => {
      const mine = rx.hooks.filter((h) => h.doc.id === job.id);
      return mine.some((h) => h.event === 'succeeded') && mine;
    }, 10_000);
    assert.deepEqual(hooks.map((h) => h.event), ['requested', 'started', 'succeeded']);
    for (const h of hooks) {
      assert.ok(signedWith(h, WEBHOOK_SECRET), `the ${h.event} webhook is signed with webhooks.secret`);
      assert.ok(!h.body.includes(TOKEN), `the ${h.event} webhook does not carry the token`);
      assert.equal(h.doc.params.apiToken, '***');
      assert.equal(h.doc.params.url, url);
    }

    // The link in the webhook is the presigned S3 GET: what a farm's caller downloads.
    const [delivered] = hooks[2].doc.outputs;
    assert.equal(delivered.name, 'wiki.zip');
    const res = await fetch(delivered.link, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    const zipFile = path.join(d.root, 'downloaded.zip');
    writeFileSync(zipFile, Buffer.from(await res.arrayBuffer()));
    const zip = await readZip(zipFile);
    const files = [...zip.keys()].filter((k) => !k.endsWith('/')).sort();
    assert.deepEqual(files, ['wiki/images/1.txt', 'wiki/level-0.html', 'wiki/level-1.html', 'wiki/level-2.html', 'wiki/metadata.txt']);
    assert.equal(zip.get('wiki/level-2.html')!.toString(), `<p>level 2 of ${url}</p>\n`, 'the url arrived as one literal argument');
    assert.equal(
      zip.get('wiki/metadata.txt')!.toString(),
      `url=${url}\ndepth=2\nimages=true\ntoken-length=${TOKEN.length}\n`,
      'the container saw the token (by its length) and each flag',
    );
    for (const [name, content] of zip) assert.ok(!name.includes(TOKEN) && !content.toString('latin1').includes(TOKEN), name);

    const log = readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
    assert.match(log, /scraping https:\/\/example\.org\/wiki/, "the container's output is in job.log");
    assert.ok(!log.includes(TOKEN), 'job.log does not hold the token');

    const view = await apiGet(d.http.address(), `/jobs/${job.id}`);
    assert.equal(view.status, 200);
    assert.ok(!view.text.includes(TOKEN), 'GET /jobs/:id does not show the token');
    assert.equal((view.json as { params: Record<string, unknown> }).params.apiToken, '***');
  });

  it('jobs of the farm group never overlap when config allows the group one slot', { timeout: 30_000 }, async () => {
    const ids = ['farm-g1', 'farm-g2', 'farm-g3'];
    for (const [i, id] of ids.entries()) d.drop(`${id}.yaml`, request('container-farm', { url: `https://example.org/${i}`, name: `site-${i}`, depth: 0, apiToken: TOKEN }, { id }));
    const reasons = new Set<string>();
    const jobs = await waitFor('three farm jobs to end', () => {
      const all = ids.map((id) => d.ctx.store.jobs.find(id));
      for (const j of all) if (j?.waitReason) reasons.add(j.waitReason);
      return all.every((j) => j && settled(j)) && (all as Job[]);
    }, 25_000);
    for (const j of jobs) assert.equal(j.state, 'succeeded', `${j.requestId}: ${j.errorMessage ?? ''}`);
    assert.ok([...reasons].some((r) => /group farm is full/.test(r)), `a job waited for the group (reasons seen: ${[...reasons].join('; ') || 'none'})`);
    // A run ends with its steps: the upload after them (the delivery stage) holds no group slot.
    const runs = jobs.map((j) => ({ id: j.requestId, start: j.startedAt!, end: d.ctx.store.jobs.attemptsOf(j.id)[0].finishedAt! })).sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) {
      assert.ok(runs[i].start >= runs[i - 1].end, `${runs[i].id} started before ${runs[i - 1].id} ended: ${JSON.stringify(runs)}`);
    }
  });
});
