import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { hopper, startCli } from '../helpers/cli.js';
import { drop, ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { containerRecipe, containersOf, dockerForTests, nothingLeft, ON_THIS_NODE, orphanRoot, servicesOf } from '../helpers/docker.js';
import { startSecondEngine, type SecondEngine } from '../helpers/engine2.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

// Container steps on Docker Swarm: this machine's engine made a one-node swarm
// (.ci/run: docker swarm init --advertise-addr 127.0.0.1), and a second real
// engine started by the tests, as a stranger to the swarm and as a worker.

const docker = await dockerForTests();

const nothingOnEngine = (root: string): Promise<void> => nothingLeft(docker.client, root, true);

describe('Swarm: admission and what /healthz and /status say', { skip: docker.swarmSkip }, () => {
  let d: TestDaemon;
  before(async () => {
    assert.equal(docker.swarmMissing, undefined, `a Swarm manager is required here: ${docker.swarmMissing}`);
    d = await testDaemon({
      recipes: {
        huge: containerRecipe('huge', 'echo never', [], { resources: { memory: '1000TiB' } }),
        small: containerRecipe('small', 'mkdir -p out; echo small > out/x', [], { resources: { memory: '16MiB', cpus: 0.1 } }),
        secretive: {
          ...containerRecipe('secretive', 'mkdir -p out; echo "token of ${#TOKEN} characters" > out/x; echo "$1" | wc -c', ['{{params.token}}']),
          params: { type: 'object', properties: { token: { type: 'string', writeOnly: true } } },
        },
      },
      // A local budget far below what the jobs reserve: on Swarm it holds nothing back.
      config: { docker: { swarm: ON_THIS_NODE }, resources: { cpus: 0.01, memory: '1MiB' } },
      dockerPingMs: 200,
    });
  });
  after(() => d?.cleanup());

  it('a reservation no node can meet waits, queued, with its reason in /jobs/:id and hopper show', async () => {
    d.drop('huge.yaml', request('huge', {}, { id: 'huge' }));
    const job = await d.job('huge', (j) => j.waitReason !== null, 10_000);
    assert.equal(job.state, 'queued');
    assert.match(job.waitReason!, /^waiting for a Swarm node: no node has 1000\.0 TiB in all \(the largest, .+, has \d+ cpus and [\d.]+ GiB\)$/);
    const view = (await (await fetch(`${d.http.address()}/jobs/${job.id}`)).json()) as { waiting: { reason: string } };
    assert.equal(view.waiting.reason, job.waitReason);
    const show = await hopper(['show', job.id, '--root', d.root]);
    assert.match(show.stdout, /no node has 1000\.0 TiB in all/);
    assert.deepEqual(await servicesOf(docker.client, d.root), [], 'no service was made for it');
    // Meanwhile a job that fits runs, beside it; this host's own budget (0.01 cpus) does not hold it back.
    d.drop('small.yaml', request('small', {}, { id: 'small' }));
    assert.equal((await d.job('small', ended, 60_000)).state, 'succeeded');
    d.drop('cancel-huge.yaml', { kind: 'cancel', job: 'huge' });
    assert.equal((await d.job('huge', ended, 10_000)).state, 'canceled');
    await nothingOnEngine(d.root);
  });

  it('/healthz, /status and /metrics say containers run on Swarm, and how many nodes are ready', async () => {
    const health = (await (await fetch(`${d.http.address()}/healthz`)).json()) as { docker: string; containers: { runOn: string; nodes: number; nodesReady: number } };
    assert.equal(health.docker, 'up');
    assert.equal(health.containers.runOn, 'swarm');
    assert.ok(health.containers.nodes >= 1 && health.containers.nodesReady >= 1, JSON.stringify(health));
    const status = (await (await fetch(`${d.http.address()}/status`)).json()) as { containers: unknown };
    assert.deepEqual(status.containers, health.containers);
    const metrics = await (await fetch(`${d.http.address()}/metrics`)).text();
    assert.match(metrics, /^hopper_docker_up 1$/m);
    assert.match(metrics, new RegExp(`^hopper_swarm_nodes\\{ready="true"\\} ${health.containers.nodesReady}$`, 'm'));
  });

  it('a secret param reaches the container, but not job.log, the service name, labels or args as logged', async () => {
    const token = 'tok-3f9a1c-very-secret';
    d.drop('secretive.yaml', request('secretive', { token }, { id: 'secretive' }));
    const running = await d.job('secretive', (j) => j.state !== 'queued', 30_000);
    const services = await servicesOf(docker.client, d.root).catch(() => []);
    for (const s of services) {
      assert.doesNotMatch(JSON.stringify({ name: s.Spec?.Name, labels: s.Spec?.Labels, containerLabels: s.Spec?.TaskTemplate && 'ContainerSpec' in s.Spec.TaskTemplate ? s.Spec.TaskTemplate.ContainerSpec?.Labels : undefined }), new RegExp(token));
    }
    const job = await d.job('secretive', ended, 60_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    assert.equal(readFileSync(path.join(d.root, 'outputs', job.id, 'x'), 'utf8'), `token of 0 characters\n`);
    const log = readFileSync(path.join(d.root, 'state', 'jobs', running.id, 'job.log'), 'utf8');
    assert.doesNotMatch(log, new RegExp(token));
    assert.match(log, /\[secret\]|\*\*\*/, 'the command line in job.log shows the secret masked');
    assert.match(log, /^23$/m, 'the container got the whole token as one argument');
  });
});

describe('Swarm: a hopper killed mid-job', { skip: docker.swarmSkip }, () => {
  it('after kill -9 the restart removes the orphaned service and its network, then runs the job again', { timeout: 120_000 }, async () => {
    assert.equal(docker.swarmMissing, undefined, `a Swarm manager is required here: ${docker.swarmMissing}`);
    // The first run hangs; the next one (after the kill, the same attempt) finishes at once.
    const { root, cleanup, state } = orphanRoot(stringify({ http: { port: 0 }, docker: { swarm: ON_THIS_NODE } }));
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'orphan.yaml', request('orphan', {}, { id: 'orphan' }));
      await waitFor('the task to run', async () => (await containersOf(docker.client, root)).some((c) => c.State === 'running'), 30_000, 100);
      const [left] = await servicesOf(docker.client, root);
      d.child.kill('SIGKILL');
      await d.exited;
      assert.equal((await servicesOf(docker.client, root)).length, 1, 'the service outlived hopper');
      d = await startCli(root);
      try {
        await waitFor('the job to succeed', () => state() === 'succeeded', 60_000, 100);
        assert.ok(!(await servicesOf(docker.client, root)).some((s) => s.ID === left.ID), 'the orphan was removed');
        assert.match(d.output(), /removed a Swarm service left by a hopper that stopped unexpectedly/);
        // Docker 20.10 here: the admin is told where no-new-privileges must come from.
        const api = (await docker.client.version()).ApiVersion;
        if (Number(api.split('.')[1]) < 46) assert.match(d.output(), /cannot set no-new-privileges on Swarm services \(Docker 27 can\)/);
        await nothingOnEngine(root);
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      for (const s of await servicesOf(docker.client, root)) await docker.client.getService(s.ID).remove().catch(() => {});
      cleanup();
    }
  });
});

describe('Swarm: a second engine', { skip: docker.swarmSkip }, () => {
  let second: SecondEngine | undefined;
  const hasDocker0 = (): boolean => {
    try {
      execFileSync('ip', ['link', 'show', 'docker0'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  const docker0Before = hasDocker0();
  before(async () => {
    assert.equal(docker.swarmMissing, undefined, `a Swarm manager is required here: ${docker.swarmMissing}`);
    second = await startSecondEngine();
  });
  after(async () => {
    await second?.stop();
    // The first engine's bridge must outlive the second engine (the later tests' containers use it).
    assert.equal(hasDocker0(), docker0Before, 'docker0 is still there');
  });

  it('hopper start refuses docker.swarm on an engine that is no swarm manager, with exit 2', async () => {
    const { root, cleanup } = tempRoot();
    try {
      writeFileSync(path.join(root, 'hopper.yaml'), stringify({ http: { port: 0 }, docker: { socketPath: second!.socket, swarm: {} } }));
      const r = await hopper(['start', '--root', root]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /docker\.swarm: the Docker engine at .*docker\.sock is not part of a swarm \(Swarm: inactive\); run docker swarm init there, or remove docker\.swarm/);
    } finally {
      cleanup();
    }
  });

  it('a job constrained to a worker node runs there, its work dir reached by a bind of the same path', { timeout: 120_000 }, async () => {
    const mark = `w${process.pid}`;
    await second!.joinAsWorker(docker.client, ['hopper-test', mark]);
    const d = await testDaemon({
      recipes: { there: containerRecipe('there', 'mkdir -p out; echo from-the-worker > out/x; sleep 2', [], {}, { network: 'bridge' }) },
      config: { docker: { swarm: { constraints: [`node.labels.hopper-test == ${mark}`] } } },
    });
    try {
      d.drop('there.yaml', request('there', {}, { id: 'there' }));
      const running = await d.job('there', (j) => j.state === 'running', 30_000);
      // The task's container is on the second engine, not on this one.
      await waitFor('the container on the worker', async () => (await containersOf(second!.client, d.root)).some((c) => c.Labels['hopper.job'] === running.id), 30_000, 100);
      assert.deepEqual((await containersOf(docker.client, d.root)).filter((c) => c.Labels['hopper.job'] === running.id), []);
      const job = await d.job('there', ended, 60_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      assert.equal(readFileSync(path.join(d.root, 'outputs', job.id, 'x'), 'utf8'), 'from-the-worker\n');
      await nothingOnEngine(d.root);
    } finally {
      await d.cleanup();
    }
  });
});

describe('Swarm: a node lost mid-run', { skip: docker.swarmSkip }, () => {
  it("fails that attempt with E_SWARM_NODE and Swarm's reason; the recipe's retries run it again on another node", { timeout: 180_000 }, async () => {
    assert.equal(docker.swarmMissing, undefined, `a Swarm manager is required here: ${docker.swarmMissing}`);
    const second = await startSecondEngine();
    const mark = `lost${process.pid}`;
    const manager = docker.client.getNode(((await docker.client.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID);
    const label = async (add: boolean): Promise<void> => {
      const n = (await manager.inspect()) as { Version: { Index: number }; Spec: { Labels?: Record<string, string> } };
      const labels = { ...n.Spec.Labels };
      if (add) labels['hopper-test'] = mark;
      else delete labels['hopper-test'];
      await manager.update({ version: n.Version.Index, ...n.Spec, Labels: labels });
    };
    let d: TestDaemon | undefined;
    try {
      await second.joinAsWorker(docker.client, ['hopper-test', mark]);
      d = await testDaemon({
        recipes: {
          lost: containerRecipe('lost', '[ "$1" = 1 ] && sleep 120; mkdir -p out; echo again > out/x', ['{{job.attempt}}'], { retries: { attempts: 2, delay: '1s' } }, { network: 'bridge' }),
        },
        config: { docker: { swarm: { constraints: [`node.labels.hopper-test == ${mark}`] } } },
      });
      d.drop('lost.yaml', request('lost', {}, { id: 'lost' }));
      const running = await d.job('lost', (j) => j.state === 'running', 30_000);
      await waitFor('the container on the worker', async () => (await containersOf(second.client, d!.root)).some((c) => c.State === 'running'), 30_000, 100);
      // The worker's engine dies; its container lives on, cut off (a node lost, as Swarm sees it).
      await second.kill9();
      // The only other node may now take the retry.
      await label(true);
      const job = await d.job('lost', ended, 120_000);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      const view = (await (await fetch(`${d.http.address()}/jobs/${running.id}`)).json()) as { attempts: Array<{ outcome: string; error: { code: string; message: string } | null }> };
      assert.equal(view.attempts.length, 2);
      assert.equal(view.attempts[0].error?.code, 'E_SWARM_NODE');
      assert.match(view.attempts[0].error!.message, /the node running the container \(.+, down: heartbeat failure\) was lost/);
      assert.equal(view.attempts[1].outcome, 'succeeded');
      assert.equal(readFileSync(path.join(d.root, 'outputs', job.id, 'x'), 'utf8'), 'again\n');
    } finally {
      await label(false).catch(() => {});
      await d?.cleanup();
      await second.stop();
    }
  });
});
