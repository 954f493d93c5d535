import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { sweep } from '../../src/maintenance/retention.js';
import { ended, testDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';

describe('retention', () => {
  it('removes outputs after retention.outputs and jobs, logs, archived files and emails after retention.jobs; never a waiting job', async () => {
    const d = await testDaemon({
      recipes: { echo: echoRecipe('echo', { notify: { email: { to: 'ops@example.org' } } }) },
      config: { retention: { outputs: '300ms', jobs: '900ms' } },
    });
    try {
      d.drop('a.yaml', request('echo', { text: 'x' }, { id: 'old' }));
      const job = await d.job('old', ended);
      d.drop('b.yaml', request('echo', { text: 'later' }, { id: 'waiting', notBefore: '2099-01-01T00:00:00Z' }));
      const waiting = await d.job('waiting');
      await sleep(400);
      const first = await sweep(d.ctx);
      assert.equal(first.outputs, 1);
      assert.ok(!existsSync(path.join(d.root, 'outputs', job.id)), 'the output is gone after retention.outputs');
      assert.ok(d.ctx.store.jobs.get(job.id), 'the job is still there');
      await sleep(600);
      const second = await sweep(d.ctx);
      assert.equal(second.jobs, 1);
      assert.equal(d.ctx.store.jobs.get(job.id), undefined, 'the job is gone after retention.jobs');
      assert.ok(!existsSync(path.join(d.root, 'state', 'jobs', job.id)), 'with its log');
      assert.ok(!readdirSync(path.join(d.root, 'state', 'archive')).some((n) => n.startsWith(job.id)), 'and its archived request');
      assert.deepEqual(readdirSync(path.join(d.root, 'outbox')).filter((n) => n.startsWith(job.id)), [], 'and its emails');
      assert.ok(d.ctx.store.jobs.get(waiting.id), 'a waiting job is never touched');
    } finally {
      await d.cleanup();
    }
  });
});
