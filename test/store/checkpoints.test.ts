import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Checkpoints, passiveCheckpointer, type CheckpointResult } from '../../src/store/checkpoints.js';
import { GroupCommit } from '../../src/store/commit.js';
import { createOffload } from '../../src/workers/offload.js';
import { tempDb } from '../helpers/db.js';
import { ended, testDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const waitUntil = (ok: () => boolean): Promise<unknown> => waitFor('a checkpoint', () => ok() || undefined, 5000);

const SCHEMA = 'CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)';
const autocheckpoint = (db: ReturnType<typeof tempDb>): unknown => db.pragma('wal_autocheckpoint', { simple: true });
const write = (db: ReturnType<typeof tempDb>, bytes = 1024): unknown => db.prepare('INSERT INTO t (data) VALUES (?)').run(Buffer.alloc(bytes, 7));

/** A checkpoint runner that settles when told, and counts its calls. */
function heldRunner(): { run: () => Promise<CheckpointResult>; calls: number; release(): void } {
  let release = (): void => {};
  const r = {
    calls: 0,
    run: () => {
      r.calls++;
      return new Promise<CheckpointResult>((resolve) => (release = () => resolve({ log: 0, checkpointed: 0 })));
    },
    release: () => release(),
  };
  return r;
}

describe('Checkpoints', () => {
  it('hands the main connection a backstop of 10,000 pages while it runs, and SQLite its own 1,000 back when stopped', (t) => {
    const db = tempDb(t, SCHEMA);
    const c = new Checkpoints(db, async () => ({ log: 0, checkpointed: 0 }), { onFailure: () => assert.fail('no failure') });
    assert.equal(autocheckpoint(db), 1000);
    c.start();
    assert.equal(autocheckpoint(db), 10000);
    c.stop();
    assert.equal(autocheckpoint(db), 1000);
  });

  it('asks for a checkpoint only after commits, and never for a second while one runs', async (t) => {
    const db = tempDb(t, SCHEMA);
    const runner = heldRunner();
    const c = new Checkpoints(db, runner.run, { everyMs: 60_000, onFailure: () => assert.fail('no failure') });
    c.start();
    t.after(() => c.stop());
    await c.tick();
    assert.equal(runner.calls, 0, 'nothing committed since it started');
    write(db);
    const first = c.tick();
    write(db);
    await c.tick();
    assert.equal(runner.calls, 1, 'one under way: the second tick waits for the next');
    runner.release();
    await first;
    assert.equal(c.done, 1);
    const second = c.tick();
    assert.equal(runner.calls, 2, 'what was committed meanwhile gets the next');
    runner.release();
    await second;
  });

  it('after a failure the main connection checkpoints by itself; the thread is asked again later, and takes over when it works', async (t) => {
    const db = tempDb(t, SCHEMA);
    const said: string[] = [];
    let calls = 0;
    const c = new Checkpoints(
      db,
      async () => {
        calls++;
        if (calls <= 2) throw new Error('the thread stopped');
        return { log: 0, checkpointed: 0 };
      },
      { everyMs: 60_000, retryMs: 40, onFailure: (err) => said.push(`failed: ${(err as Error).message}`), onRecovery: () => said.push('recovered') },
    );
    c.start();
    t.after(() => c.stop());
    write(db);
    await c.tick();
    assert.equal(autocheckpoint(db), 1000, 'SQLite checkpoints by itself meanwhile');
    write(db);
    await c.tick();
    assert.equal(calls, 1, 'not asked again before retryMs');
    await sleep(50);
    await c.tick();
    assert.equal(calls, 2);
    assert.deepEqual(said, ['failed: the thread stopped'], 'a streak of failures is said once');
    await sleep(50);
    write(db);
    await c.tick();
    assert.equal(calls, 3);
    assert.deepEqual(said, ['failed: the thread stopped', 'recovered']);
    assert.equal(autocheckpoint(db), 10000, 'the thread has it again');
  });

  it('a failure after stop (the threads stop before the store closes) is not said', async (t) => {
    const db = tempDb(t, SCHEMA);
    const failures: unknown[] = [];
    let reject = (_err: Error): void => {};
    const c = new Checkpoints(db, () => new Promise((_resolve, no) => (reject = no)), { everyMs: 60_000, onFailure: (err) => failures.push(err) });
    c.start();
    write(db);
    const tick = c.tick();
    c.stop();
    reject(new Error('E_WORKER'));
    await tick;
    assert.deepEqual(failures, []);
  });

  it('on a step thread: the WAL is copied back without the main connection, and starts over at the next write', async (t) => {
    const db = tempDb(t, SCHEMA);
    const file = db.name;
    const offload = createOffload(1);
    t.after(() => offload.close());
    const c = new Checkpoints(db, () => offload.checkpoint(file), { everyMs: 20, onFailure: (err) => assert.fail(String(err)) });
    c.start();
    t.after(() => c.stop());
    // 120 commits of 128 KiB: 15 MiB through the WAL, under the main connection's backstop
    // (40 MiB), so only the thread checkpoints; commits come while it does.
    for (let i = 0; i < 120; i++) {
      db.transaction(() => {
        for (let k = 0; k < 32; k++) write(db, 4000);
      })();
      await sleep(2);
    }
    await waitUntil(() => c.done > 0);
    // A quiet moment: a checkpoint on the thread copies all (one still under way from the
    // loop may not have), and the next write starts the WAL over.
    write(db);
    await offload.checkpoint(file);
    write(db);
    const [after] = db.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[];
    assert.ok(after.log < 10, `the WAL started over (it holds ${after.log} frames, not thousands)`);
    assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 120 * 32 + 2);
  });
});

describe('Checkpoints under steady commits', () => {
  it('the WAL starts over while commits keep coming: once it is long, a checkpoint holds the commits, and the next commit starts it over', async (t) => {
    const db = tempDb(t, SCHEMA);
    const file = db.name;
    const offload = createOffload(1);
    t.after(() => offload.close());
    const group = new GroupCommit(db);
    let holds = 0;
    const results: CheckpointResult[] = [];
    const run = async (): Promise<CheckpointResult> => {
      const r = await offload.checkpoint(file);
      results.push(r);
      return r;
    };
    // A hold as long as the checkpoint takes, however slow the disk (the daemon caps it at 100 ms).
    const c = new Checkpoints(db, run, { everyMs: 60_000, onFailure: (err) => assert.fail(String(err)), hold: () => (holds++, group.hold()), holdMaxMs: 60_000 });
    await offload.checkpoint(file); // the thread up first
    c.start();
    t.after(() => c.stop());
    // ~5,000 frames in the WAL, then commits through the group every millisecond, as under load.
    for (let i = 0; i < 160; i++) {
      db.transaction(() => {
        for (let k = 0; k < 32; k++) write(db, 4000);
      })();
    }
    let writing = true;
    const writes: Array<Promise<unknown>> = [];
    const writer = (async () => {
      while (writing) {
        for (let k = 0; k < 4; k++) writes.push(group.later(() => write(db, 4000)));
        await sleep(1);
      }
    })();
    await c.tick(); // copies what it finds, and learns the WAL is long
    assert.equal(holds, 0, 'the first did not know');
    await c.tick(); // with the commits held: it copies all, and the next commit starts the WAL over
    assert.equal(holds, 1);
    assert.equal(c.holds, 1);
    writing = false;
    await writer;
    await Promise.all(writes); // those held, and a few after
    const held = results[1];
    const { log } = await offload.checkpoint(file);
    // Only a WAL that started over is shorter than before (without the hold it grew on, from ~5,600 frames).
    assert.ok(log < held.log, `the WAL started over: ${log} frames now, ${held.log} at the held checkpoint`);
    assert.equal(db.prepare('SELECT count(*) FROM t').pluck().get(), 160 * 32 + writes.length);
  });

  it('a hold ends after holdMaxMs when the checkpoint does not come back', { timeout: 5000 }, async (t) => {
    const db = tempDb(t, SCHEMA);
    const group = new GroupCommit(db);
    let calls = 0;
    // The first answers that the WAL is long; the second never answers (a thread busy with one long step).
    const run = (): Promise<CheckpointResult> => (++calls === 1 ? Promise.resolve({ log: 5000, checkpointed: 5000 }) : new Promise(() => {}));
    const c = new Checkpoints(db, run, { everyMs: 60_000, onFailure: () => assert.fail('no failure'), hold: () => group.hold(), holdMaxMs: 50 });
    c.start();
    t.after(() => c.stop());
    write(db);
    await c.tick();
    write(db);
    void c.tick();
    const t0 = performance.now();
    await group.later(() => write(db));
    const waited = performance.now() - t0;
    assert.equal(calls, 2);
    assert.ok(waited >= 40 && waited < 1000, `the commit waited for the hold, then went (${waited.toFixed(0)} ms)`);
  });

  it('after a hold that ran out before its checkpoint ended, the next 1, 2, 4 ... checkpoints hold nothing; after one that copied all inside its hold, the next holds nothing either', async (t) => {
    const db = tempDb(t, SCHEMA);
    let slow = true;
    let log = 5000;
    const run = async (): Promise<CheckpointResult> => {
      if (slow) await sleep(40);
      return { log, checkpointed: log };
    };
    const c = new Checkpoints(db, run, { everyMs: 60_000, onFailure: () => assert.fail('no failure'), hold: () => () => {}, holdMaxMs: 10 });
    c.start();
    t.after(() => c.stop());
    const heldAt: number[] = [];
    for (let i = 1; i <= 9; i++) {
      if (i === 7) slow = false;
      if (i === 8) log = 6000;
      const before = c.holds;
      write(db);
      await c.tick();
      if (c.holds > before) heldAt.push(i);
    }
    // 1 learns the WAL is long; 2 holds and runs out, so 3 does not; 4 runs out, so 5 and 6 do not;
    // 7 ends inside its hold (the WAL starts over), so 8 does not; 8 finds it long again, so 9 holds.
    assert.deepEqual(heldAt, [2, 4, 7, 9]);
  });

  it('a short WAL holds nothing', async (t) => {
    const db = tempDb(t, SCHEMA);
    let holds = 0;
    const c = new Checkpoints(db, async () => ({ log: 100, checkpointed: 100 }), { everyMs: 60_000, onFailure: () => assert.fail('no failure'), hold: () => (holds++, () => {}) });
    c.start();
    t.after(() => c.stop());
    for (let i = 0; i < 3; i++) {
      write(db);
      await c.tick();
    }
    assert.equal(holds, 0);
  });
});

describe('passiveCheckpointer', () => {
  it('copies the WAL into the database on a connection of its own, and waits for no reader', (t) => {
    const db = tempDb(t, SCHEMA);
    const checkpoint = passiveCheckpointer();
    db.pragma('wal_autocheckpoint = 0');
    for (let i = 0; i < 50; i++) write(db, 2000);
    const r = checkpoint(db.name);
    assert.ok(r.log > 0);
    assert.equal(r.checkpointed, r.log, 'every frame is in the database file now');
    // A reader on an older snapshot: PASSIVE copies what it can, at once, and says how far it got.
    const reader = new Database(db.name, { readonly: true });
    t.after(() => reader.close());
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM t').get();
    for (let i = 0; i < 10; i++) write(db, 2000);
    const started = performance.now();
    const held = checkpoint(db.name);
    assert.ok(performance.now() - started < 1000, 'it did not wait for the reader');
    assert.ok(held.checkpointed < held.log, 'the frames the reader may still need stay in the WAL');
    reader.exec('COMMIT');
    const after = checkpoint(db.name);
    assert.equal(after.checkpointed, after.log);
  });
});

describe('checkpoints in the daemon', () => {
  it('a daemon holds its commits for a checkpoint once the WAL is long, and intake waits with them', { timeout: 60_000 }, async () => {
    const d = await testDaemon({ recipes: { e: echoRecipe('e') } });
    try {
      // 20 MiB through the WAL, as many jobs' writes would be.
      d.ctx.store.db.exec('CREATE TABLE filler (data BLOB)');
      for (let i = 0; i < 160; i++) {
        await d.ctx.store.later(() => {
          for (let k = 0; k < 32; k++) d.ctx.store.db.prepare('INSERT INTO filler (data) VALUES (?)').run(Buffer.alloc(4000, 1));
        });
        await sleep(2);
      }
      await waitFor('a held checkpoint', () => ((d.checkpoints?.holds ?? 0) > 0 ? true : undefined), 10_000, 20);
      // While held, a dropped request is read but not stored; stored at the release.
      const release = d.ctx.store.hold();
      try {
        d.drop('held.yaml', request('e', { text: 'x' }, { id: 'held-1' }));
        await sleep(1500);
        assert.equal(d.ctx.store.jobs.find('held-1'), undefined, 'not stored while the commits are held');
      } finally {
        release(); // the daemon's stop waits for its commits
      }
      assert.equal((await d.job('held-1', ended)).state, 'succeeded');
    } finally {
      await d.cleanup();
    }
  });


  it('a daemon checkpoints on its step thread, and leaves no WAL behind when it stops (the thread let go of the file)', async () => {
    const d = await testDaemon({ recipes: { e: echoRecipe('e') } });
    try {
      for (let i = 0; i < 5; i++) d.drop(`r${i}.yaml`, request('e', { text: 'x' }, { id: `wal-${i}` }));
      for (let i = 0; i < 5; i++) await d.job(`wal-${i}`, ended);
      await waitUntil(() => (d.checkpoints?.done ?? 0) > 0);
      assert.equal(d.ctx.store.db.pragma('wal_autocheckpoint', { simple: true }), 10000);
      assert.ok(existsSync(path.join(d.root, 'state', 'hopper.db-wal')), 'a WAL while it runs');
      await d.stop();
      assert.ok(!existsSync(path.join(d.root, 'state', 'hopper.db-wal')));
    } finally {
      await d.cleanup();
    }
  });

  it('with threads: 0 SQLite checkpoints by itself', async () => {
    const d = await testDaemon({ recipes: { e: echoRecipe('e') }, config: { threads: 0 } });
    try {
      assert.equal(d.checkpoints, undefined);
      assert.equal(d.ctx.store.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    } finally {
      await d.cleanup();
    }
  });
});
