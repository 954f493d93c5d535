import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HopperError } from '../src/errors.js';
import { acquireLock, lockHolder } from '../src/lock.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO } from './helpers/cli.js';
import { tempRoot } from './helpers/daemon.js';
import { waitFor } from './helpers/wait.js';

const LOCK = path.join(REPO, 'src', 'lock.ts');

/** `hopper start` on `root` in a child process (not waiting for it to start). */
function startHopper(root: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cli', 'main.ts'), 'start', '--root', root], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let all = '';
  child.stderr.on('data', (c: Buffer) => ((stderr += c.toString()), (all += c.toString())));
  child.stdout.on('data', (c: Buffer) => (all += c.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, exited, stderr: () => stderr, output: () => all };
}

/** Another process that takes the lock and holds it until killed. */
async function holder(file: string): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { acquireLock } from ${JSON.stringify(LOCK)}; globalThis.release = acquireLock(process.argv[1]); console.log('locked'); setInterval(() => {}, 1000);`, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor('the other process to take the lock', () => out.includes('locked') || child.exitCode !== null, 20_000);
  assert.equal(child.exitCode, null, 'the holder started');
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const locked = (pid?: number) => (err: unknown): boolean => {
  assert.ok(err instanceof HopperError && err.code === 'E_LOCKED', String(err));
  if (pid) assert.match(err.message, new RegExp(`another hopper \\(pid ${pid}\\) is running on this root`));
  return true;
};

describe('lock: one daemon per root', () => {
  it('a second taker is refused, naming the holder; after release the lock can be taken again', () => {
    const { root, cleanup } = tempRoot();
    try {
      const file = path.join(root, 'daemon.lock');
      assert.equal(lockHolder(file), undefined, 'never started: no holder');
      const release = acquireLock(file);
      assert.deepEqual(lockHolder(file), { pid: process.pid });
      assert.throws(() => acquireLock(file, 50), locked(process.pid));
      release();
      assert.equal(lockHolder(file), undefined);
      assert.equal(existsSync(path.join(root, 'hopper.pid')), false);
      acquireLock(file)();
    } finally {
      cleanup();
    }
  });

  it('the lock of a process killed with -9 is free at once, though its pid file stays', { timeout: 30_000 }, async () => {
    const { root, cleanup } = tempRoot();
    try {
      const file = path.join(root, 'daemon.lock');
      const other = await holder(file);
      try {
        assert.deepEqual(lockHolder(file), { pid: other.pid });
        assert.throws(() => acquireLock(file, 50), locked(other.pid));
        await other.kill();
        assert.equal(existsSync(path.join(root, 'hopper.pid')), true, 'the dead process left its pid file');
        assert.equal(lockHolder(file), undefined, 'a pid file alone is no holder');
        acquireLock(file)();
      } finally {
        // A failed assertion must not leave the holder running: the test file would never end.
        await other.kill();
      }
    } finally {
      cleanup();
    }
  });

  it("a file in the lock's place that is no lock is reported, not deleted", () => {
    const { root, cleanup } = tempRoot();
    try {
      const file = path.join(root, 'daemon.lock');
      writeFileSync(file, 'something else entirely\n');
      assert.equal(lockHolder(file), undefined);
      assert.throws(() => acquireLock(file), (err: unknown) => err instanceof HopperError && err.code === 'E_LOCKED' && /is not a lock hopper made; if no hopper runs on this root, remove it/.test(err.message));
      assert.equal(readFileSync(file, 'utf8'), 'something else entirely\n');
    } finally {
      cleanup();
    }
  });

  it('of two processes reaching for a new lock at the same moment, one gets it, in each of 8 pairs in a row', { timeout: 120_000 }, async () => {
    // SQLite may refuse both at once (its way out of a deadlock); before acquireLock
    // tried again, two starts at once both stopped about 1 time in 10.
    const script = `const { acquireLock } = await import(${JSON.stringify(LOCK)}); try { globalThis.release = acquireLock(process.argv[1], 500); console.log('got'); setTimeout(() => {}, 1000); } catch { console.log('refused'); }`;
    const take = (file: string): Promise<string> =>
      new Promise((resolve) => {
        let out = '';
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.on('exit', () => resolve(out.trim()));
      });
    const { root, cleanup } = tempRoot();
    try {
      // One pair at a time: side by side, their starts drift apart and the race is rare.
      for (let i = 0; i < 8; i++) {
        const file = path.join(root, `daemon-${i}.lock`);
        const outcomes = (await Promise.all([take(file), take(file)])).sort();
        assert.deepEqual(outcomes, ['got', 'refused'], `pair ${i + 1}`);
      }
    } finally {
      cleanup();
    }
  });

  it('of two `hopper start` at the same moment on one root, exactly one runs', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const started: Array<ReturnType<typeof startHopper>> = [];
    try {
      mkdirSync(path.join(root, 'recipes'), { recursive: true });
      writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\n');
      started.push(startHopper(root), startHopper(root));
      const first = await Promise.race([...started.map((h) => h.exited.then(() => h)), sleep(30_000, undefined, { ref: false }).then(() => undefined)]);
      assert.ok(first, 'one of them stopped within 30 s');
      assert.equal(first.child.exitCode, 1);
      const other = started.find((h) => h !== first)!;
      // Seen once in CI without the pid (the winner's hopper.pid not found alive for 2 s): say what the other printed.
      assert.match(first.stderr(), /another hopper \(pid \d+\) is running on this root/, `the other start (exit ${other.child.exitCode}) printed:\n${other.output().slice(-3000)}`);
      await sleep(500);
      assert.equal(other.child.exitCode, null, 'the other one runs on');
    } finally {
      for (const h of started) {
        h.child.kill('SIGTERM');
        await h.exited;
      }
      cleanup();
    }
  });
});
