import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiGet } from '../helpers/api.js';
import { tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { FIXTURE_T0, insertFixture, jobWriter } from '../helpers/jobrows.js';
import { parsePrometheus, sampleValue, type Family } from '../helpers/prometheus.js';

async function scrape(d: TestDaemon): Promise<{ text: string; families: Map<string, Family> }> {
  const a = await apiGet(d.http.address(), '/metrics');
  assert.equal(a.status, 200, a.text.slice(0, 300));
  assert.match(String(a.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return { text: a.text, families: parsePrometheus(a.text) };
}

describe('the Prometheus text checker', () => {
  it('reads good text, and refuses what Prometheus would refuse', () => {
    const good = '# HELP x_total A thing\n# TYPE x_total counter\nx_total{a="b\\"c",d="e\\\\f"} 3\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3.5\nh_count 2\n';
    const f = parsePrometheus(good);
    assert.equal(sampleValue(f, 'x_total', { a: 'b"c', d: 'e\\f' }), 3);
    const bad = [
      'x 1',
      'x{a="b"} 1\nx{a="b"} 2\n',
      'x{a=b} 1\n',
      'x{a="b} 1\n',
      '9x 1\n',
      'x one\n',
      'x{a="1",a="2"} 1\n',
      '# TYPE x counter\nx -1\n',
      '# TYPE x wibble\n',
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
      '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n',
      'x 1 12.5\n',
    ];
    for (const text of bad) assert.throws(() => parsePrometheus(text), Error, JSON.stringify(text));
  });
});

describe('GET /metrics', () => {
  let d: TestDaemon;
  let other: TestDaemon;

  before(async () => {
    d = await testDaemon();
    other = await testDaemon({ config: { http: { port: 0 }, lanes: { fast: { concurrency: 7 } } } });
    insertFixture(d.ctx.store.db);
  });
  after(async () => {
    await d?.cleanup();
    await other?.cleanup();
  });

  it('parses as Prometheus text and has every family', async () => {
    const { families } = await scrape(d);
    const want: Record<string, Family['type']> = {
      hopper_info: 'gauge',
      hopper_start_time_seconds: 'gauge',
      hopper_lane_concurrency: 'gauge',
      hopper_queue_depth: 'gauge',
      hopper_running_jobs: 'gauge',
      hopper_jobs: 'gauge',
      hopper_notifications: 'gauge',
      hopper_notification_delivery_failures_total: 'counter',
      hopper_state_free_bytes: 'gauge',
      hopper_docker_up: 'gauge',
      hopper_job_wait_seconds: 'histogram',
      hopper_job_run_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(want)) {
      assert.equal(families.get(name)?.type, type, name);
      assert.ok(families.get(name)?.help, `${name} has help`);
    }
    assert.equal(families.has('hopper_swarm_nodes'), false, 'no swarm configured: no swarm family');
  });

  it('counts lanes, job states by recipe and notifications from the store', async () => {
    const { families: f } = await scrape(d);
    const v = (name: string, labels: Record<string, string> = {}): number | undefined => sampleValue(f, name, labels);
    assert.equal(v('hopper_lane_concurrency', { lane: 'fast' }), 4);
    assert.equal(v('hopper_lane_concurrency', { lane: 'slow' }), 1);
    assert.equal(v('hopper_queue_depth', { lane: 'fast' }), 2);
    assert.equal(v('hopper_queue_depth', { lane: 'slow' }), 0);
    assert.equal(v('hopper_running_jobs', { lane: 'fast' }), 0);
    assert.equal(v('hopper_running_jobs', { lane: 'slow' }), 1);
    const jobs: Array<[string, string, number]> = [
      ['alpha', 'succeeded', 3], ['alpha', 'failed', 1], ['alpha', 'queued', 1],
      ['beta', 'succeeded', 1], ['beta', 'failed', 1], ['beta', 'canceled', 1], ['beta', 'running', 1], ['beta', 'retrying', 1],
      ['gamma', 'succeeded', 20],
    ];
    for (const [recipe, state, n] of jobs) assert.equal(v('hopper_jobs', { recipe, state }), n, `${recipe} ${state}`);
    assert.equal(f.get('hopper_jobs')?.samples.length, jobs.length);
    assert.equal(v('hopper_notifications', { channel: 'email', state: 'sent' }), 2);
    assert.equal(v('hopper_notifications', { channel: 'email', state: 'dead' }), 1);
    assert.equal(v('hopper_notifications', { channel: 'webhook', state: 'dead' }), 1);
    assert.equal(v('hopper_notification_delivery_failures_total', { channel: 'email' }), 3);
    assert.equal(v('hopper_notification_delivery_failures_total', { channel: 'webhook' }), 3);
    assert.ok((v('hopper_state_free_bytes') ?? 0) > 0);
    assert.equal(v('hopper_info', { version: (await import('../../src/version.js')).VERSION }), 1);
  });

  it('observes wait times of first starts and run times of ended attempts, once each', async () => {
    const first = await scrape(d);
    const second = await scrape(d);
    for (const { families: f } of [first, second]) {
      const v = (name: string, labels: Record<string, string>): number | undefined => sampleValue(f, name, labels);
      // Waits (s): a1 2, a2 4, a3 1 (its second start is a retry) | b1 1, b2 1, b4 5 (slow) | b5 1 | gamma 20 x 1.
      assert.equal(v('hopper_job_wait_seconds_count', { recipe: 'alpha', lane: 'fast' }), 3);
      assert.equal(v('hopper_job_wait_seconds_sum', { recipe: 'alpha', lane: 'fast' }), 7);
      assert.equal(v('hopper_job_wait_seconds_count', { recipe: 'beta', lane: 'slow' }), 3);
      assert.equal(v('hopper_job_wait_seconds_sum', { recipe: 'beta', lane: 'slow' }), 7);
      assert.equal(v('hopper_job_wait_seconds_count', { recipe: 'beta', lane: 'fast' }), 1);
      assert.equal(v('hopper_job_wait_seconds_count', { recipe: 'gamma', lane: 'fast' }), 20);
      assert.equal(v('hopper_job_wait_seconds_bucket', { recipe: 'alpha', lane: 'fast', le: '1' }), 1);
      assert.equal(v('hopper_job_wait_seconds_bucket', { recipe: 'alpha', lane: 'fast', le: '5' }), 3);
      // Runs (s): a1 10, a2 20 ok; a3 5 and 7 failed; a4 (cache hit) and b3 (canceled while queued) never ran.
      const run = (recipe: string, lane: string, outcome: string): [number | undefined, number | undefined] => [
        v('hopper_job_run_seconds_count', { recipe, lane, outcome }),
        v('hopper_job_run_seconds_sum', { recipe, lane, outcome }),
      ];
      assert.deepEqual(run('alpha', 'fast', 'succeeded'), [2, 30]);
      assert.deepEqual(run('alpha', 'fast', 'failed'), [2, 12]);
      assert.deepEqual(run('beta', 'slow', 'succeeded'), [1, 30]);
      assert.deepEqual(run('beta', 'slow', 'failed'), [2, 5]);
      assert.deepEqual(run('beta', 'fast', 'failed'), [1, 4]);
      assert.deepEqual(run('gamma', 'fast', 'succeeded'), [20, 210]);
      assert.equal(v('hopper_job_run_seconds_bucket', { recipe: 'gamma', lane: 'fast', outcome: 'succeeded', le: '15' }), 15);
      assert.equal(f.get('hopper_job_run_seconds')?.samples.filter((s) => s.name.endsWith('_count')).length, 6);
    }
  });

  it('takes events that happen after a scrape at the next one', async () => {
    const t = FIXTURE_T0 + 3_600_000;
    jobWriter(d.ctx.store.db).insert({
      id: 'late-1', recipe: 'alpha', state: 'succeeded', createdAt: t, startedAt: t + 3000, finishedAt: t + 8000,
      attempts: [[t + 3000, t + 8000, 'succeeded']],
    });
    const { families: f } = await scrape(d);
    assert.equal(sampleValue(f, 'hopper_job_wait_seconds_count', { recipe: 'alpha', lane: 'fast' }), 4);
    assert.equal(sampleValue(f, 'hopper_job_wait_seconds_sum', { recipe: 'alpha', lane: 'fast' }), 10);
    assert.deepEqual(
      [sampleValue(f, 'hopper_job_run_seconds_count', { recipe: 'alpha', lane: 'fast', outcome: 'succeeded' }), sampleValue(f, 'hopper_job_run_seconds_sum', { recipe: 'alpha', lane: 'fast', outcome: 'succeeded' })],
      [3, 35],
    );
    assert.equal(sampleValue(f, 'hopper_jobs', { recipe: 'alpha', state: 'succeeded' }), 4);
  });

  it('keeps each daemon in its own registry: two daemons in one process do not mix', async () => {
    const { families: f } = await scrape(other);
    assert.equal(sampleValue(f, 'hopper_lane_concurrency', { lane: 'fast' }), 7);
    assert.equal(f.get('hopper_jobs')?.samples.length, 0);
    assert.equal(f.get('hopper_job_run_seconds')?.samples.length, 0);
    assert.equal(sampleValue(f, 'hopper_queue_depth', { lane: 'fast' }), 0);
  });
});

describe('GET /metrics after a restart', () => {
  it('starts its histograms from the restart, while the counts still come from the store', async () => {
    const tmp = tempRoot();
    try {
      const first = await testDaemon({ root: tmp.root });
      // Ended jobs only: a queued or running one would run after the restart.
      const w = jobWriter(first.ctx.store.db);
      for (let i = 0; i < 20; i++) {
        const t = FIXTURE_T0 + i * 60_000;
        w.insert({ id: `g${i}`, recipe: 'gamma', state: 'succeeded', createdAt: t, startedAt: t + 1000, finishedAt: t + 2000, attempts: [[t + 1000, t + 2000, 'succeeded']] });
      }
      assert.equal(sampleValue((await scrape(first)).families, 'hopper_job_run_seconds_count', { recipe: 'gamma', lane: 'fast', outcome: 'succeeded' }), 20);
      await first.stop(1000);
      const again = await testDaemon({ root: tmp.root });
      try {
        const { families: f } = await scrape(again);
        assert.equal(f.get('hopper_job_wait_seconds')?.samples.length, 0);
        assert.equal(sampleValue(f, 'hopper_jobs', { recipe: 'gamma', state: 'succeeded' }), 20);
      } finally {
        await again.stop(1000);
      }
    } finally {
      tmp.cleanup();
    }
  });
});
