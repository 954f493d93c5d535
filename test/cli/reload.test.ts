import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openStore } from '../../src/store/store.js';
import { startCli } from '../helpers/cli.js';
import { drop, tempRoot } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

function job(root: string, id: string): { state: string; lane: string } | undefined {
  const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
  try {
    const j = store.jobs.find(id);
    return j ? { state: j.state, lane: j.lane } : undefined;
  } finally {
    store.close();
  }
}

describe('cli: SIGHUP', () => {
  it('reloads a changed recipe and config without dropping a running job; a broken config is refused and the old one stays', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    mkdirSync(path.join(root, 'recipes'));
    writeFileSync(path.join(root, 'recipes', 'echo.yaml'), stringify(echoRecipe('echo')));
    writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\n');
    const d = await startCli(root);
    try {
      drop(path.join(root, 'inbox'), 'long.yaml', request('echo', { seconds: 2 }, { id: 'long' }));
      await waitFor('the job to run', () => job(root, 'long')?.state === 'running', 15_000);

      // A changed recipe (now in the slow lane) and a changed config.
      writeFileSync(path.join(root, 'recipes', 'echo.yaml'), stringify(echoRecipe('echo', { lane: 'slow' })));
      writeFileSync(path.join(root, 'hopper.yaml'), 'http: { port: 0 }\nlanes: { slow: { concurrency: 3 } }\n');
      d.child.kill('SIGHUP');
      await waitFor('the reload', () => d.output().includes('config and recipes reloaded'), 10_000);
      drop(path.join(root, 'inbox'), 'after.yaml', request('echo', {}, { id: 'after' }));
      await waitFor('the new job', () => job(root, 'after')?.state === 'succeeded', 15_000);
      assert.equal(job(root, 'after')!.lane, 'slow', 'the reloaded recipe is in force');

      writeFileSync(path.join(root, 'hopper.yaml'), 'lanes: { fast: { concurrency: -1 } }\n');
      d.child.kill('SIGHUP');
      await waitFor('the refusal', () => d.output().includes('new config refused'), 10_000);
      assert.match(d.output(), /lanes\.fast\.concurrency: must be at least 1/);
      assert.equal(d.child.exitCode, null, 'still running');

      await waitFor('the running job to finish', () => job(root, 'long')?.state === 'succeeded', 15_000);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
      cleanup();
    }
  });
});
