import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/store/commit.js';
import type { Db } from '../../src/store/db.js';
import { tempDb } from '../helpers/db.js';

const withDb = (t: { after(fn: () => void): void }): Db => tempDb(t, 'CREATE TABLE t (k TEXT PRIMARY KEY)');

const put = (db: Db, k: string) => (): void => void db.prepare('INSERT INTO t (k) VALUES (?)').run(k);
const keys = (db: Db): string[] => db.prepare<[], { k: string }>('SELECT k FROM t ORDER BY k').all().map((r) => r.k);

describe('store/commit', () => {
  it('GroupCommit: a soon write alone is not committed at the next turn, but within a short while', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const t0 = performance.now();
    const written = group.later(put(db, 'a'), 'soon');
    await nextTurn();
    await nextTurn();
    assert.deepEqual(keys(db), []);
    await written;
    assert.deepEqual(keys(db), ['a']);
    assert.ok(performance.now() - t0 < 1000, 'committed within a second');
  });

  it('GroupCommit: a soon write joins the commit of the next write something waits on, in the order they came', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const order: string[] = [];
    const soon = group.later(() => (put(db, 'a')(), order.push('soon')), 'soon');
    let soonDone = false;
    void soon.then(() => (soonDone = true));
    const t0 = performance.now();
    await group.later(() => (put(db, 'b')(), order.push('now')));
    await Promise.resolve();
    assert.equal(soonDone, true, 'the soon write was committed with the other');
    assert.deepEqual(order, ['soon', 'now']);
    assert.deepEqual(keys(db), ['a', 'b']);
    assert.ok(performance.now() - t0 < 1000);
  });

  it('GroupCommit: flush() commits soon writes at once (as before the database closes)', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const written = group.later(put(db, 'a'), 'soon');
    group.flush();
    assert.deepEqual(keys(db), ['a']);
    await written;
  });
});
