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

  it('GroupCommit: a commit takes at most 16 writes; the rest follow in the next turns, in order; flushAll() commits them all at once', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const names = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const order: string[] = [];
    const all = names.map((k) => group.later(() => (put(db, k)(), order.push(k))));
    group.flush();
    assert.deepEqual(keys(db), names.slice(0, 16), 'one commit of 16');
    await nextTurn();
    assert.deepEqual(keys(db), names.slice(0, 32), 'the next 16 in the next turn');
    await Promise.all(all);
    assert.deepEqual(order, names);
    assert.deepEqual(keys(db), names);

    const db2 = withDb(t);
    const group2 = new GroupCommit(db2);
    const more = names.map((k) => group2.later(put(db2, k), 'soon'));
    group2.flushAll();
    assert.deepEqual(keys(db2), names);
    await Promise.all(more);
  });

  it('GroupCommit: flush() commits soon writes at once (as before the database closes)', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const written = group.later(put(db, 'a'), 'soon');
    group.flush();
    assert.deepEqual(keys(db), ['a']);
    await written;
  });
  it('GroupCommit: while held, writes wait (now or soon) and go in one commit at the release; writable() waits with them; flushAll() commits held writes', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const release = group.hold();
    let open = false;
    const writable = group.writable().then(() => (open = true));
    const a = group.later(put(db, 'a'));
    const b = group.later(put(db, 'b'), 'soon');
    await new Promise((resolve) => setTimeout(resolve, 30)); // past the soon write's own time
    assert.deepEqual(keys(db), [], 'nothing committed while held');
    assert.equal(open, false);
    release();
    release(); // a second call changes nothing
    await Promise.all([a, b, writable]);
    assert.deepEqual(keys(db), ['a', 'b']);
    assert.equal(open, true);
    // Two holds: the commits wait for both.
    const r1 = group.hold();
    const r2 = group.hold();
    const c = group.later(put(db, 'c'));
    r1();
    await nextTurn();
    await nextTurn();
    assert.deepEqual(keys(db), ['a', 'b']);
    r2();
    await c;
    assert.deepEqual(keys(db), ['a', 'b', 'c']);
    // Before the database closes, held or not.
    group.hold();
    void group.later(put(db, 'd'));
    group.flushAll();
    assert.deepEqual(keys(db), ['a', 'b', 'c', 'd']);
    assert.equal(await Promise.race([group.writable().then(() => 'open'), nextTurn().then(() => 'held')]), 'held');
  });
});
