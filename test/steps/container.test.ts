import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { containerRecipe, containersOf, dockerForTests, networksOf, nothingLeft as nothingLeftOn, ON_THIS_NODE, servicesOf, TEST_IMAGE } from '../helpers/docker.js';
import { request } from '../helpers/recipes.js';
import { readRecipeText } from '../../src/recipes/registry.js';
import { waitFor } from '../helpers/wait.js';
import { readZip } from '../helpers/zip.js';

const docker = await dockerForTests();

type Mode = 'local' | 'swarm';

/** Nothing of the test root left on the engine (services and networks too, where there is a swarm). */
const nothingLeft = (root: string): Promise<void> => nothingLeftOn(docker.client, root, !docker.swarmMissing);

/** This host's addresses as a container could try them: every IPv4 but loopback, and Docker's bridge gateway. */
function hostAddresses(): string[] {
  const mine = Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address));
  return [...new Set([...mine, '172.17.0.1', '127.0.0.1'])];
}

for (const mode of ['local', 'swarm'] as const satisfies readonly Mode[]) {
describe(`container step on a real Docker engine (${mode})`, { skip: mode === 'local' ? docker.skip : docker.swarmSkip }, () => {
  let d: TestDaemon;
  let server: http.Server;
  before(async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    if (mode === 'swarm') assert.equal(docker.swarmMissing, undefined, `a Swarm manager is required here: ${docker.swarmMissing}`);
    // A server on every address of this host: network none must reach none of them.
    server = http.createServer((_q, res) => res.end('reached\n'));
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    d = await testDaemon({
      recipes: {
        'container-example': readFileSync(new URL('../../recipes/container-example.yaml', import.meta.url), 'utf8'),
        fails: containerRecipe('fails', 'echo "about to fail"; echo "on stderr" >&2; exit 3'),
        limits: containerRecipe('limits', 'sleep 30', [], { resources: { cpus: 0.5, memory: '64MiB' } }, { shm: '32MiB', capAdd: ['NET_ADMIN'], env: { GREETING: 'hi {{request.id}}' } }),
        net: containerRecipe(
          'net',
          'mkdir -p out; cat /proc/net/dev > out/net.txt; for a in $2; do if echo GET / | nc -w 2 $a $1 >/dev/null 2>&1; then echo "reached $a"; else echo "unreachable $a"; fi; done >> out/net.txt',
          ['{{params.port}}', '{{params.hosts}}'],
        ),
        slow: containerRecipe('slow', 'echo started; sleep 60', [], { timeout: '1500ms' }),
        idle: containerRecipe('idle', 'echo hello; sleep 60', [], {}, { idleTimeout: '1s' }),
        cancelme: containerRecipe('cancelme', 'echo started; sleep 60'),
        chatty: containerRecipe('chatty', 'mkdir -p out; echo ok > out/ok.txt; yes "a chatty line of output" | head -c 12000000; echo chatty-end'),
        absent: containerRecipe('absent', 'true', [], {}, { image: 'hopper-test/no-such-image:1', pull: 'never' }),
        unpullable: containerRecipe('unpullable', 'true', [], {}, { image: 'hopper-test/no-such-image:1', pull: 'missing' }),
        hog: containerRecipe('hog', 'mkdir -p out; head -c 8000000 /dev/zero > out/big.bin; sleep 5', [], { resources: { disk: '1MiB' } }),
      },
      config: { lanes: { fast: { concurrency: 4 } }, ...(mode === 'swarm' ? { docker: { swarm: ON_THIS_NODE } } : {}) },
      diskCheckMs: 100,
    });
  });
  after(async () => {
    await d?.cleanup();
    server?.close();
  });

  it('delivers the files the container wrote into /work (the shipped container-example recipe)', async () => {
    d.drop('ex.yaml', request('container-example', { count: 3, message: 'hi; $(id) `uname`' }, { id: 'example' }));
    const job = await d.job('example', ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const zip = await readZip(path.join(d.root, 'outputs', job.id, `${job.id}.zip`));
    assert.deepEqual([...zip.keys()].sort(), ['file-1.txt', 'file-2.txt', 'file-3.txt']);
    assert.equal(zip.get('file-2.txt')!.toString(), 'hi; $(id) `uname`\n', 'the param arrived as one literal argument');
    const log = readFileSync(path.join(d.root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
    assert.match(log, /file-3\.txt/, "the container's output is in job.log");
    await nothingLeft(d.root);
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
    try {
      const info = await waitFor('the container', async () => (await containersOf(docker.client, d.root)).find((c) => c.Labels['hopper.job'] === job.id && c.State === 'running'), 20_000);
      const inspect = await docker.client.getContainer(info.Id).inspect();
      const hc = inspect.HostConfig;
      const workDir = path.join(d.root, 'state', 'jobs', job.id, 'work');
      assert.equal(hc.Memory, 64 * 1024 * 1024);
      assert.equal(hc.NanoCpus, 0.5e9);
      assert.equal(hc.PidsLimit, 1024);
      assert.equal(hc.Privileged, false);
      assert.equal(inspect.Config.User, `${process.getuid!()}:${process.getgid!()}`);
      assert.deepEqual(hc.CapAdd, ['NET_ADMIN']);
      assert.ok(inspect.Config.Env.includes('GREETING=hi limits'));
      assert.equal(inspect.Config.Labels['hopper.job'], job.id);
      assert.deepEqual(hc.LogConfig, { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '1' } });
      if (mode === 'local') {
        assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
        assert.equal(hc.NetworkMode, 'none');
        assert.deepEqual(hc.Binds, [`${workDir}:/work`]);
        assert.equal(hc.ShmSize, 32 * 1024 * 1024);
      } else {
        const [service] = await servicesOf(docker.client, d.root);
        const spec = service.Spec!;
        assert.equal(spec.Labels?.['hopper.job'], job.id);
        assert.deepEqual(spec.Mode, { Replicated: { Replicas: 1 } });
        assert.equal(spec.TaskTemplate?.RestartPolicy?.Condition, 'none');
        assert.deepEqual(spec.TaskTemplate?.Resources?.Reservations, { NanoCPUs: 0.5e9, MemoryBytes: 64 * 1024 * 1024 });
        // Only the work dir, and the tmpfs at /dev/shm the step asked for.
        // (Docker lists a container's mounts in no fixed order.)
        assert.deepEqual(
          inspect.Mounts.map((m) => [m.Type, m.Source, m.Destination]).sort(),
          [['bind', workDir, '/work'], ['tmpfs', '', '/dev/shm']],
        );
        const shm = (hc as { Mounts?: Array<{ Type: string; Target: string; TmpfsOptions?: { SizeBytes?: number } }> }).Mounts?.find((m) => m.Target === '/dev/shm');
        assert.equal(shm?.Type, 'tmpfs');
        assert.equal(shm?.TmpfsOptions?.SizeBytes, 32 * 1024 * 1024);
        // network none: the job's own internal overlay, on which it is alone.
        const [net] = await networksOf(docker.client, d.root);
        assert.equal(net.Internal, true);
        assert.deepEqual(Object.keys(inspect.NetworkSettings.Networks), [net.Name]);
        // Docker 27 (API 1.46) can say no-new-privileges for a service; older engines take it from daemon.json.
        const api = (await docker.client.version()).ApiVersion;
        if (Number(api.split('.')[1]) >= 46) assert.deepEqual(hc.SecurityOpt, ['no-new-privileges']);
      }
    } finally {
      // Canceled even when an assertion failed: the tests after it need the lane and the engine.
      d.drop('cancel-limits.yaml', { kind: 'cancel', job: 'limits' });
    }
    assert.equal((await d.job('limits', ended, 20_000)).state, 'canceled');
    await nothingLeft(d.root);
  });

  it('network none reaches nothing: no host address, no loopback', async () => {
    const hosts = hostAddresses();
    d.drop('net.yaml', request('net', { port: String((server.address() as AddressInfo).port), hosts: hosts.join(' ') }, { id: 'net' }));
    const job = await d.job('net', ended, 60_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const text = readFileSync(path.join(d.root, 'outputs', job.id, 'net.txt'), 'utf8');
    const interfaces = text.split('\n').filter((l) => /^\s*\w+:/.test(l)).map((l) => l.trim().split(':')[0]);
    // Swarm has no "none" network: the job's own internal overlay, with no way out, stands for it.
    assert.deepEqual(interfaces, mode === 'local' ? ['lo'] : ['lo', 'eth0']);
    for (const a of hosts) assert.match(text, new RegExp(`^unreachable ${a.replace(/\./g, '\\.')}$`, 'm'), `${a} was reached:\n${text}`);
    assert.doesNotMatch(text, /^reached/m);
  });

  it('a job timeout kills the container and leaves none behind', async () => {
    const t0 = Date.now();
    d.drop('slow.yaml', request('slow', {}, { id: 'slow' }));
    const job = await d.job('slow', ended, 30_000);
    assert.equal(job.errorCode, 'E_TIMEOUT');
    assert.ok(Date.now() - t0 < 15_000);
    await nothingLeft(d.root);
  });

  it('idleTimeout stops a container that prints nothing, and says so', async () => {
    d.drop('idle.yaml', request('idle', {}, { id: 'idle' }));
    const job = await d.job('idle', ended, 30_000);
    assert.equal(job.errorCode, 'E_IDLE');
    assert.match(job.errorMessage!, /printed nothing for 1s/);
    await nothingLeft(d.root);
  });

  it('a cancel kills the running container and removes it', async () => {
    d.drop('cancelme.yaml', request('cancelme', {}, { id: 'cancelme' }));
    await d.job('cancelme', (j) => j.state === 'running', 30_000);
    await waitFor('the container to run', async () => (await containersOf(docker.client, d.root)).length > 0, 20_000);
    d.drop('cancel.yaml', { kind: 'cancel', job: 'cancelme' });
    const job = await d.job('cancelme', ended, 20_000);
    assert.equal(job.state, 'canceled');
    await nothingLeft(d.root);
  });

  it('caps a chatty container in job.log, keeping the head and the tail', async () => {
    d.drop('chatty.yaml', request('chatty', {}, { id: 'chatty' }));
    const job = await d.job('chatty', ended, 60_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const file = path.join(d.root, 'state', 'jobs', job.id, 'job.log');
    assert.ok(statSync(file).size < 6 * 1024 * 1024, `job.log is ${statSync(file).size} bytes`);
    const text = readFileSync(file, 'utf8');
    // Swarm's log stream drops lines under such a flood (it is best effort): the head and the end are there.
    if (mode === 'local') assert.match(text, /bytes of output skipped/);
    assert.match(text, /^chatty-end$/m, `the last line of output is kept (job.log of ${text.length} bytes ends: ${text.slice(-200)})`);
    assert.match(text, /container: done/, 'the end of the job is still there');
  });

  it('a missing image with pull: never fails naming the image; pull: missing fails naming it too (no registry)', { timeout: 120_000 }, async () => {
    d.drop('absent.yaml', request('absent', {}, { id: 'absent' }));
    const absent = await d.job('absent', ended, 60_000);
    assert.equal(absent.errorCode, 'E_IMAGE_MISSING');
    assert.match(absent.errorMessage!, /hopper-test\/no-such-image:1/);
    d.drop('unpullable.yaml', request('unpullable', {}, { id: 'unpullable' }));
    const unpullable = await d.job('unpullable', ended, 60_000);
    // On Swarm the node pulls: it tries the registry, then its own images; either way the image is missing.
    assert.equal(unpullable.errorCode, mode === 'local' ? 'E_IMAGE_PULL' : 'E_IMAGE_MISSING');
    assert.match(unpullable.errorMessage!, mode === 'local' ? /could not pull image hopper-test\/no-such-image:1/ : /hopper-test\/no-such-image:1/);
    await nothingLeft(d.root);
  });

  it('a job that writes past its disk reservation is stopped with that reason', async () => {
    d.drop('hog.yaml', request('hog', {}, { id: 'hog' }));
    const job = await d.job('hog', ended, 30_000);
    assert.equal(job.errorCode, 'E_DISK');
    assert.match(job.errorMessage!, /more than its disk reservation \(1\.0 MiB\)/);
    await nothingLeft(d.root);
  });

  it('uses the local test image', async () => {
    assert.ok(await docker.client.getImage(TEST_IMAGE).inspect());
  });
});
}

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
