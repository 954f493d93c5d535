import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interruptedOutcome, MAX_INTERRUPTIONS } from '../../src/queue/recovery.js';

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
