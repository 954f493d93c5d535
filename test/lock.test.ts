import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { HopperError } from '../src/errors.js';
import { acquireLock, lockHolder } from '../src/lock.js';
import { hopper, REPO } from './helpers/cli.js';
import { tempRoot } from './helpers/daemon.js';
import { waitFor } from './helpers/wait.js';

const LOCK = path.join(REPO, 'src', 'lock.ts');

/** Another process that takes the lock and holds it until killed. */
async function holder(file: string): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { acquireLock } from ${JSON.stringify(LOCK)}; acquireLock(process.argv[1]); console.log('locked'); setInterval(() => {}, 1000);`, file], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
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
      assert.deepEqual(lockHolder(file), { pid: other.pid });
      assert.throws(() => acquireLock(file, 50), locked(other.pid));
      await other.kill();
      assert.equal(existsSync(path.join(root, 'hopper.pid')), true, 'the dead process left its pid file');
      assert.equal(lockHolder(file), undefined, 'a pid file alone is no holder');
      acquireLock(file)();
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

  it('of two `hopper start` at the same moment on one root, exactly one runs', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    try {
      mkdirSync(path.join(root, 'recipes'), { recursive: true });
      writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\n');
      const both = [hopper(['start', '--root', root], { timeoutMs: 8000 }).catch((e: Error) => e), hopper(['start', '--root', root], { timeoutMs: 8000 }).catch((e: Error) => e)];
      const [a, b] = await Promise.all(both);
      // The one that runs is still running when the bound ends (an Error); the other exits 1.
      const results = [a, b];
      const refused = results.filter((r) => !(r instanceof Error));
      assert.equal(refused.length, 1, `one refused: ${JSON.stringify(results.map((r) => (r instanceof Error ? 'ran' : r)))}`);
      const r = refused[0] as Exclude<(typeof results)[number], Error>;
      assert.equal(r.code, 1);
      assert.match(r.stderr, /another hopper \(pid \d+\) is running on this root/);
    } finally {
      cleanup();
    }
  });
});
