import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Step } from '../../src/recipes/recipe.js';
import { LogStamps, lostNode, serviceSpec, taskOutcome, workMount } from '../../src/steps/swarm.js';
import { cleanupStepHarnesses, stepHarness } from '../helpers/steps.js';

// What a container step asks of Swarm, without a swarm: the service spec, and
// how the task's reported state is read. (test/steps/container.test.ts and
// test/docker/cluster.test.ts run them on a real one.)

type ContainerStep = Extract<Step, { kind: 'container' }>;

const step = (extra: Partial<ContainerStep> = {}): ContainerStep => ({
  kind: 'container',
  image: 'example/{{params.flavour}}:1',
  command: ['scrape', '--url', '{{params.url}}'],
  entrypoint: undefined,
  env: { TOKEN: '{{params.token}}' },
  network: 'none',
  capAdd: [],
  shmBytes: undefined,
  user: undefined,
  pull: 'missing',
  idleTimeoutMs: undefined,
  timeoutMs: undefined,
  ...extra,
});

function env() {
  const h = stepHarness({ scope: { params: { flavour: 'mint', url: 'https://x.example/a b', token: 's3cret' } } as never, secrets: ['s3cret'] });
  h.env.resources = { cpus: 1.5, memory: 4 * 1024 ** 3 };
  return h.env;
}

const plan = { name: 'hopper-j1-1-abc', image: 'example/mint:1', swarm: { workDir: undefined, constraints: ['node.labels.hopper == true'] }, network: 'net1', noNewPrivileges: false };

describe('swarm service spec', () => {
  afterEach(cleanupStepHarnesses);

  it('serviceSpec - one replica never restarted, resources as reservations and limits, labels, placement, capped logs', () => {
    const e = env();
    const spec = serviceSpec(step(), e, plan);
    assert.equal(spec.Name, 'hopper-j1-1-abc');
    assert.deepEqual(spec.Mode, { Replicated: { Replicas: 1 } });
    const t = spec.TaskTemplate as Record<string, any>;
    assert.deepEqual(t.RestartPolicy, { Condition: 'none', MaxAttempts: 0 });
    assert.deepEqual(t.Resources, { Limits: { NanoCPUs: 1.5e9, MemoryBytes: 4 * 1024 ** 3, Pids: 1024 }, Reservations: { NanoCPUs: 1.5e9, MemoryBytes: 4 * 1024 ** 3 } });
    assert.deepEqual(t.Placement, { Constraints: ['node.labels.hopper == true'] });
    assert.deepEqual(t.Networks, [{ Target: 'net1' }]);
    assert.deepEqual(t.LogDriver, { Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '1' } });
    assert.deepEqual(spec.Labels, { 'hopper.job': e.job.id, 'hopper.root': e.job.root, 'hopper.attempt': String(e.job.attempt) });
    const c = t.ContainerSpec;
    assert.equal(c.Image, 'example/mint:1');
    assert.deepEqual(c.Args, ['scrape', '--url', 'https://x.example/a b'], 'a param fills one whole argument');
    assert.equal(c.Command, undefined, "no entrypoint given: the image's own");
    assert.deepEqual(c.Env, ['TOKEN=s3cret']);
    assert.equal(c.Dir, '/work');
    assert.equal(c.User, `${process.getuid!()}:${process.getgid!()}`);
    assert.deepEqual(c.Mounts, [{ Type: 'bind', Source: e.workDir, Target: '/work' }], 'the work dir and nothing else');
    assert.equal('Privileges' in c, false);
    assert.equal(JSON.stringify(spec).includes('Privileged'), false);
  });

  it('serviceSpec - network bridge is the node default; shm a tmpfs at /dev/shm; capAdd; no-new-privileges where the API has it', () => {
    const spec = serviceSpec(step({ network: 'bridge', shmBytes: 1 << 30, capAdd: ['SYS_ADMIN'], entrypoint: ['/bin/sh'] }), env(), { ...plan, network: undefined, noNewPrivileges: true });
    const t = spec.TaskTemplate as Record<string, any>;
    assert.equal(t.Networks, undefined);
    assert.deepEqual(t.ContainerSpec.Mounts[1], { Type: 'tmpfs', Source: '', Target: '/dev/shm', TmpfsOptions: { SizeBytes: 1 << 30, Mode: 0o1777 } });
    assert.deepEqual(t.ContainerSpec.CapabilityAdd, ['SYS_ADMIN']);
    assert.deepEqual(t.ContainerSpec.Command, ['/bin/sh']);
    assert.deepEqual(t.ContainerSpec.Privileges, { NoNewPrivileges: true });
  });

  it("workMount - with an nfs:// workDir the node mounts the job's own folder of the export through Docker's local driver", () => {
    const e = env();
    assert.deepEqual(workMount(e, { workDir: { server: '10.0.0.5', path: '/srv/hopper/state/jobs/' }, constraints: [] }), {
      Type: 'volume',
      Source: '',
      Target: '/work',
      VolumeOptions: { NoCopy: true, Labels: {}, DriverConfig: { Name: 'local', Options: { type: 'nfs', o: 'addr=10.0.0.5,rw,nfsvers=4,hard', device: `:/srv/hopper/state/jobs/${e.job.id}/work` } } },
    });
  });

  it('taskOutcome - on its way, running, waiting for a node, exited, missing image, and lost', () => {
    assert.deepEqual(taskOutcome(undefined, 'i'), { done: false, running: false, waiting: undefined });
    assert.deepEqual(taskOutcome({ ID: 't', Status: { State: 'pending', Err: 'no suitable node (insufficient resources on 3 nodes)' } }, 'i'), {
      done: false,
      running: false,
      waiting: 'no suitable node (insufficient resources on 3 nodes)',
    });
    assert.deepEqual(taskOutcome({ ID: 't', Status: { State: 'running' } }, 'i'), { done: false, running: true });
    assert.deepEqual(taskOutcome({ ID: 't', Status: { State: 'complete', ContainerStatus: { ExitCode: 0 } } }, 'i'), { done: true, exitCode: 0 });
    assert.deepEqual(taskOutcome({ ID: 't', Status: { State: 'failed', Err: 'task: non-zero exit (3)', ContainerStatus: { ExitCode: 3 } } }, 'i'), { done: true, exitCode: 3 });
    const missing = taskOutcome({ ID: 't', Status: { State: 'rejected', Err: 'No such image: example/x:1' } }, 'example/x:1');
    assert.equal('error' in missing && missing.error.code, 'E_IMAGE_MISSING');
    const lost = taskOutcome({ ID: 't', Status: { State: 'orphaned', Err: 'node is down' } }, 'i');
    assert.equal('error' in lost && lost.error.code, 'E_SWARM_TASK');
    assert.match('error' in lost ? lost.error.message : '', /Swarm ended the container's task \(orphaned\): node is down/);
  });

  it('lostNode - a node down or disconnected has lost its task; ready or unknown has not', () => {
    assert.equal(lostNode({ ID: 'n1', Description: { Hostname: 'node-b' }, Status: { State: 'down', Message: 'heartbeat failure' } }), 'node-b, down: heartbeat failure');
    assert.equal(lostNode({ ID: 'n1', Status: { State: 'disconnected' } }), 'n1, disconnected');
    assert.equal(lostNode({ ID: 'n1', Status: { State: 'ready' } }), undefined);
    assert.equal(lostNode({ ID: 'n1', Status: { State: 'unknown' } }), undefined);
  });

  it('LogStamps - the live stream keeps every line, out of time order too; the read after the end adds only newer ones', () => {
    const stamps = new LogStamps();
    const text = (b: Buffer | null): string | null => (b === null ? null : b.toString());
    const frame = (ts: string, line: string): Buffer => Buffer.from(`${ts} ${line}\n`);
    assert.equal(text(stamps.live(frame('2026-11-29T06:14:52.200Z', 'out 2'))), 'out 2\n');
    // stderr is stamped apart: an earlier line may come later, and is kept.
    assert.equal(text(stamps.live(frame('2026-11-29T06:14:52.1Z', 'err 1'))), 'err 1\n');
    assert.equal(stamps.newest, '2026-11-29T06:14:52.200Z');
    assert.equal(stamps.after(frame('2026-11-29T06:14:52.200000000Z', 'out 2')), null, 'seen already (the same time, written longer)');
    assert.equal(stamps.after(frame('2026-11-29T06:14:52.150Z', 'err 1')), null);
    assert.equal(text(stamps.after(frame('2026-11-29T06:14:52.200000001Z', 'out 3'))), 'out 3\n');
    assert.equal(text(stamps.live(Buffer.from('no stamp here\n'))), 'no stamp here\n');
  });
});
