import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hopper } from '../helpers/cli.js';
import { ended, testDaemon } from '../helpers/daemon.js';
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
