import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, renameSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { BATCH_MAX, InboxArrivals, readiness } from '../../src/inbox/arrivals.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/wait.js';

describe('readiness', () => {
  const file = { size: 10, mtimeMs: 1000, regular: true };
  it('a file seen arriving by rename, with content, is ready at once', () => {
    assert.deepEqual(readiness(file, { written: false, lastEventAt: 1000 }, 1001, 5000), { ready: true });
  });
  it('a file written in place waits until it has been left alone for the settle time', () => {
    assert.deepEqual(readiness(file, { written: true, lastEventAt: 1200 }, 1300, 250), { ready: false, recheckInMs: 150 });
    assert.deepEqual(readiness(file, { written: true, lastEventAt: 1200 }, 1450, 250), { ready: true });
  });
  it('an empty file waits (a writer may have only created it yet)', () => {
    assert.equal(readiness({ ...file, size: 0 }, { written: false, lastEventAt: 1000 }, 1001, 250).ready, false);
  });
  it('a file found without an event (at start, by a rescan) is judged by its mtime', () => {
    assert.deepEqual(readiness(file, undefined, 1100, 250), { ready: false, recheckInMs: 150 });
    assert.deepEqual(readiness(file, undefined, 1300, 250), { ready: true });
  });
  it('a symlink, a FIFO or a device is ready at once (to be rejected)', () => {
    assert.deepEqual(readiness({ ...file, regular: false }, undefined, 1000, 250), { ready: true });
  });
});

type Got = Array<{ at: number; files: string[]; texts: string[] }>;

/** InboxArrivals on a fresh temp folder, started; `body` runs with it, then it is stopped and the folder removed. */
async function withArrivals(settleMs: number, body: (dir: string, got: Got) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-arrivals-'));
  const got: Got = [];
  const a = new InboxArrivals({
    dir,
    settleMs,
    rescanMs: 0,
    log: silentLogger(),
    onBatch: async (files) => {
      got.push({ at: Date.now(), files: files.map((f) => path.basename(f)), texts: files.map((f) => readFileSync(f, 'utf8')) });
      // Taken files leave the inbox, as intake moves them.
      for (const f of files) rmSync(f, { force: true });
    },
  });
  await a.start();
  try {
    await body(dir, got);
  } finally {
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('InboxArrivals', () => {
  it('a file renamed in is handed over at once, without waiting the settle time', async () => {
    await withArrivals(5000, async (dir, got) => {
      writeFileSync(path.join(dir, '.r.tmp'), 'kind: request\n');
      const t0 = Date.now();
      renameSync(path.join(dir, '.r.tmp'), path.join(dir, 'r.yaml'));
      await waitFor('the file', () => got.length === 1, 3000, 2);
      assert.ok(got[0].at - t0 < 1000, `taken after ${got[0].at - t0} ms, well before the 5 s settle time`);
      assert.deepEqual(got[0].files, ['r.yaml']);
    });
  });

  it('a file written in place, with pauses, is handed over once, whole, after it is left alone', async () => {
    await withArrivals(300, async (dir, got) => {
      const fd = openSync(path.join(dir, 'slow.yaml'), 'w');
      for (const part of ['kind: request\n', 'recipe: echo\n', 'params: { text: done }\n']) {
        writeSync(fd, part);
        await sleep(120);
      }
      closeSync(fd);
      await waitFor('the file', () => got.length === 1, 5000);
      await sleep(400);
      assert.equal(got.length, 1, 'handed over once');
      assert.equal(got[0].texts[0], 'kind: request\nrecipe: echo\nparams: { text: done }\n');
    });
  });

  it('many files renamed in at once come in few batches of at most BATCH_MAX; a symlink is handed over too', async () => {
    await withArrivals(5000, async (dir, got) => {
      symlinkSync('/etc/hostname', path.join(dir, 'link.yaml'));
      // From another process: as writers do.
      const script = `const fs=require('fs'),p=require('path');for(let i=0;i<300;i++){const t=p.join(process.argv[1],'.f'+i+'.tmp');fs.writeFileSync(t,'n'+i);fs.renameSync(t,p.join(process.argv[1],'f'+String(i).padStart(3,'0')+'.yaml'));}`;
      await new Promise<void>((resolve) => spawn(process.execPath, ['-e', script, dir], { stdio: 'inherit' }).on('exit', () => resolve()));
      await waitFor('all files', () => got.flatMap((g) => g.files).length === 301, 5000).catch((e) => { throw new Error(`${e.message}: got ${got.flatMap((g) => g.files).length} in ${got.length}`); });
      assert.ok(got.every((g) => g.files.length <= BATCH_MAX), `a batch over ${BATCH_MAX}: ${got.map((g) => g.files.length).join(', ')}`);
      assert.ok(got.length < 2 * Math.ceil(301 / BATCH_MAX), `${got.length} batches for 301 files (not one per file)`);
      const names = got.flatMap((g) => g.files).filter((n) => n.startsWith('f'));
      assert.equal(new Set(names).size, 300, 'each once');
    });
  });
});
