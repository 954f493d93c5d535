import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startCli } from '../helpers/cli.js';
import { drop, ended, tempRoot, testDaemon } from '../helpers/daemon.js';
import { containerRecipe, containersOf, dockerForTests, orphanRoot, SOCKET } from '../helpers/docker.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const docker = await dockerForTests();

/** A socket that forwards to the real engine once `open()` is called: an engine that comes back. */
function engineProxy(file: string): { open(): Promise<void>; close(): Promise<void> } {
  const server = net.createServer((client) => {
    const upstream = net.connect(SOCKET);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return {
    open: () => new Promise((resolve) => server.listen(file, resolve)),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
      }),
  };
}

async function health(url: string): Promise<{ docker: string }> {
  return (await fetch(`${url}/healthz`)).json() as Promise<{ docker: string }>;
}

describe('docker engine away and back', { skip: docker.skip }, () => {
  it('container jobs wait while the engine does not answer, and run when it is back; /healthz says so', { timeout: 60_000 }, async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    const { root, cleanup } = tempRoot();
    const sock = path.join(root, 'engine.sock');
    const proxy = engineProxy(sock);
    const d = await testDaemon({
      root,
      dockerSocket: sock,
      dockerPingMs: 200,
      recipes: {
        boxed: containerRecipe('boxed', 'mkdir -p out; echo back > out/x'),
        brief: containerRecipe('brief', 'mkdir -p out; echo x > out/x', [], { timeout: '1s' }),
      },
    });
    try {
      assert.equal((await health(d.http.address())).docker, 'down');
      d.drop('boxed.yaml', request('boxed', {}, { id: 'boxed' }));
      const waiting = await d.job('boxed', (j) => j.waitReason !== null);
      assert.match(waiting.waitReason!, /waiting for the Docker engine/);
      assert.equal(waiting.state, 'queued');

      d.drop('brief.yaml', request('brief', {}, { id: 'brief' }));
      const gaveUp = await d.job('brief', ended, 10_000);
      assert.equal(gaveUp.errorCode, 'E_DOCKER_DOWN', 'a job fails once it waited its whole timeout');

      await proxy.open();
      await waitFor('docker up', async () => (await health(d.http.address())).docker === 'up', 10_000);
      assert.equal((await d.job('boxed', ended, 30_000)).state, 'succeeded');
    } finally {
      await d.cleanup();
      await proxy.close();
      cleanup();
    }
  });
});

describe('docker: a hopper killed mid-job', { skip: docker.skip }, () => {
  it('after kill -9 a restart removes the orphaned container and runs the job again', { timeout: 90_000 }, async () => {
    assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
    // The first run hangs; the next one (after the kill, the same attempt) finishes at once.
    const { root, cleanup, state } = orphanRoot('http: { port: 0 }\n');
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'orphan.yaml', request('orphan', {}, { id: 'orphan' }));
      const [left] = await waitFor('the container to run', async () => {
        const cs = await containersOf(docker.client, root);
        return cs.length && cs[0].State === 'running' ? cs : undefined;
      }, 30_000);
      d.child.kill('SIGKILL');
      await d.exited;
      assert.equal((await containersOf(docker.client, root)).length, 1, 'the container outlived hopper');
      d = await startCli(root);
      try {
        await waitFor('the job to succeed', () => state() === 'succeeded', 30_000, 100);
        const after = await containersOf(docker.client, root);
        assert.ok(!after.some((c) => c.Id === left.Id), 'the orphan was removed');
        assert.deepEqual(after, []);
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      for (const c of await containersOf(docker.client, root)) await docker.client.getContainer(c.Id).remove({ force: true });
      cleanup();
    }
  });
});
