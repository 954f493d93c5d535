import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '../../src/store/store.js';
import { tempRoot } from '../helpers/daemon.js';

const addSchedule = (store: ReturnType<typeof openStore>, recipe: string): Promise<unknown> =>
  store.later(() => store.db.prepare("INSERT INTO schedules (recipe, pattern, last_slot) VALUES (?, '0 3 * * *', 1)").run(recipe));

describe('store durability', () => {
  it('deferred: a commit waits for the next sync (an fsync of the WAL) to reach the disk; those who wait together share one sync', async () => {
    const { root, cleanup } = tempRoot();
    const store = openStore(path.join(root, 'hopper.db'), { durability: 'deferred' });
    try {
      assert.equal(store.db.pragma('synchronous', { simple: true }), 1); // NORMAL
      const before = store.syncs();
      await store.sync(); // nothing written since it opened: nothing to do
      assert.equal(store.syncs(), before);
      await addSchedule(store, 'a');
      await addSchedule(store, 'b');
      await Promise.all([store.sync(), store.sync(), store.sync()]);
      assert.equal(store.syncs(), before + 1);
      assert.equal(store.db.pragma('synchronous', { simple: true }), 1, 'still NORMAL');
      await store.sync();
      assert.equal(store.syncs(), before + 1, 'no new commit since: no new sync');
    } finally {
      store.close();
      cleanup();
    }
  });

  it('full (the CLI, the default): every commit is on disk at once, and sync has nothing to do', async () => {
    const { root, cleanup } = tempRoot();
    const store = openStore(path.join(root, 'hopper.db'));
    try {
      assert.equal(store.db.pragma('synchronous', { simple: true }), 2); // FULL
      await addSchedule(store, 'a');
      const before = store.syncs();
      await store.sync();
      assert.equal(store.syncs(), before);
    } finally {
      store.close();
      cleanup();
    }
  });

  it('outsideVersion changes with another connection\'s commit, never with its own', async () => {
    const { root, cleanup } = tempRoot();
    const file = path.join(root, 'hopper.db');
    const daemon = openStore(file, { durability: 'deferred' });
    const cli = openStore(file);
    try {
      const v0 = daemon.outsideVersion();
      await addSchedule(daemon, 'own');
      assert.equal(daemon.outsideVersion(), v0, 'its own commit');
      await addSchedule(cli, 'other');
      assert.notEqual(daemon.outsideVersion(), v0, 'the other connection\'s commit');
    } finally {
      cli.close();
      daemon.close();
      cleanup();
    }
  });

  it('deferred: a commit survives kill -9 of the process that made it, before any sync', { timeout: 30_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const db = path.join(root, 'hopper.db');
    const storeModule = new URL('../../src/store/store.ts', import.meta.url).href;
    const script = `
      const { openStore } = await import(${JSON.stringify(storeModule)});
      const store = openStore(${JSON.stringify(db)}, { durability: 'deferred' });
      await store.later(() => store.db.prepare("INSERT INTO schedules (recipe, pattern, last_slot) VALUES ('kept', '0 3 * * *', 1)").run());
      console.log('committed');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the writer did not commit within 20 s')), 20_000);
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('committed')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`the writer exited (${code}) before it committed`)));
      });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const store = openStore(db);
      try {
        assert.deepEqual(store.db.prepare('SELECT recipe FROM schedules').all(), [{ recipe: 'kept' }]);
      } finally {
        store.close();
      }
    } finally {
      child.kill('SIGKILL');
      cleanup();
    }
  });
});
