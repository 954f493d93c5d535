import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newJobId } from '../../src/store/jobs.js';

describe('store/jobs', () => {
  it('newJobId: ids made one after another in one second sort in the order they were made, in the documented shape', () => {
    const now = Date.parse('2026-11-24T10:33:55.123Z');
    const ids = Array.from({ length: 1000 }, (_, i) => newJobId(now, 40_000 + i));
    for (const id of ids) assert.match(id, /^20261124-103355-[0-9a-f]{10}$/);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('newJobId: the counter wraps within its four digits and the rest stays random', () => {
    const now = Date.parse('2026-11-24T10:33:55Z');
    assert.match(newJobId(now, 0x1_0005), /^20261124-103355-0005[0-9a-f]{6}$/);
    const tails = new Set(Array.from({ length: 50 }, () => newJobId(now, 7).slice(-6)));
    assert.ok(tails.size > 40, 'random tails differ');
  });
});
