import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { processesOf } from '../../src/steps/leftovers.js';
import { openStore } from '../../src/store/store.js';
import { drop, tempRoot } from '../helpers/daemon.js';
import { hopper, startCli } from '../helpers/cli.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

function setUp(root: string, recipe = echoRecipe('echo', { retries: { attempts: 2, delay: '100ms' } })): void {
  mkdirSync(path.join(root, 'recipes'), { recursive: true });
  writeFileSync(path.join(root, 'recipes', 'echo.yaml'), stringify(recipe));
  writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\nshutdown: { grace: 300ms }\n');
}

/** A process that exists and is not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

function jobState(root: string, requestId: string): { state: string; attempts: number; count: number } | undefined {
  const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
  try {
    const job = store.jobs.find(requestId);
    const count = (store.db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    return job ? { state: job.state, attempts: job.attempts, count } : undefined;
  } finally {
    store.close();
  }
}

describe('cli: start', () => {
  it('a bad config stops start with a clear message and exit 2', async () => {
    const { root, cleanup } = tempRoot();
    try {
      writeFileSync(path.join(root, 'hopper.yaml'), 'lanes:\n  fast: { concurency: 2 }\n');
      const r = await hopper(['start', '--root', root]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /hopper\.yaml:2:\d+: lanes\.fast\.concurency: unknown key \(did you mean "concurrency"\?\)/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      cleanup();
    }
  });

  it('submit --wait follows a job to success; a bad submit fails before touching the inbox', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    setUp(root);
    const d = await startCli(root);
    try {
      const r = await hopper(['submit', 'echo', '--root', root, '-p', 'text=from the cli', '--wait', '--timeout', '30s']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /submitted submit-/);
      assert.match(r.stdout, /started/);
      assert.match(r.stdout, /succeeded/);
      assert.match(r.stdout, /output: .*result\.txt/);

      const bad = await hopper(['submit', 'echo', '--root', root, '-p', 'nope=1']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /params\.nope: unknown key/);
      const usage = await hopper(['submit', 'echo', '--root', root, '-p', 'novalue']);
      assert.equal(usage.code, 2);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
      cleanup();
    }
  });

  it('started from the source (an edit not yet built), its step threads load the TypeScript and run jobs', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    setUp(root);
    writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\nthreads: 1\n');
    const d = await startCli(root, [], { source: true });
    try {
      drop(path.join(root, 'inbox'), 'a.yaml', request('echo', { text: 'from source' }, { id: 'src-1' }));
      await waitFor('the job to end', () => ['succeeded', 'failed'].includes(jobState(root, 'src-1')?.state ?? ''), 30_000);
      assert.equal(jobState(root, 'src-1')?.state, 'succeeded', d.output().slice(-2000));
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
      cleanup();
    }
  });

  it('SIGTERM lets the grace period pass, requeues the running job, and exits 0', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    setUp(root);
    try {
      const d = await startCli(root);
      drop(path.join(root, 'inbox'), 'long.yaml', request('echo', { text: 'x', seconds: 20 }, { id: 'long' }));
      await waitFor('the job to run', () => jobState(root, 'long')?.state === 'running', 15_000);
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0);
      assert.match(d.output(), /"hopper stopped"/);
      assert.deepEqual(jobState(root, 'long'), { state: 'queued', attempts: 0, count: 1 });
    } finally {
      cleanup();
    }
  });

  it('after kill -9 a restart retries the interrupted job once, and makes nothing twice', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    setUp(root);
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'crash.yaml', request('echo', { text: 'survived', seconds: 3 }, { id: 'crash' }));
      await waitFor('the job to run', () => jobState(root, 'crash')?.state === 'running', 15_000);
      d.child.kill('SIGKILL');
      await d.exited;
      d = await startCli(root);
      try {
        await waitFor('the job to succeed', () => jobState(root, 'crash')?.state === 'succeeded', 30_000, 100);
        assert.deepEqual(jobState(root, "crash"), { state: "succeeded", attempts: 1, count: 1 }, "the interrupted attempt does not count");
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      cleanup();
    }
  });

  it('after kill -9 a restart stops the commands the dead hopper left running before the job runs again', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    // The first run sleeps (and forks a child into its group); the second finds the marker and finishes.
    const marker = path.join(root, 'first-run');
    const recipe = echoRecipe('echo', {
      params: { type: 'object', properties: { marker: { type: 'string' } } },
      steps: [{ run: { command: ['sh', '-c', 'if [ -e "$1" ]; then mkdir -p out; echo second > out/result.txt; else touch "$1"; sleep 60 & sleep 60; fi', 'sh', '{{params.marker}}'] } }],
    });
    setUp(root, recipe);
    let left: Array<{ pid: number }> = [];
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'r.yaml', request('echo', { marker }, { id: 'orphaned' }));
      const job = await waitFor('the job to run', () => {
        const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
        try {
          return store.jobs.find('orphaned');
        } finally {
          store.close();
        }
      }, 15_000);
      const workDir = path.join(root, 'state', 'jobs', job.id, 'work');
      left = await waitFor('sh and both sleeps', () => {
        const ps = processesOf([workDir]).get(workDir) ?? [];
        return ps.length >= 3 ? ps : undefined;
      }, 15_000);
      d.child.kill('SIGKILL');
      await d.exited;
      assert.ok(left.every((p) => alive(p.pid)), 'the commands outlived hopper');
      // Started again through another spelling of the same root (a symlink).
      const link = `${root}-link`;
      symlinkSync(root, link);
      d = await startCli(link);
      try {
        await waitFor('the job to succeed', () => jobState(root, 'orphaned')?.state === 'succeeded', 30_000, 100);
        await waitFor('the left-over processes to be gone', () => left.every((p) => !alive(p.pid)), 5_000);
        assert.match(d.output(), /stopped commands left running by a hopper that stopped unexpectedly/);
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      for (const p of left) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
      rmSync(`${root}-link`, { force: true });
      cleanup();
    }
  });
});
