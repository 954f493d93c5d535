import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interruptedOutcome, MAX_INTERRUPTIONS, recentStarts } from '../../src/queue/recovery.js';
import { withTempStore } from '../helpers/db.js';
import { jobWriter } from '../helpers/jobrows.js';

// What becomes of a job found running at start, without a daemon (test/queue/dispatcher.test.ts
// and the kill -9 tests in test/cli/crash.test.ts run it through a daemon).

describe('recovery: a job found running at start', () => {
  it('runs again, without using up an attempt, while it has been cut short fewer than MAX_INTERRUPTIONS times', () => {
    for (let before = 0; before < MAX_INTERRUPTIONS; before++) assert.equal(interruptedOutcome({ cancelRequested: false }, before), 'requeued', `${before} before`);
  });

  it('fails once it has been cut short MAX_INTERRUPTIONS times: a job that keeps taking hopper down does not run again', () => {
    assert.equal(MAX_INTERRUPTIONS, 3);
    assert.equal(interruptedOutcome({ cancelRequested: false }, MAX_INTERRUPTIONS), 'failed');
    assert.equal(interruptedOutcome({ cancelRequested: false }, MAX_INTERRUPTIONS + 5), 'failed');
  });

  it('is canceled when a cancel came before hopper stopped, however often it was cut short', () => {
    for (const before of [0, 1, MAX_INTERRUPTIONS, 10]) assert.equal(interruptedOutcome({ cancelRequested: true }, before), 'canceled');
  });
});

describe('recovery: the starts a rate limit reads', () => {
  it('are those of the rate-limited recipes among the waiting jobs, within the longest window, even with 200,000 jobs waiting', () => {
    withTempStore((store) => {
      const now = Date.UTC(2026, 10, 29, 12);
      const HOUR = 3_600_000;
      const write = jobWriter(store.db);
      store.db.transaction(() => {
        const started = (id: string, recipe: string, at: number): void =>
          write.insert({ id, recipe, state: 'succeeded', createdAt: at, startedAt: at, finishedAt: at + 1, attempts: [[at, at + 1, 'succeeded']] });
        started('a-old', 'limited', now - 3 * HOUR);
        started('a-new', 'limited', now - 2 * HOUR);
        started('b-new', 'free', now - HOUR / 2);
      })();
      const limited = { name: 'limited', rateLimit: { count: 1, perMs: 2.5 * HOUR } };
      const free = { name: 'free', rateLimit: undefined };
      // Spread one per waiting job, the window's Math.max had overflowed the stack here.
      const waiting = Array.from({ length: 200_000 }, (_, i) => ({ recipe: i % 2 ? limited : free }));
      assert.deepEqual(recentStarts(store, waiting, now), [{ recipe: 'limited', perMs: 2.5 * HOUR, at: now - 2 * HOUR }]);
      assert.deepEqual(recentStarts(store, [{ recipe: free }], now), [], 'no rate limit among the waiting: no starts kept');
    });
  });
});
