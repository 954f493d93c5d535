import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomHex } from '../src/random.js';

describe('randomHex', () => {
  it('gives as many lower-case hex digits as asked, 1 to 30', () => {
    for (const n of [1, 6, 12, 16, 30]) assert.match(randomHex(n), new RegExp(`^[0-9a-f]{${n}}$`));
    for (const bad of [0, 31, -1, 2.5, Number.NaN]) assert.throws(() => randomHex(bad), RangeError);
  });

  it("leaves out the UUID's fixed digits: every place takes all 16 values, none repeats a draw", () => {
    const seen = new Set<string>();
    const values = Array.from({ length: 30 }, () => new Set<string>());
    for (let i = 0; i < 5000; i++) {
      const hex = randomHex(30);
      seen.add(hex);
      for (let p = 0; p < 30; p++) values[p].add(hex[p]);
    }
    assert.equal(seen.size, 5000);
    assert.deepEqual(values.map((v) => v.size), Array(30).fill(16));
  });
});
