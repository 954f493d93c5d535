import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapInTurns } from '../src/turns.js';

describe('mapInTurns', () => {
  it('gives the event loop a turn after each slice of time, and keeps the order', async () => {
    let clock = 0;
    const turnsSeen: number[] = [];
    let done = 0;
    // Something waiting for the event loop meanwhile (as an HTTP answer would), noting how far the work got.
    let waiting = true;
    const watch = (): void => {
      turnsSeen.push(done);
      if (waiting) setImmediate(watch);
    };
    setImmediate(watch);
    const out = await mapInTurns([1, 2, 3, 4, 5, 6], (n) => {
      clock += 2; // each item takes 2 ms of the (fake) clock
      done++;
      return n * 10;
    }, { sliceMs: 3, now: () => clock });
    waiting = false;
    assert.deepEqual(out, [10, 20, 30, 40, 50, 60]);
    // Slices of two items (2 + 2 ms >= 3): turns came after 2, 4 and 6 items, before the caller went on.
    assert.deepEqual(turnsSeen.slice(0, 3), [2, 4, 6]);
  });

  it('runs quick work in one go: no turn when the items take less than a slice', async () => {
    let turns = 0;
    let waiting = true;
    const watch = (): void => {
      turns++;
      if (waiting) setImmediate(watch);
    };
    setImmediate(watch);
    const out = await mapInTurns(['a', 'b', 'c'], async (s) => s.toUpperCase(), { sliceMs: 3, now: () => 0 });
    assert.equal(turns, 0, 'no turn of the event loop in between');
    waiting = false;
    assert.deepEqual(out, ['A', 'B', 'C']);
  });

  it('an item that throws rejects the whole, as the loop it replaces', async () => {
    await assert.rejects(mapInTurns([1, 2], (n) => {
      if (n === 2) throw new Error('bad item');
      return n;
    }, { sliceMs: 3 }), /bad item/);
  });
});
