import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Status } from '../../src/store/views.js';
import { apiGet } from '../helpers/api.js';
import { hopper } from '../helpers/cli.js';
import { ended, manualClock, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

// Local times, as cron reads them. 2020 is in the past whatever the real clock says,
// which `hopper status` (reading real time) shows as a missed run.
const local = (y: number, mo: number, d: number, h = 0, mi = 0): number => new Date(y, mo - 1, d, h, mi).getTime();
const MON = local(2020, 11, 30, 3); // a Monday
const WEEK = 7 * 86_400_000;
const weekly = echoRecipe('weekly', { schedule: '0 3 * * 1', scheduleParams: { text: 'weekly report' } });

const jobsOf = (d: TestDaemon, recipe: string): Array<{ id: string; request_id: string; state: string }> =>
  d.ctx.store.db.prepare('SELECT id, request_id, state FROM jobs WHERE recipe = ? ORDER BY created_at').all(recipe) as Array<{ id: string; request_id: string; state: string }>;

async function status(d: TestDaemon): Promise<Status> {
  const a = await apiGet(d.http.address(), '/status');
  assert.equal(a.status, 200);
  return a.json as Status;
}

describe('schedules', () => {
  const roots: Array<() => void> = [];
  after(() => roots.forEach((c) => c()));

  it('requests the recipe itself at its slot with scheduleParams, once, and shows the next run', { timeout: 30_000 }, async () => {
    const clock = manualClock(MON - 60_000);
    const d = await testDaemon({ recipes: { weekly }, clock, schedulePollMs: 20 });
    try {
      let s = await status(d);
      assert.deepEqual(s.schedules, [{ recipe: 'weekly', schedule: '0 3 * * 1', nextRunAt: new Date(MON).toISOString(), lastRunAt: null, lastJob: null }]);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(jobsOf(d, 'weekly').length, 0, 'nothing before its slot, and none for the slots before hopper knew it');

      clock.set(MON);
      const job = await d.job(`schedule-weekly-${new Date(MON).toISOString().replace(/[-:]|\.\d+/g, '')}`, ended);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
      assert.deepEqual(job.params, { text: 'weekly report', seconds: 0 }, 'scheduleParams, with the schema defaults filled');
      assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => e.event).slice(0, 2), ['requested', 'started']);

      clock.advance(30 * 60_000);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(jobsOf(d, 'weekly').length, 1, 'a slot runs once');
      s = await status(d);
      assert.equal(s.schedules[0].nextRunAt, new Date(MON + WEEK).toISOString());
      assert.equal(s.schedules[0].lastRunAt, new Date(MON).toISOString());
      assert.equal(s.schedules[0].lastJob, job.id);
    } finally {
      await d.cleanup();
    }
  });

  it('waits while a checkpoint holds the commits, and requests the slot once they are released', { timeout: 30_000 }, async () => {
    const clock = manualClock(MON - 60_000);
    const d = await testDaemon({ recipes: { weekly }, clock, schedulePollMs: 20 });
    try {
      await status(d);
      const release = d.ctx.store.hold();
      try {
        clock.set(MON);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(jobsOf(d, 'weekly').length, 0, 'no write while the hold is in force');
      } finally {
        release();
      }
      const [job] = await waitFor('the slot once released', () => jobsOf(d, 'weekly')[0] && jobsOf(d, 'weekly'));
      assert.equal(job.request_id, `schedule-weekly-${new Date(MON).toISOString().replace(/[-:]|\.\d+/g, '')}`);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(jobsOf(d, 'weekly').length, 1, 'the ticks that waited request it once');
    } finally {
      await d.cleanup();
    }
  });

  it('runs slots missed while stopped once at start, never twice across restarts', { timeout: 30_000 }, async () => {
    const { root, cleanup } = tempRoot();
    roots.push(cleanup);
    const clock = manualClock(MON - 60_000);
    let d = await testDaemon({ root, recipes: { weekly }, clock, schedulePollMs: 20 });
    await d.stop();

    // Three Mondays pass while hopper is stopped.
    clock.set(MON + 2 * WEEK + 3_600_000);
    const shown = await hopper(['status', '--root', root]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /weekly +0 3 \* \* 1 +2020-11-30 0\d:00:00 \(missed: runs at start\)/);

    d = await testDaemon({ root, clock, schedulePollMs: 20 });
    try {
      const first = await waitFor('the missed run', () => jobsOf(d, 'weekly')[0]);
      assert.equal(first.request_id, `schedule-weekly-${new Date(MON + 2 * WEEK).toISOString().replace(/[-:]|\.\d+/g, '')}`, 'named for the latest missed slot');
      await d.job(first.id, ended);
    } finally {
      await d.stop();
    }
    d = await testDaemon({ root, clock, schedulePollMs: 20 });
    try {
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(jobsOf(d, 'weekly').length, 1, 'a restart at the same time makes no second run');
      const json = JSON.parse((await hopper(['status', '--root', root, '--json'])).stdout) as Status;
      assert.equal(json.schedules[0].nextRunAt, new Date(MON + 3 * WEEK).toISOString());
    } finally {
      await d.stop();
    }
  });

  it('follows a changed schedule from the change on, and forgets a removed one', { timeout: 30_000 }, async () => {
    const clock = manualClock(MON - 60_000);
    const d = await testDaemon({ recipes: { weekly }, clock, schedulePollMs: 20 });
    try {
      d.drop('weekly.yaml', { ...weekly, schedule: '30 4 * * *' });
      await waitFor('the new schedule', async () => (await status(d)).schedules[0]?.nextRunAt === new Date(local(2020, 11, 30, 4, 30)).toISOString());
      clock.set(MON + 60_000);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(jobsOf(d, 'weekly').length, 0, 'the old slot no longer counts');
      clock.set(local(2020, 11, 30, 4, 30));
      await waitFor('the run at the new slot', () => jobsOf(d, 'weekly').length === 1);

      d.drop('weekly.yaml', { ...weekly, schedule: undefined, scheduleParams: undefined });
      await waitFor('the schedule to go', async () => (await status(d)).schedules.length === 0);
    } finally {
      await d.cleanup();
    }
  });
});
