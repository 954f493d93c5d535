import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hopper } from '../helpers/cli.js';
import { ended, testDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';

describe('cli: cancel and retry', () => {
  it('cancel drops a cancel file that stops a running job; retry queues a canceled job again', { timeout: 60_000 }, async () => {
    const d = await testDaemon({ recipes: { echo: echoRecipe() } });
    try {
      d.drop('long.yaml', request('echo', { text: 'again', seconds: 30 }, { id: 'ctl' }));
      await d.job('ctl', (j) => j.state === 'running');
      const c = await hopper(['cancel', '--root', d.root, 'ctl']);
      assert.equal(c.code, 0, c.stderr);
      assert.equal((await d.job('ctl', ended, 15_000)).state, 'canceled');

      const again = await hopper(['cancel', '--root', d.root, 'ctl']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already ended \(canceled\)/);
      assert.equal((await hopper(['cancel', '--root', d.root, 'nope'])).code, 1);

      // The retry runs the same request; shorten its sleep so the test need not wait 30 s.
      d.ctx.store.db.prepare(`UPDATE jobs SET params_json = '{"text":"again","seconds":0}' WHERE request_id = 'ctl'`).run();
      const r = await hopper(['retry', '--root', d.root, 'ctl']);
      assert.equal(r.code, 0, r.stderr);
      const job = await d.job('ctl', (j) => j.state === 'succeeded', 20_000);
      assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => e.event), ['requested', 'started', 'canceled', 'retrying', 'started', 'succeeded']);
      const notFailed = await hopper(['retry', '--root', d.root, 'ctl']);
      assert.equal(notFailed.code, 1);
      assert.match(notFailed.stderr, /only failed or canceled jobs/);
    } finally {
      await d.cleanup();
    }
  });
});
