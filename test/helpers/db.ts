import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { openStore, type Store } from '../../src/store/store.js';

/** A database as the daemon opens it (deferred durability), in a temp folder, with `schema` run; closed and removed after the test. */
export function tempDb(t: { after(fn: () => void): void }, schema: string): Db {
  const dir = mkdtempSync(path.join(tmpdir(), 'hopper-db-'));
  const db = openDb(path.join(dir, 'test.db'), { durability: 'deferred' });
  db.exec(schema);
  t.after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return db;
}

/** Runs `fn` on a hopper store of its own in a temp folder; closed and removed after, whatever `fn` does. */
export function withTempStore<T>(fn: (store: Store) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'hopper-store-'));
  const store = openStore(path.join(dir, 'hopper.db'));
  try {
    return fn(store);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Numbers below `k`, the same sequence for the same `seed`: for tests of many
 * random operations that must fail the same way twice. A 32-bit LCG, its high
 * bits (a double's product of two 31-bit numbers would lose the low ones).
 */
export function seededPick(seed: number): (k: number) => number {
  let state = seed;
  return (k) => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 16) % k;
}
