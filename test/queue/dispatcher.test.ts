import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

/** Whether a process whose command line holds `marker` is still alive (the job's command was killed?). */
function processWith(marker: string): boolean {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').some((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('lanes: cancel', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe('echo', { lane: 'slow' }) }, config: { lanes: { slow: { concurrency: 1 } } } });
  });
  after(() => d.cleanup());

  it('cancels a queued job without running it, and a running job by stopping its command', async () => {
    d.drop('long.yaml', request('echo', { text: 'cancel-marker-long', seconds: 30 }, { id: 'long' }));
    await d.job('long', (j) => j.state === 'running');
    d.drop('behind.yaml', request('echo', { text: 'behind' }, { id: 'behind' }));
    const behind = await d.job('behind', (j) => j.waitReason !== null);
    assert.match(behind.waitReason!, /slow lane is full/);
    assert.equal(d.ctx.store.jobs.position(behind), 1);

    d.drop('cancel-behind.yaml', { kind: 'cancel', job: 'behind' });
    const canceled = await d.job('behind', ended);
    assert.equal(canceled.state, 'canceled');
    assert.equal(canceled.startedAt, null, 'it never started');

    await waitFor('the command to run', () => processWith('cancel-marker-long'));
    const t0 = Date.now();
    d.drop('cancel-long.yaml', { kind: 'cancel', job: 'long' });
    const long = await d.job('long', ended, 10_000);
    assert.equal(long.state, 'canceled');
    assert.ok(Date.now() - t0 < 5000, 'canceled promptly');
    await waitFor('the command to be gone', () => !processWith('cancel-marker-long'), 5000);
    const events = d.ctx.store.jobs.events(long.id).map((e) => e.event);
    assert.deepEqual(events, ['requested', 'started', 'canceled']);
    assert.ok(existsSync(path.join(d.root, 'outbox')) && readdirSync(path.join(d.root, 'outbox')).length === 0, 'no email: no address was given');
  });

  it('a cancel naming no known job is rejected', async () => {
    d.drop('cancel-nothing.yaml', { kind: 'cancel', job: 'no-such-job' });
    const text = await waitFor('rejection', () => existsSync(path.join(d.inboxDir, 'rejected', 'cancel-nothing.yaml.error.txt')) && readFileSync(path.join(d.inboxDir, 'rejected', 'cancel-nothing.yaml.error.txt'), 'utf8'));
    assert.match(text, /job: no job or request with id "no-such-job"/);
  });

  it('a cancel for a job that already ended is rejected', async () => {
    d.drop('done.yaml', request('echo', { text: 'x' }, { id: 'done-already' }));
    await d.job('done-already', ended);
    d.drop('cancel-done.yaml', { kind: 'cancel', job: 'done-already' });
    const file = path.join(d.inboxDir, 'rejected', 'cancel-done.yaml.error.txt');
    assert.match(await waitFor('rejection', () => existsSync(file) && readFileSync(file, 'utf8')), /already ended \(succeeded\)/);
  });
});

describe('lanes: the start is committed while the steps run', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { echo: echoRecipe('echo', { retries: { attempts: 1 } }) } });
  });
  after(() => d.cleanup());

  it('a job that ends quickly has its start and its end recorded, in order, with the attempt numbered', async () => {
    d.drop('quick.yaml', request('echo', { text: 'quick' }, { id: 'quick' }));
    const job = await d.job('quick', ended);
    assert.equal(job.state, 'succeeded');
    assert.equal(job.attempts, 1);
    assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => [e.event, e.detail]), [['requested', null], ['started', 'attempt 1'], ['succeeded', null]]);
    assert.deepEqual(d.ctx.store.jobs.attemptsOf(job.id).map((a) => [a.n, a.outcome]), [[1, 'succeeded']]);
  });

  it('a start the store refuses stops the steps already running; the run does not count, and the job waits to try again with the reason', async () => {
    d.ctx.store.db.exec("CREATE TRIGGER refuse_attempts BEFORE INSERT ON attempts BEGIN SELECT RAISE(ABORT, 'attempts refused by the test'); END");
    try {
      const t0 = Date.now();
      d.drop('refused.yaml', request('echo', { text: 'refused-start-marker', seconds: 30 }, { id: 'refused' }));
      const job = await d.job('refused', (j) => j.state === 'retrying', 10_000);
      assert.match(job.errorMessage ?? '', /attempts refused by the test/);
      assert.equal(job.attempts, 0, 'a run whose start was never recorded does not count');
      assert.ok(Date.now() - t0 < 5000, 'stopped at once, not after the 30 s command');
      await waitFor('the command to be gone', () => !processWith('refused-start-marker'), 5000);
      assert.deepEqual(d.ctx.store.jobs.events(job.id).map((e) => e.event), ['requested', 'retrying']);
      d.drop('cancel-refused.yaml', { kind: 'cancel', job: 'refused' });
      assert.equal((await d.job('refused', ended)).state, 'canceled');
    } finally {
      d.ctx.store.db.exec('DROP TRIGGER refuse_attempts');
    }
  });
});

describe('lanes: retries, timeouts and order', () => {
  let d: TestDaemon;
  let flaky: TestServer;
  let calls: number[] = [];
  before(async () => {
    flaky = await httpServer((_req, res) => {
      calls.push(Date.now());
      if (calls.length < 3) res.writeHead(503).end('busy');
      else res.writeHead(200).end('finally');
    });
    d = await testDaemon({
      recipes: {
        flaky: {
          kind: 'recipe',
          name: 'flaky',
          params: { type: 'object', properties: { url: { type: 'string' } } },
          retries: { attempts: 3, backoff: 'exponential', delay: '300ms' },
          steps: [{ fetch: { url: '{{params.url}}', to: 'got.txt' } }],
          output: { files: ['got.txt'] },
        },
        sleepy: echoRecipe('sleepy', { timeout: '700ms', retries: { attempts: 1 } }),
        solo: echoRecipe('solo', { concurrency: 1 }),
        limited: echoRecipe('limited', { rateLimit: { count: 2, per: '1500ms' } }),
        ordered: echoRecipe('ordered', { lane: 'slow' }),
      },
      config: { lanes: { fast: { concurrency: 4 }, slow: { concurrency: 1 } } },
    });
  });
  after(async () => {
    await d.cleanup();
    await flaky.close();
  });

  it('retries a failing job with exponential backoff, then succeeds', async () => {
    calls = [];
    d.drop('flaky.yaml', request('flaky', { url: `${flaky.url}/x` }, { id: 'flaky-1' }));
    const job = await d.job('flaky-1', ended, 15_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    assert.equal(calls.length, 3);
    assert.ok(calls[1] - calls[0] >= 290, `first backoff ${calls[1] - calls[0]} ms`);
    assert.ok(calls[2] - calls[1] >= 590, `second backoff doubles: ${calls[2] - calls[1]} ms`);
    const events = d.ctx.store.jobs.events(job.id).map((e) => e.event);
    assert.deepEqual(events, ['requested', 'started', 'retrying', 'started', 'retrying', 'started', 'succeeded']);
    const attempts = d.ctx.store.jobs.attemptsOf(job.id);
    assert.deepEqual(attempts.map((a) => a.outcome), ['failed', 'failed', 'succeeded']);
    assert.match(attempts[0].errorMessage ?? '', /answered 503/);
  });

  it('a 404 or a host that does not exist fails at once, whatever the retries: a new run gets the same answer', async () => {
    const gone = await httpServer((_req, res) => res.writeHead(404, 'Not Found').end());
    try {
      d.drop('gone.yaml', request('flaky', { url: `${gone.url}/missing.csv` }, { id: 'gone-404' }));
      d.drop('nohost.yaml', request('flaky', { url: 'http://no-such-host.invalid/x.csv' }, { id: 'gone-dns' }));
      const notFound = await d.job('gone-404', ended, 15_000);
      assert.equal(notFound.state, 'failed');
      assert.equal(notFound.errorCode, 'E_FETCH_CLIENT');
      assert.equal(notFound.attempts, 1);
      assert.match(notFound.errorMessage ?? '', /^the server answered 404 Not Found for http:\/\/127\.0\.0\.1:\d+\/missing\.csv$/);
      const noHost = await d.job('gone-dns', ended, 15_000);
      assert.equal(noHost.errorCode, 'E_FETCH_NO_HOST');
      assert.equal(noHost.attempts, 1);
      assert.equal(noHost.errorMessage, 'no such host: no-such-host.invalid');
    } finally {
      await gone.close();
    }
  });

  it('fails for good after the last attempt, with the error of the last one', async () => {
    calls = [Date.now(), Date.now(), Date.now(), Date.now()];
    const never = await httpServer((_req, res) => res.writeHead(500).end());
    try {
      d.drop('never.yaml', request('flaky', { url: `${never.url}/y` }, { id: 'never' }));
      const job = await d.job('never', ended, 15_000);
      assert.equal(job.state, 'failed');
      assert.equal(job.errorCode, 'E_FETCH_STATUS');
      assert.equal(job.attempts, 3);
    } finally {
      await never.close();
    }
  });

  it('does not retry what a new run cannot fix: an address the config does not allow fails at once', async () => {
    d.drop('outbound.yaml', request('flaky', { url: 'http://169.254.169.254/latest/meta-data/' }, { id: 'metadata' }));
    const job = await d.job('metadata', ended, 15_000);
    assert.equal(job.state, 'failed');
    assert.equal(job.errorCode, 'E_OUTBOUND');
    assert.equal(job.attempts, 1, 'one attempt of 3');
    assert.match(job.errorMessage ?? '', /169\.254\.169\.254 is a link-local address/);
  });

  it('stops a job that passes its timeout and kills its command', async () => {
    const t0 = Date.now();
    d.drop('sleepy.yaml', request('sleepy', { text: 'timeout-marker', seconds: 20 }, { id: 'sleepy' }));
    const job = await d.job('sleepy', ended, 10_000);
    assert.equal(job.state, 'failed');
    assert.equal(job.errorCode, 'E_TIMEOUT');
    assert.match(job.errorMessage!, /longer than its timeout \(700ms\)/);
    assert.ok(Date.now() - t0 < 5000);
    await waitFor('the command to be gone', () => !processWith('timeout-marker'), 5000);
  });

  it('holds a recipe to its concurrency and says why a job waits', async () => {
    d.drop('solo-1.yaml', request('solo', { text: 'a', seconds: 1 }, { id: 'solo-1' }));
    await d.job('solo-1', (j) => j.state === 'running');
    d.drop('solo-2.yaml', request('solo', { text: 'b' }, { id: 'solo-2' }));
    const waiting = await d.job('solo-2', (j) => j.waitReason !== null);
    assert.match(waiting.waitReason!, /recipe solo is at its concurrency \(1 of 1 running\)/);
    const first = await d.job('solo-1', ended);
    const second = await d.job('solo-2', ended);
    assert.ok(second.startedAt! >= first.finishedAt!, 'never both at once');
  });

  it('holds a recipe to its rate limit', async () => {
    for (let i = 0; i < 3; i++) d.drop(`limited-${i}.yaml`, request('limited', { text: String(i) }, { id: `limited-${i}` }));
    const jobs = await Promise.all([0, 1, 2].map((i) => d.job(`limited-${i}`, ended, 10_000)));
    const starts = jobs.map((j) => j.startedAt!).sort((a, b) => a - b);
    assert.ok(starts[2] - starts[0] >= 1400, `third start waits for the window: ${starts[2] - starts[0]} ms`);
  });

  it('runs higher priority first, and waits for notBefore', async () => {
    d.drop('blocker.yaml', request('ordered', { text: 'block', seconds: 0.6 }, { id: 'blocker' }));
    await d.job('blocker', (j) => j.state === 'running');
    d.drop('low.yaml', request('ordered', { text: 'low' }, { id: 'low', priority: 1 }));
    await d.job('low');
    d.drop('high.yaml', request('ordered', { text: 'high' }, { id: 'high', priority: 5 }));
    const high = await d.job('high', (j) => j.waitReason !== null);
    assert.equal(d.ctx.store.jobs.position(high), 1);
    const low = await d.job('low', ended);
    assert.ok((await d.job('high', ended)).startedAt! <= low.startedAt!, 'high priority started first');

    const notBefore = new Date(Date.now() + 1200).toISOString();
    d.drop('timed.yaml', request('ordered', { text: 'timed' }, { id: 'timed', notBefore }));
    const timed = await d.job('timed', (j) => j.waitReason !== null);
    assert.match(timed.waitReason!, /not before/);
    const done = await d.job('timed', ended);
    assert.ok(done.startedAt! >= Date.parse(notBefore));
  });
});

describe('lanes: graceful stop', () => {
  it('requeues a job still running after the grace period, and runs it again at the next start', { timeout: 30_000 }, async () => {
    const { root, cleanup } = tempRoot();
    let d = await testDaemon({ root, recipes: { echo: echoRecipe() } });
    try {
      d.drop('long.yaml', request('echo', { text: 'again', seconds: 2 }, { id: 'requeue-me' }));
      await d.job('requeue-me', (j) => j.state === 'running');
      await d.stop(100);
      d = await testDaemon({ root });
      const job = await d.job('requeue-me', ended, 15_000);
      assert.equal(job.state, 'succeeded');
      assert.equal(job.attempts, 1, 'the interrupted attempt does not count');
      assert.deepEqual(d.ctx.store.jobs.attemptsOf(job.id).map((a) => a.outcome), ['interrupted', 'succeeded']);
      // The requeue is an event of its own, and each run says which attempt it is, as counted.
      const events = d.ctx.store.jobs.events(job.id);
      assert.deepEqual(events.map((e) => e.event), ['requested', 'started', 'retrying', 'started', 'succeeded']);
      assert.match(events[2].detail ?? '', /^requeued: hopper stopped while the job ran; this run does not count as an attempt$/);
      assert.deepEqual([events[1].detail, events[3].detail], ['attempt 1', 'attempt 1']);
      const log = readFileSync(path.join(root, 'state', 'jobs', job.id, 'job.log'), 'utf8');
      assert.equal((log.match(/attempt 1 of 1:/g) ?? []).length, 2, log);
      assert.doesNotMatch(log, /attempt 2 of 1/);
    } finally {
      await d.cleanup();
      cleanup();
    }
  });
});
