import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { atomically, runUnits } from '../../src/store/atomic.js';
import { GroupCommit } from '../../src/store/commit.js';
import { isDatabaseTrouble, type Db } from '../../src/store/db.js';
import { tempDb } from '../helpers/db.js';

const withDb = (t: { after(fn: () => void): void }): Db => tempDb(t, 'CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');

const put = (db: Db, k: string, v = 1): void => void db.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run(k, v);
const keys = (db: Db): string[] => db.prepare<[], { k: string }>('SELECT k FROM t ORDER BY k').all().map((r) => r.k);

/** A unit of two writes that throws between them, after the first one has landed. */
const halfThenThrow = (db: Db, k: string) => (): never =>
  atomically(db, () => {
    put(db, `${k}-1`);
    throw new Error(`${k} refused`);
  });

describe('store/atomic', () => {
  it('atomically() outside a transaction is one of its own: a throw undoes the writes before it', (t) => {
    const db = withDb(t);
    assert.throws(halfThenThrow(db, 'a'), /a refused/);
    assert.deepEqual(keys(db), []);
    assert.equal(db.inTransaction, false);
    atomically(db, () => put(db, 'b'));
    assert.deepEqual(keys(db), ['b']);
  });

  it('runUnits() keeps every unit when none fails, in one transaction', (t) => {
    const db = withDb(t);
    const seen: boolean[] = [];
    const out = runUnits(db, ['a', 'b', 'c'].map((k) => () => (seen.push(db.inTransaction), put(db, k), k)), isDatabaseTrouble);
    assert.deepEqual(out, ['a', 'b', 'c'].map((value) => ({ ok: true, value })));
    assert.deepEqual(seen, [true, true, true]);
    assert.deepEqual(keys(db), ['a', 'b', 'c']);
  });

  it('runUnits() undoes a failing unit whole, writes before its throw included, and keeps the others', (t) => {
    const db = withDb(t);
    const out = runUnits(db, [() => put(db, 'a'), halfThenThrow(db, 'b'), () => put(db, 'c')], isDatabaseTrouble);
    assert.equal(out[0].ok, true);
    assert.equal(out[1].ok, false);
    assert.match(String((out[1] as { err: Error }).err), /b refused/);
    assert.equal(out[2].ok, true);
    assert.deepEqual(keys(db), ['a', 'c']);
  });

  it('runUnits() runs a unit that fails on a constraint alone too (a duplicate key), the rest kept', (t) => {
    const db = withDb(t);
    put(db, 'x');
    const out = runUnits(db, [() => put(db, 'a'), () => put(db, 'x'), () => put(db, 'b')], isDatabaseTrouble);
    assert.deepEqual(out.map((o) => o.ok), [true, false, true]);
    assert.deepEqual(keys(db), ['a', 'b', 'x']);
  });

  it('runUnits() keeps nothing and throws when an error is fatal', (t) => {
    const db = withDb(t);
    const fatal = (err: unknown): boolean => (err as Error).message === 'disk gone';
    assert.throws(
      () =>
        runUnits(db, [() => put(db, 'a'), () => {
          throw new Error('disk gone');
        }], fatal),
      /disk gone/,
    );
    assert.deepEqual(keys(db), []);
    assert.equal(db.inTransaction, false);
  });

  it('GroupCommit: a write that throws rejects alone; the others resolve after the commit with their values', async (t) => {
    const db = withDb(t);
    const group = new GroupCommit(db);
    const a = group.later(() => (put(db, 'a'), 'A'));
    const b = group.later(halfThenThrow(db, 'b'));
    const c = group.later(() => (put(db, 'c'), 'C'));
    assert.deepEqual(keys(db), []); // nothing written before the group's turn
    assert.equal(await a, 'A');
    await assert.rejects(b, /b refused/);
    assert.equal(await c, 'C');
    assert.deepEqual(keys(db), ['a', 'c']);
  });
});
