import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admissionBlocker, concurrencyBlocker, dockerBlocker, groupBlocker, joinBlocker, rateBlocker, swarmBlocker, timeBlocker, type AdmissionRecipe, type Snapshot } from '../../src/queue/admission.js';
import type { SwarmNode, SwarmView } from '../../src/docker/swarm.js';
import type { Job } from '../../src/store/jobs.js';

// Admission without a daemon: each blocker alone, then in their order.

const NOW = Date.parse('2026-11-28T12:00:00Z');

function recipe(extra: Partial<AdmissionRecipe> = {}): AdmissionRecipe {
  return { name: 'r', steps: [], resources: {}, timeoutMs: 60_000, retries: { attempts: 3, backoff: 'fixed', delayMs: 1000 }, cacheMs: undefined, concurrency: undefined, group: undefined, rateLimit: undefined, ...extra };
}

function job(extra: Partial<Job> = {}): Job {
  return { notBefore: null, state: 'queued', nextAttemptAt: null, attempts: 0, cacheKey: null, ...extra } as Job;
}

const container = { kind: 'container' } as AdmissionRecipe['steps'][number];

function snapshot(extra: Partial<Snapshot> = {}): Snapshot {
  return {
    now: NOW,
    docker: { up: true, socketPath: '/var/run/docker.sock' },
    runningByRecipe: new Map(),
    runningByGroup: new Map(),
    groups: {},
    starts: new Map(),
    sameRequestOnItsWay: () => undefined,
    ...extra,
  };
}

describe('admission', () => {
  it('timeBlocker - a job not before a later time waits until then', () => {
    assert.deepEqual(timeBlocker(job({ notBefore: NOW + 5000 }), recipe(), NOW), { reason: 'not before 2026-11-28T12:00:05Z', until: NOW + 5000 });
    assert.equal(timeBlocker(job({ notBefore: NOW }), recipe(), NOW), null);
  });

  it('timeBlocker - a retrying job waits for its retry time, and says which try it is', () => {
    const b = timeBlocker(job({ state: 'retrying', attempts: 1, nextAttemptAt: NOW + 1000 }), recipe(), NOW);
    assert.deepEqual(b, { reason: 'retry 2 of 3 at 2026-11-28T12:00:01Z', until: NOW + 1000 });
    assert.equal(timeBlocker(job({ state: 'retrying', attempts: 1, nextAttemptAt: NOW - 1 }), recipe(), NOW), null);
  });

  it('dockerBlocker - only a container recipe waits for an engine that does not answer, until its timeout', () => {
    const down = { up: false, socketPath: '/run/docker.sock' };
    assert.equal(dockerBlocker(recipe(), down, NOW), null);
    assert.equal(dockerBlocker(recipe({ steps: [container] }), { ...down, up: true }, NOW), null);
    assert.deepEqual(dockerBlocker(recipe({ steps: [container] }), down, NOW - 10), {
      reason: 'waiting for the Docker engine (it does not answer at /run/docker.sock)',
      until: NOW - 10 + 60_000,
      docker: true,
    });
  });

  it('joinBlocker - a cached recipe\'s queued job joins the same request on its way; others do not', () => {
    const cached = recipe({ cacheMs: 3_600_000 });
    assert.deepEqual(joinBlocker(job({ cacheKey: 'k' }), cached, { id: 'first' }), { reason: 'joined job first, the same request already on its way' });
    assert.equal(joinBlocker(job({ cacheKey: 'k' }), cached, undefined), null);
    assert.equal(joinBlocker(job({ cacheKey: 'k' }), recipe(), { id: 'first' }), null);
    assert.equal(joinBlocker(job({ cacheKey: 'k', state: 'retrying' }), cached, { id: 'first' }), null);
  });

  it('concurrencyBlocker - a recipe at its concurrency waits', () => {
    assert.equal(concurrencyBlocker(recipe(), 99), null);
    assert.equal(concurrencyBlocker(recipe({ concurrency: 2 }), 1), null);
    assert.deepEqual(concurrencyBlocker(recipe({ concurrency: 2 }), 2), { reason: 'recipe r is at its concurrency (2 of 2 running)' });
  });

  it('groupBlocker - a full group holds every recipe in it; a group without a limit holds none', () => {
    assert.equal(groupBlocker(recipe({ group: 'yt' }), undefined, 5), null);
    assert.equal(groupBlocker(recipe({ group: 'yt' }), 2, 1), null);
    assert.deepEqual(groupBlocker(recipe({ group: 'yt' }), 2, 2), { reason: 'group yt is full (2 of 2 running)' });
  });

  it('rateBlocker - counts starts inside the window only, and lifts when the oldest leaves it', () => {
    const limited = recipe({ rateLimit: { count: 2, perMs: 60_000 } });
    assert.equal(rateBlocker(limited, [NOW - 70_000, NOW - 1000], NOW), null);
    assert.deepEqual(rateBlocker(limited, [NOW - 70_000, NOW - 30_000, NOW - 1000], NOW), { reason: 'rate limit: 2 starts per 1m', until: NOW - 30_000 + 60_000 });
    assert.equal(rateBlocker(recipe(), [NOW, NOW, NOW], NOW), null);
  });

  it('admissionBlocker - nothing holds a plain job', () => {
    assert.equal(admissionBlocker(job(), recipe(), snapshot(), NOW), null);
  });

  it('admissionBlocker - reads the snapshot\'s counts, groups, starts and the request on its way', () => {
    const r = recipe({ concurrency: 1, group: 'g', rateLimit: { count: 1, perMs: 1000 }, cacheMs: 1000 });
    assert.match(admissionBlocker(job({ cacheKey: 'k' }), r, snapshot({ sameRequestOnItsWay: () => ({ id: 'j1' }) }), NOW)!.reason, /joined job j1/);
    assert.match(admissionBlocker(job(), r, snapshot({ runningByRecipe: new Map([['r', 1]]) }), NOW)!.reason, /at its concurrency/);
    assert.match(admissionBlocker(job(), r, snapshot({ groups: { g: 1 }, runningByGroup: new Map([['g', 1]]) }), NOW)!.reason, /group g is full/);
    assert.match(admissionBlocker(job(), r, snapshot({ starts: new Map([['r', [NOW - 10]]]) }), NOW)!.reason, /rate limit/);
  });

  it('admissionBlocker - time first, then Docker, then the rest', () => {
    const r = recipe({ steps: [container], concurrency: 1 });
    const s = snapshot({ docker: { up: false, socketPath: 'x' }, runningByRecipe: new Map([['r', 1]]) });
    assert.match(admissionBlocker(job({ notBefore: NOW + 1 }), r, s, NOW)!.reason, /not before/);
    assert.equal(admissionBlocker(job(), r, s, NOW)!.docker, true);
    assert.match(admissionBlocker(job(), r, { ...s, docker: { up: true, socketPath: 'x' } }, NOW)!.reason, /concurrency/);
  });

  it('swarmBlocker - a container job waits while no ready node has its reservation free, and says how much is', () => {
    const GiB = 1024 ** 3;
    const node = (name: string, memory: number, memoryFree: number, extra: Partial<SwarmNode> = {}): SwarmNode => ({ id: name, name, ready: true, takesWork: true, cpus: 4, memory, cpusFree: 4, memoryFree, ...extra });
    const view = (...nodes: SwarmNode[]): SwarmView => ({ problem: undefined, nodes });
    const big = recipe({ steps: [container], resources: { memory: 4 * GiB } });
    assert.equal(swarmBlocker(big, undefined), null, 'not on Swarm: local admission decides');
    assert.equal(swarmBlocker(recipe({ resources: { memory: 4 * GiB } }), view()), null, 'a job without containers never waits for a node');
    assert.equal(swarmBlocker(big, view(node('a', 8 * GiB, 2 * GiB), node('b', 8 * GiB, 5 * GiB))), null);
    assert.equal(
      swarmBlocker(big, view(node('a', 8 * GiB, 2 * GiB), node('b', 8 * GiB, 3 * GiB)))!.reason,
      'waiting for a Swarm node: no node has 4.0 GiB free (most free: 4 cpus and 3.0 GiB on b)',
    );
    assert.equal(swarmBlocker(big, view(node('a', 2 * GiB, 2 * GiB)))!.reason, 'waiting for a Swarm node: no node has 4.0 GiB in all (the largest, a, has 4 cpus and 2.0 GiB)');
    // A drained or down node takes nothing, however empty.
    assert.match(swarmBlocker(big, view(node('a', 8 * GiB, 8 * GiB, { takesWork: false })))!.reason, /no Swarm node is ready to take work \(1 known\)/);
    assert.match(swarmBlocker(recipe({ steps: [container], resources: { cpus: 8 } }), view(node('a', 8 * GiB, 8 * GiB)))!.reason, /no node has 8 cpus in all/);
    assert.equal(swarmBlocker(recipe({ steps: [container] }), view(node('a', 8 * GiB, 0))), null, 'no reservation: any ready node will do');
    assert.match(swarmBlocker(big, { problem: 'the Docker engine at x is a swarm worker, not a manager', nodes: [] })!.reason, /not a manager/);
  });

  it('admissionBlocker - a job that waits for a Swarm node holds no lane, and concurrency still counts before it', () => {
    const r = recipe({ steps: [container], resources: { memory: 1024 }, concurrency: 1 });
    const full: SwarmView = { problem: undefined, nodes: [{ id: 'a', name: 'a', ready: true, takesWork: true, cpus: 1, memory: 2048, cpusFree: 1, memoryFree: 0 }] };
    assert.match(admissionBlocker(job(), r, snapshot({ swarm: full }), NOW)!.reason, /waiting for a Swarm node/);
    assert.equal(admissionBlocker(job(), r, snapshot({ docker: { up: false, socketPath: 'x', problem: 'it is no manager' }, swarm: full }), NOW)!.reason, 'waiting for the Docker engine (it is no manager)');
  });
});
