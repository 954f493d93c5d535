import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { containerRecipe, containersOf, dockerForTests, TEST_IMAGE } from '../helpers/docker.js';
import { request } from '../helpers/recipes.js';
import { readRecipeText } from '../../src/recipes/registry.js';
import { waitFor } from '../helpers/wait.js';
import { readZip } from '../helpers/zip.js';

const docker = await dockerForTests();

describe('container step on a real Docker engine', { skip: docker.skip }, () => {
  let d: TestDaemon;
  before(async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    d = await testDaemon({
      recipes: {
        'container-example': readFileSync(new URL('../../recipes/container-example.yaml', import.meta.url), 'utf8'),
        fails: containerRecipe('fails', 'echo "about to fail"; echo "on stderr" >&2; exit 3'),
        limits: containerRecipe('limits', 'sleep 30', [], { resources: { cpus: 0.5, memory: '64MiB' } }, { shm: '32MiB', capAdd: ['NET_ADMIN'], env: { GREETING: 'hi {{request.id}}' } }),
        net: containerRecipe('net', 'mkdir -p out; cat /proc/net/dev > out/net.txt; (wget -q -T 2 -O - http://127.0.0.1:1 || echo unreachable) >> out/net.txt 2>&1'),
        slow: containerRecipe('slow', 'echo started; sleep 60', [], { timeout: '1500ms' }),
        idle: containerRecipe('idle', 'echo hello; sleep 60', [], {}, { idleTimeout: '1s' }),
        cancelme: containerRecipe('cancelme', 'echo started; sleep 60'),
        chatty: containerRecipe('chatty', 'mkdir -p out; echo ok > out/ok.txt; yes "a chatty line of output" | head -c 12000000'),
        absent: containerRecipe('absent', 'true', [], {}, { image: 'hopper-test/no-such-image:1', pull: 'never' }),
        unpullable: containerRecipe('unpullable', 'true', [], {}, { image: 'hopper-test/no-such-image:1', pull: 'missing' }),
        hog: containerRecipe('hog', 'mkdir -p out; head -c 8000000 /dev/zero > out/big.bin; sleep 5', [], { resources: { disk: '1MiB' } }),
      },
      config: { lanes: { fast: { concurrency: 4 } } },
      diskCheckMs: 100,
    });
  });
  after(() => d?.cleanup());

  it('delivers the files the container wrote into /work (the shipped container-example recipe)', async () => {
    d.drop('ex.yaml', request('container-example', { count: 3, message: 'hi; $(id) `uname`' }, { id: 'example' }));
    const job = await d.job('example', ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const zip = await readZip(path.join(d.root, 'outputs', job.id, `${job.id}.zip`));
    assert.deepEqual([...zip.keys()].sort(), ['file-1.txt', 'file-2.txt', 'file-3.txt']);
    assert.equal(zip.get('file-2.txt')!.toString(), 'hi; $(id) `uname`\n', 'the param arrived as one literal argument');
    const log = readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
    assert.match(log, /file-3\.txt/, "the container's output is in job.log");
    assert.deepEqual(await containersOf(docker.client, d.root), [], 'the container was removed');
  });

  it('a non-zero exit fails the job with the exit code and the last lines of output', async () => {
    d.drop('fails.yaml', request('fails', {}, { id: 'fails' }));
    const job = await d.job('fails', ended, 30_000);
    assert.equal(job.state, 'failed');
    assert.equal(job.errorCode, 'E_CONTAINER_EXIT');
    assert.match(job.errorMessage!, /exited with code 3/);
    assert.match(job.errorMessage!, /about to fail/);
    assert.match(job.errorMessage!, /on stderr/);
  });

  it('applies the limits: memory, cpus, pids, no-new-privileges, no network, only the work dir mounted', async () => {
    d.drop('limits.yaml', request('limits', {}, { id: 'limits' }));
    const job = await d.job('limits', (j) => j.state === 'running', 30_000);
    const info = await waitFor('the container', async () => (await containersOf(docker.client, d.root)).find((c) => c.Labels['hopper.job'] === job.id && c.State === 'running'), 20_000);
    const inspect = await docker.client.getContainer(info.Id).inspect();
    const hc = inspect.HostConfig;
    assert.equal(hc.Memory, 64 * 1024 * 1024);
    assert.equal(hc.NanoCpus, 0.5e9);
    assert.ok((hc.PidsLimit ?? 0) > 0);
    assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
    assert.equal(hc.Privileged, false);
    assert.equal(hc.NetworkMode, 'none');
    assert.deepEqual(hc.Binds, [`${path.join(d.root, 'state', 'jobs', job.id, 'work')}:/work`]);
    assert.equal(inspect.Config.User, `${process.getuid!()}:${process.getgid!()}`);
    assert.equal(hc.ShmSize, 32 * 1024 * 1024);
    assert.deepEqual(hc.CapAdd, ['NET_ADMIN']);
    assert.ok(inspect.Config.Env.includes('GREETING=hi limits'));
    assert.equal(inspect.Config.Labels['hopper.job'], job.id);
    d.drop('cancel-limits.yaml', { kind: 'cancel', job: 'limits' });
    assert.equal((await d.job('limits', ended, 20_000)).state, 'canceled');
  });

  it('network none really has no network', async () => {
    d.drop('net.yaml', request('net', {}, { id: 'net' }));
    const job = await d.job('net', ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const text = readFileSync(path.join(d.root, 'outputs', job.id, 'net.txt'), 'utf8');
    const interfaces = text.split('\n').filter((l) => /^\s*\w+:/.test(l)).map((l) => l.trim().split(':')[0]);
    assert.deepEqual(interfaces, ['lo']);
    assert.match(text, /unreachable/);
  });

  it('a job timeout kills the container and leaves none behind', async () => {
    const t0 = Date.now();
    d.drop('slow.yaml', request('slow', {}, { id: 'slow' }));
    const job = await d.job('slow', ended, 30_000);
    assert.equal(job.errorCode, 'E_TIMEOUT');
    assert.ok(Date.now() - t0 < 15_000);
    assert.deepEqual(await containersOf(docker.client, d.root), []);
  });

  it('idleTimeout stops a container that prints nothing, and says so', async () => {
    d.drop('idle.yaml', request('idle', {}, { id: 'idle' }));
    const job = await d.job('idle', ended, 30_000);
    assert.equal(job.errorCode, 'E_IDLE');
    assert.match(job.errorMessage!, /printed nothing for 1s/);
    assert.deepEqual(await containersOf(docker.client, d.root), []);
  });

  it('a cancel kills the running container and removes it', async () => {
    d.drop('cancelme.yaml', request('cancelme', {}, { id: 'cancelme' }));
    await d.job('cancelme', (j) => j.state === 'running', 30_000);
    await waitFor('the container to run', async () => (await containersOf(docker.client, d.root)).length > 0, 20_000);
    d.drop('cancel.yaml', { kind: 'cancel', job: 'cancelme' });
    const job = await d.job('cancelme', ended, 20_000);
    assert.equal(job.state, 'canceled');
    assert.deepEqual(await containersOf(docker.client, d.root), []);
  });

  it('caps a chatty container in job.log, keeping the head and the tail', async () => {
    d.drop('chatty.yaml', request('chatty', {}, { id: 'chatty' }));
    const job = await d.job('chatty', ended, 60_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const file = path.join(d.root, 'state', 'jobs', job.id, 'job.log');
    assert.ok(statSync(file).size < 6 * 1024 * 1024, `job.log is ${statSync(file).size} bytes`);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /bytes of output skipped/);
    assert.match(text, /container: done/, 'the end of the job is still there');
  });

  it('a missing image with pull: never fails naming the image; pull: missing fails naming it too (no registry)', async () => {
    d.drop('absent.yaml', request('absent', {}, { id: 'absent' }));
    const absent = await d.job('absent', ended, 30_000);
    assert.equal(absent.errorCode, 'E_IMAGE_MISSING');
    assert.match(absent.errorMessage!, /hopper-test\/no-such-image:1/);
    d.drop('unpullable.yaml', request('unpullable', {}, { id: 'unpullable' }));
    const unpullable = await d.job('unpullable', ended, 60_000);
    assert.equal(unpullable.errorCode, 'E_IMAGE_PULL');
    assert.match(unpullable.errorMessage!, /could not pull image hopper-test\/no-such-image:1/);
  });

  it('a job that writes past its disk reservation is stopped with that reason', async () => {
    d.drop('hog.yaml', request('hog', {}, { id: 'hog' }));
    const job = await d.job('hog', ended, 30_000);
    assert.equal(job.errorCode, 'E_DISK');
    assert.match(job.errorMessage!, /more than its disk reservation \(1\.0 MiB\)/);
    assert.deepEqual(await containersOf(docker.client, d.root), []);
  });

  it('uses the local test image', async () => {
    assert.ok(await docker.client.getImage(TEST_IMAGE).inspect());
  });
});

describe('container step: what a recipe cannot ask for', () => {
  const recipeWith = (container: Record<string, unknown>): string =>
    JSON.stringify({ kind: 'recipe', name: 'bad', steps: [{ container: { image: TEST_IMAGE, ...container } }] });

  for (const [what, container, message] of [
    ['privileged mode', { privileged: true }, /privileged: unknown key/],
    ['all capabilities', { capAdd: ['ALL'] }, /capAdd\[0\]: must be one Linux capability/],
    ['the host network', { network: 'host' }, /network: must be one of: "none", "bridge"/],
    ['extra mounts', { volumes: ['/:/host'] }, /volumes: unknown key/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(() => readRecipeText(recipeWith(container)), (err: Error) => message.test(err.message));
    });
  }
});
