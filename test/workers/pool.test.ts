import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { HopperError } from '../../src/errors.js';
import { WorkerPool } from '../../src/workers/pool.js';
import type { FixtureTask } from './fixtures/thread.js';

const entry = new URL('./fixtures/thread.ts', import.meta.url);
type Result = { value?: string; thread: number; marked?: number };

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HopperError, `not a HopperError: ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('WorkerPool', () => {
  const pools: Array<WorkerPool<FixtureTask, Result>> = [];
  const pool = (size: number): WorkerPool<FixtureTask, Result> => {
    const p = new WorkerPool<FixtureTask, Result>({ size, entry, what: 'test tasks' });
    pools.push(p);
    return p;
  };
  after(async () => {
    for (const p of pools) await p.close();
  });

  it('.run() - answers each task from a thread, and spreads tasks at once over up to `size` threads', { timeout: 30_000 }, async () => {
    const p = pool(2);
    const never = new AbortController().signal;
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => p.run({ do: 'echo', value: `v${i}` }, never)));
    assert.deepEqual(results.map((r) => r.value), ['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
    assert.equal(new Set(results.map((r) => r.thread)).size, 2);
    assert.equal(p.busy, 0);
  });

  it('.run() - a task\'s error comes back with its code and message', { timeout: 30_000 }, async () => {
    await rejectsWith(pool(1).run({ do: 'fail' }, new AbortController().signal), 'E_FIXTURE', /failed as asked/);
  });

  it('.run() - an abort reaches the task in its thread, with the reason\'s code and message', { timeout: 30_000 }, async () => {
    const p = pool(1);
    const controller = new AbortController();
    const running = p.run({ do: 'wait' }, controller.signal);
    setTimeout(() => controller.abort(new HopperError('E_CANCELED', 'canceled by request')), 50);
    await rejectsWith(running, 'E_CANCELED', /canceled by request/);
    // Aborted before it was sent: the thread is told at once.
    const early = new AbortController();
    early.abort(new HopperError('E_TIMEOUT', 'too slow'));
    await rejectsWith(p.run({ do: 'wait' }, early.signal), 'E_TIMEOUT', /too slow/);
  });

  it('.run() - a thread that dies fails its own tasks with E_WORKER; the next task gets a new thread', { timeout: 30_000 }, async () => {
    const p = pool(1);
    const never = new AbortController().signal;
    const first = await p.run({ do: 'echo', value: 'before' }, never);
    const waiting = p.run({ do: 'wait' }, never);
    await rejectsWith(p.run({ do: 'die' }, never), 'E_WORKER', /thread running test tasks stopped \(exit code 3\)/);
    await rejectsWith(waiting, 'E_WORKER', /stopped/);
    const next = await p.run({ do: 'echo', value: 'after' }, never);
    assert.equal(next.value, 'after');
    assert.notEqual(next.thread, first.thread);
  });

  it('.preload() - runs first on one thread started now, and first on each thread started later, once', { timeout: 30_000 }, async () => {
    const p = pool(3);
    const now = await p.preload({ do: 'mark' });
    assert.equal(now.length, 1, 'one thread started, not three');
    assert.equal(now[0].marked, 1);
    // Three at once: two more threads start, each having run the preload before the task.
    const next = await Promise.all(Array.from({ length: 3 }, (_, i) => p.run({ do: 'echo', value: `job${i}` }, new AbortController().signal)));
    assert.equal(new Set(next.map((r) => r.thread)).size, 3);
    assert.deepEqual(next.map((r) => r.marked), [1, 1, 1]);
  });

  it('.close() - a task asked for after close is refused as hopper stopping', { timeout: 30_000 }, async () => {
    const p = pool(1);
    await p.run({ do: 'echo', value: 'x' }, new AbortController().signal);
    await p.close();
    await rejectsWith(p.run({ do: 'echo', value: 'y' }, new AbortController().signal), 'E_SHUTDOWN', /stopping/);
  });

  it('constructor - refuses a pool of no threads', () => {
    assert.throws(() => new WorkerPool({ size: 0, entry, what: 'x' }), /at least one thread, got 0/);
  });
});
