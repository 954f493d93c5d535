import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';

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
