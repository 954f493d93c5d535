import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cacheHit } from '../../src/queue/cache.js';
import type { Job } from '../../src/store/jobs.js';
import { openStore, type Store } from '../../src/store/store.js';
import { hopper } from '../helpers/cli.js';
import { ended, tempRoot, testDaemon } from '../helpers/daemon.js';
import { jobWriter } from '../helpers/jobrows.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const cached = echoRecipe('cached', { cache: '1h' });

function runs(d: Awaited<ReturnType<typeof testDaemon>>): number {
  return (d.ctx.store.db.prepare("SELECT count(*) AS n FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.recipe = 'cached'").get() as { n: number }).n;
}

describe('output cache', () => {
  it('an identical request within the window gets the existing output and its own email, with no second run', async () => {
    const d = await testDaemon({ recipes: { cached } });
    try {
      d.drop('a.yaml', request('cached', { text: 'same' }, { id: 'first', notify: { email: 'a@example.org' } }));
      const first = await d.job('first', ended);
      assert.equal(first.state, 'succeeded');
      d.drop('b.yaml', request('cached', { text: 'same' }, { id: 'second', notify: { email: 'b@example.org' } }));
      const second = await d.job('second', ended);
      assert.equal(second.state, 'succeeded');
      assert.equal(second.cachedFrom, first.id);
      assert.equal(runs(d), 1, 'one run only');
      assert.deepEqual(d.ctx.store.outputs.forJob(second.id).map((o) => o.sha256), d.ctx.store.outputs.forJob(first.id).map((o) => o.sha256));
      const eml = await waitFor('the second email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${second.id}-succeeded`)));
      const link = /https?:\/\/\S+\/downloads\/\S+/.exec(readEml(eml).body)![0];
      const res = await fetch(link);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'same');

      d.drop('c.yaml', request('cached', { text: 'different' }, { id: 'third' }));
      assert.equal((await d.job('third', ended)).cachedFrom, null, 'other params run');
      assert.equal(runs(d), 2);
    } finally {
      await d.cleanup();
    }
  });

  it('a second identical request while the first runs joins it: one run, two notifications', async () => {
    const d = await testDaemon({ recipes: { cached } });
    try {
      d.drop('a.yaml', request('cached', { text: 'slow', seconds: 1 }, { id: 'leader' }));
      await d.job('leader', (j) => j.state === 'running');
      d.drop('b.yaml', request('cached', { text: 'slow', seconds: 1 }, { id: 'joiner' }));
      const waiting = await d.job('joiner', (j) => j.waitReason !== null);
      assert.match(waiting.waitReason!, /joined job .*same request already on its way/);
      const joiner = await d.job('joiner', ended);
      const leader = await d.job('leader', ended);
      assert.equal(joiner.cachedFrom, leader.id);
      assert.equal(runs(d), 1);
    } finally {
      await d.cleanup();
    }
  });

  it('hopper cache clear makes the next identical request run again', async () => {
    const d = await testDaemon({ recipes: { cached } });
    try {
      d.drop('a.yaml', request('cached', { text: 'again' }, { id: 'one' }));
      await d.job('one', ended);
      const r = await hopper(['cache', 'clear', '--root', d.root, 'cached']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /forgot 1 cached output of cached/);
      d.drop('b.yaml', request('cached', { text: 'again' }, { id: 'two' }));
      assert.equal((await d.job('two', ended)).cachedFrom, null);
      assert.equal(runs(d), 2);
    } finally {
      await d.cleanup();
    }
  });
});

describe('output cache: the lookup (cacheHit), without a daemon', () => {
  const NOW = Date.UTC(2026, 10, 29, 12);
  const HOUR = 3_600_000;

  function storeWithSource(): { store: Store; outputs: string; cleanup(): void } {
    const tmp = tempRoot();
    const store = openStore(path.join(tmp.root, 'hopper.db'));
    jobWriter(store.db).insert({ id: 'src', recipe: 'cached', state: 'succeeded', createdAt: NOW - HOUR / 2, startedAt: NOW - HOUR / 2, finishedAt: NOW - HOUR / 4, outputs: [{ name: 'out.zip', bytes: 3 }] });
    store.db.prepare(`UPDATE jobs SET cache_key = 'k1' WHERE id = 'src'`).run();
    const outputs = path.join(tmp.root, 'outputs');
    mkdirSync(path.join(outputs, 'src'), { recursive: true });
    writeFileSync(path.join(outputs, 'src', 'out.zip'), 'zip');
    return { store, outputs, cleanup: () => (store.close(), tmp.cleanup()) };
  }
  const waiting = (extra: Partial<Pick<Job, 'cacheKey' | 'state' | 'notBefore'>> = {}): Pick<Job, 'cacheKey' | 'state' | 'notBefore'> => ({ cacheKey: 'k1', state: 'queued', notBefore: null, ...extra });

  it('finds the job of the same key that succeeded within the window, with its outputs', () => {
    const s = storeWithSource();
    try {
      const hit = cacheHit(s.store, s.outputs, waiting(), { cacheMs: HOUR }, NOW);
      assert.equal(hit?.source.id, 'src');
      assert.deepEqual(hit?.outputs.map((o) => o.name), ['out.zip']);
    } finally {
      s.cleanup();
    }
  });

  it('finds none: recipe without cache, no key, another key, outside the window, a retry, a job whose time has not come', () => {
    const s = storeWithSource();
    try {
      assert.equal(cacheHit(s.store, s.outputs, waiting(), { cacheMs: undefined }, NOW), undefined, 'the recipe does not cache');
      assert.equal(cacheHit(s.store, s.outputs, waiting({ cacheKey: null }), { cacheMs: HOUR }, NOW), undefined, 'no key');
      assert.equal(cacheHit(s.store, s.outputs, waiting({ cacheKey: 'k2' }), { cacheMs: HOUR }, NOW), undefined, 'another key');
      assert.equal(cacheHit(s.store, s.outputs, waiting(), { cacheMs: HOUR / 8 }, NOW), undefined, 'succeeded before the window');
      assert.equal(cacheHit(s.store, s.outputs, waiting({ state: 'retrying' }), { cacheMs: HOUR }, NOW), undefined, 'a retry runs');
      assert.equal(cacheHit(s.store, s.outputs, waiting({ notBefore: NOW + 1 }), { cacheMs: HOUR }, NOW), undefined, 'not before its time');
      assert.ok(cacheHit(s.store, s.outputs, waiting({ notBefore: NOW }), { cacheMs: HOUR }, NOW), 'its time has come');
    } finally {
      s.cleanup();
    }
  });

  it('finds none when an output of the source is gone from outputs/ (retention, or by hand): the job runs', () => {
    const s = storeWithSource();
    try {
      rmSync(path.join(s.outputs, 'src', 'out.zip'));
      assert.equal(cacheHit(s.store, s.outputs, waiting(), { cacheMs: HOUR }, NOW), undefined);
    } finally {
      s.cleanup();
    }
  });
});
