import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ended, testDaemon } from '../helpers/daemon.js';
import { containerRecipe, dockerForTests } from '../helpers/docker.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import type { TestDaemon } from '../helpers/daemon.js';

const docker = await dockerForTests();

/** [start, end] of each job's last attempt, from the store. */
function spans(d: TestDaemon, ids: string[]): Array<[number, number]> {
  return ids.map((id) => {
    const job = d.ctx.store.jobs.find(id)!;
    const a = d.ctx.store.jobs.attemptsOf(job.id).at(-1)!;
    return [a.startedAt, a.finishedAt ?? Infinity];
  });
}

const overlap = (a: [number, number], b: [number, number]): boolean => a[0] < b[1] && b[0] < a[1];

/** The most jobs of `ids` running at any one moment. */
function maxConcurrent(all: Array<[number, number]>): number {
  let max = 0;
  for (const [start] of all) max = Math.max(max, all.filter(([s, e]) => s <= start && start < e).length);
  return max;
}

describe('resources, groups and rate limits on containers', { skip: docker.skip }, () => {
  it('two jobs that each need 60% of memory never overlap; a small job runs beside one of them', { timeout: 90_000 }, async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    const d = await testDaemon({
      recipes: {
        big: containerRecipe('big', 'mkdir -p out; echo big > out/x; sleep 1.5', [], { resources: { cpus: 0.5, memory: '600MiB' } }),
        small: containerRecipe('small', 'mkdir -p out; echo small > out/x; sleep 0.5', [], { resources: { cpus: 0.5, memory: '100MiB' } }),
      },
      config: { resources: { cpus: 4, memory: '1GiB' }, lanes: { fast: { concurrency: 4 } } },
    });
    try {
      d.drop('b1.yaml', request('big', {}, { id: 'big-1' }));
      d.drop('b2.yaml', request('big', {}, { id: 'big-2' }));
      await d.job('big-2', (j) => /waiting for .* memory/.test(j.waitReason ?? '') || j.state !== 'queued', 30_000);
      d.drop('s1.yaml', request('small', {}, { id: 'small-1' }));
      for (const id of ['big-1', 'big-2', 'small-1']) assert.equal((await d.job(id, ended, 60_000)).state, 'succeeded', id);
      const [b1, b2, s1] = spans(d, ['big-1', 'big-2', 'small-1']);
      assert.ok(!overlap(b1, b2), `the big jobs overlapped: ${JSON.stringify([b1, b2])}`);
      assert.ok(overlap(s1, b1) || overlap(s1, b2), 'the small job ran beside a big one');
    } finally {
      await d.cleanup();
    }
  });

});

describe('resources: reservation without Docker', () => {
  it('a big job is not starved: after the hold time, resources are kept for it', { timeout: 90_000 }, async () => {
    const d = await testDaemon({
      recipes: {
        big: echoRecipe('big', { resources: { memory: '800MiB' } }),
        small: echoRecipe('small', { resources: { memory: '300MiB' } }),
      },
      config: { resources: { cpus: 4, memory: '1GiB' }, lanes: { fast: { concurrency: 4 } } },
      resourceHoldMs: 300,
    });
    try {
      d.drop('s0.yaml', request('small', { seconds: 1 }, { id: 's0' }));
      await d.job('s0', (j) => j.state === 'running');
      d.drop('big.yaml', request('big', { seconds: 0 }, { id: 'big' }));
      await d.job('big', (j) => j.waitReason !== null);
      // Smaller jobs keep coming; once the hold time passed, they must wait behind the big one.
      for (let i = 1; i <= 4; i++) d.drop(`s${i}.yaml`, request('small', { seconds: 0.5 }, { id: `s${i}` }));
      const big = await d.job('big', ended, 30_000);
      const smalls = await Promise.all([1, 2, 3, 4].map((i) => d.job(`s${i}`, ended, 30_000)));
      // Once the hold time has passed (plus a little for dispatch), no small job may start before the big one.
      const heldFrom = big.createdAt + 300 + 150;
      const passed = smalls.filter((x) => x.startedAt! > heldFrom && x.startedAt! < big.startedAt!);
      assert.deepEqual(passed.map((x) => x.requestId), [], 'small jobs passed the big one after the hold time');
      assert.ok(smalls.some((x) => x.startedAt! >= big.startedAt!), 'some small jobs waited behind the big one');
      assert.match(d.ctx.store.jobs.events(big.id).map((e) => e.event).join(','), /succeeded/);
    } finally {
      await d.cleanup();
    }
  });

  it('a request whose recipe can never fit the host budget is rejected, and never blocks others', async () => {
    const d = await testDaemon({ recipes: { huge: echoRecipe('huge', { resources: { memory: '64GiB' } }), echo: echoRecipe() }, config: { resources: { memory: '1GiB' } } });
    try {
      d.drop('huge.yaml', request('huge', {}, { id: 'huge' }));
      const err = path.join(d.inboxDir, 'rejected', 'huge.yaml.error.txt');
      const text = await waitFor('rejection', () => existsSync(err) && readFileSync(err, 'utf8'));
      assert.match(text, /needs 64\.0 GiB memory; this host's budget is 1\.0 GiB/);
      d.drop('echo.yaml', request('echo', {}, { id: 'after-huge' }));
      assert.equal((await d.job('after-huge', ended)).state, 'succeeded');
    } finally {
      await d.cleanup();
    }
  });

});

describe('groups and rate limits on containers', { skip: docker.skip }, () => {
  it('group and rate limits hold across both lanes under 20 queued container jobs', { timeout: 120_000 }, async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    const script = 'mkdir -p out; echo x > out/x; sleep 0.3';
    const d = await testDaemon({
      recipes: {
        fastg: containerRecipe('fastg', script, [], { group: 'scrapers', lane: 'fast' }),
        slowg: containerRecipe('slowg', script, [], { group: 'scrapers', lane: 'slow', rateLimit: { count: 3, per: '2s' } }),
      },
      config: { groups: { scrapers: 2 }, lanes: { fast: { concurrency: 4 }, slow: { concurrency: 2 } } },
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        for (const r of ['fastg', 'slowg']) {
          ids.push(`${r}-${i}`);
          d.drop(`${r}-${i}.yaml`, request(r, {}, { id: `${r}-${i}` }));
        }
      }
      for (const id of ids) assert.equal((await d.job(id, ended, 90_000)).state, 'succeeded', id);
      assert.ok(maxConcurrent(spans(d, ids)) <= 2, 'never more than 2 of the group at once');
      const slowStarts = spans(d, ids.filter((i) => i.startsWith('slowg'))).map(([s]) => s).sort((a, b) => a - b);
      for (let i = 3; i < slowStarts.length; i++) {
        assert.ok(slowStarts[i] - slowStarts[i - 3] >= 1990, `4 starts within 2s: ${slowStarts.slice(i - 3, i + 1).join(', ')}`);
      }
    } finally {
      await d.cleanup();
    }
  });
});
