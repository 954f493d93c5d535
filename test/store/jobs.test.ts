import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newJobId } from '../../src/store/jobs.js';
import { withTempStore } from '../helpers/db.js';
import { FIXTURE_T0, jobWriter } from '../helpers/jobrows.js';

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

  it("a job's events, attempts, outputs and notifications are read in order, each without its statement being prepared again", () => {
    withTempStore((store) => {
      const write = jobWriter(store.db);
      const ids: string[] = [];
      store.db.transaction(() => {
        for (let i = 0; i < 1000; i++) {
          const id = `r${String(i).padStart(4, '0')}`;
          const c = FIXTURE_T0 + i * 1000;
          write.insert({
            id,
            recipe: 'alpha',
            state: 'succeeded',
            createdAt: c,
            startedAt: c + 1,
            finishedAt: c + 9,
            attempts: [[c + 1, c + 4, 'failed'], [c + 5, c + 9, 'succeeded']],
            outputs: [{ name: 'b.zip', bytes: 2 }, { name: 'a.zip', bytes: 1 }],
            notifications: [{ channel: 'email', state: 'sent', tries: [null] }, { channel: 'webhook', state: 'dead', tries: ['refused', 'refused'] }],
          });
          ids.push(id);
        }
      })();
      const [first] = ids;
      assert.deepEqual(store.jobs.events(first).map((e) => e.event), ['requested', 'started', 'succeeded']);
      assert.deepEqual(store.jobs.attemptsOf(first).map((a) => a.n), [1, 2]);
      assert.deepEqual(store.outputs.forJob(first).map((o) => o.name), ['a.zip', 'b.zip']);
      const notes = store.notifications.forJob(first);
      assert.deepEqual(notes.map((n) => n.channel), ['email', 'webhook']);
      assert.equal(store.notifications.deliveries(notes[1].id).length, 2);
      // Prepared again at each call, such a read cost 5-8 times reading a few columns of the job's
      // row by its key; as prepared, 1.5-2.3 times. Compared within this process, the fastest of five
      // tries of 10,000 reads each: long enough that a busy machine slows both sides alike.
      const time = (read: (id: string) => unknown): number =>
        Math.min(
          ...[0, 1, 2, 3, 4].map(() => {
            const t = performance.now();
            for (let round = 0; round < 10; round++) for (const id of ids) read(id);
            return performance.now() - t;
          }),
        );
      const byKey = store.db.prepare('SELECT id, state, recipe FROM jobs WHERE id = ?');
      const row = time((id) => byKey.get(id));
      for (const [what, read] of [
        ['events', (id: string) => store.jobs.events(id)],
        ['attempts', (id: string) => store.jobs.attemptsOf(id)],
        ['outputs', (id: string) => store.outputs.forJob(id)],
        ['notifications', (id: string) => store.notifications.forJob(id)],
      ] as const) {
        const ms = time(read);
        assert.ok(ms < row * 3.5, `${what}: ${ms.toFixed(2)} ms for 10 reads of ${ids.length} jobs, against ${row.toFixed(2)} ms for their rows`);
      }
    });
  });
});
