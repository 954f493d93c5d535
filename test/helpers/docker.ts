import Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { managerProblem } from '../../src/docker/swarm.js';
import { LABEL_ROOT } from '../../src/steps/container.js';
import { openStore } from '../../src/store/store.js';
import { tempRoot } from './daemon.js';
import { waitFor } from './wait.js';

export const SOCKET = '/var/run/docker.sock';
/** Built from Debian's busybox-static by `docker import`: no registry is needed (or reachable). */
export const TEST_IMAGE = 'hopper-busybox:latest';

export interface DockerForTests {
  client: Docker;
  /** Why Docker tests cannot run here, or undefined when they can. */
  missing: string | undefined;
  /** node:test's `skip` option: the reason, unless HOPPER_REQUIRE_DOCKER=1 makes a missing engine a failure. */
  skip: string | false;
  /** Why Swarm tests cannot run here (the engine is no swarm manager), or undefined when they can. */
  swarmMissing: string | undefined;
  /** `skip` for Swarm tests: .ci/run makes its engine a one-node swarm, so with HOPPER_REQUIRE_DOCKER=1 a missing swarm fails. */
  swarmSkip: string | false;
}

/** Whether the engine is a swarm manager (`docker swarm init --advertise-addr 127.0.0.1` makes it one). */
async function swarmManager(client: Docker): Promise<boolean> {
  try {
    return managerProblem(await client.info(), SOCKET) === undefined;
  } catch {
    return false;
  }
}

/** Services this test root left behind (there should be none). */
export async function servicesOf(client: Docker, root: string): Promise<Docker.Service[]> {
  return client.listServices({ filters: { label: [`${LABEL_ROOT}=${root}`] } });
}

/** Networks this test root left behind (there should be none). */
export async function networksOf(client: Docker, root: string): Promise<Docker.NetworkInspectInfo[]> {
  return client.listNetworks({ filters: { label: [`${LABEL_ROOT}=${root}`] } });
}

async function answers(client: Docker): Promise<boolean> {
  try {
    await Promise.race([client.ping(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 3000).unref())]);
    return true;
  } catch {
    return false;
  }
}

async function hasImage(client: Docker): Promise<boolean> {
  return client
    .getImage(TEST_IMAGE)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** The image .ci/run makes, made here too when missing (so a developer's `npm test` works the same). */
async function buildImage(client: Docker): Promise<void> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new Error('no /bin/busybox here (apt-get install busybox-static)');
  const root = mkdtempSync(path.join(os.tmpdir(), 'hopper-busybox-'));
  try {
    for (const d of ['bin', 'tmp', 'work']) mkdirSync(path.join(root, d));
    copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    for (const applet of execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      if (applet !== 'busybox') symlinkSync('busybox', path.join(root, 'bin', applet));
    }
    const tar = execFileSync('tar', ['-C', root, '-c', ...readdirSync(root)], { maxBuffer: 64 * 1024 * 1024 });
    const { Readable } = await import('node:stream');
    const out = await client.importImage(Readable.from([tar]), { repo: 'hopper-busybox', tag: 'latest', changes: ['ENV PATH=/bin'] } as object);
    await new Promise<void>((resolve, reject) => client.modem.followProgress(out, (err) => (err ? reject(err) : resolve())));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function dockerForTests(): Promise<DockerForTests> {
  const client = new Docker({ socketPath: SOCKET });
  let missing: string | undefined;
  if (!(await answers(client))) missing = `no Docker engine answers at ${SOCKET}`;
  else if (!(await hasImage(client))) {
    try {
      await buildImage(client);
    } catch (err) {
      missing = `the test image ${TEST_IMAGE} could not be made: ${(err as Error).message}`;
    }
  }
  const required = process.env.HOPPER_REQUIRE_DOCKER === '1';
  if (missing && !required) console.log(`# skipping Docker tests: ${missing} (set HOPPER_REQUIRE_DOCKER=1 to make this a failure)`);
  const swarmMissing = missing ?? ((await swarmManager(client)) ? undefined : 'the Docker engine is not a swarm manager (docker swarm init --advertise-addr 127.0.0.1)');
  if (swarmMissing && !missing && !required) console.log(`# skipping Swarm tests: ${swarmMissing} (set HOPPER_REQUIRE_DOCKER=1 to make this a failure)`);
  return { client, missing, skip: missing && !required ? missing : false, swarmMissing, swarmSkip: swarmMissing && !required ? swarmMissing : false };
}

/** Containers this test root left behind (there should be none). */
export async function containersOf(client: Docker, root: string): Promise<Docker.ContainerInfo[]> {
  return client.listContainers({ all: true, filters: { label: [`${LABEL_ROOT}=${root}`] } });
}

/** A container recipe on the test image: `script` runs under sh with params as $1, $2, ... */
export function containerRecipe(name: string, script: string, args: string[] = [], extra: Record<string, unknown> = {}, step: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'recipe',
    name,
    params: { type: 'object' },
    steps: [{ container: { image: TEST_IMAGE, pull: 'never', command: ['sh', '-c', script, 'sh', ...args], ...step } }],
    output: { files: ['out/*'] },
    ...extra,
  };
}

/**
 * A root for `hopper start` in a child process, with the recipe that hangs on its
 * first run (so it can be killed mid-job) and finishes at once on the next;
 * `state()` reads that job's state from the database, as a second process would.
 */
export function orphanRoot(config: string): { root: string; cleanup(): void; state(): string | undefined } {
  const { root, cleanup } = tempRoot();
  mkdirSync(path.join(root, 'recipes'));
  const recipe = containerRecipe('orphan', '[ "$1" = 1 ] && sleep 60; mkdir -p out; echo done > out/x', ['{{job.run}}']);
  writeFileSync(path.join(root, 'recipes', 'orphan.yaml'), stringify(recipe));
  writeFileSync(path.join(root, 'hopper.yaml'), config);
  const state = (): string | undefined => {
    const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
    try {
      return store.jobs.find('orphan')?.state;
    } finally {
      store.close();
    }
  };
  return { root, cleanup, state };
}

/**
 * hopper.yaml's swarm section for tests on this machine's swarm: its tasks stay
 * on the manager (this engine), since another test may have joined a second
 * engine as a worker for a while (test/docker/cluster.test.ts).
 */
export const ON_THIS_NODE = { constraints: ['node.role == manager'] };

/**
 * Waits (bounded) until the engine holds nothing of this root: no container,
 * and on a swarm no service or network (Swarm removes a service's container a
 * moment after the service). Fails listing what is left.
 */
export async function nothingLeft(client: Docker, root: string, swarm: boolean): Promise<void> {
  const left = async (): Promise<string[]> => [
    ...(await containersOf(client, root)).map((c) => `container ${c.Id.slice(0, 12)}`),
    ...(swarm ? (await servicesOf(client, root)).map((x) => `service ${x.Spec?.Name}`) : []),
    ...(swarm ? (await networksOf(client, root)).map((x) => `network ${x.Name}`) : []),
  ];
  await waitFor('nothing left on the engine', async () => (await left()).length === 0, 15_000).catch(async () => assert.deepEqual(await left(), []));
}
