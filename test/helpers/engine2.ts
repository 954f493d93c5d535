import Docker from 'dockerode';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { TEST_IMAGE } from './docker.js';
import { waitFor } from './wait.js';

/**
 * A second, real Docker engine on this machine: its own data root, exec root,
 * socket and bridge, no iptables (the first engine owns those). Not in a swarm
 * until `joinAsWorker`. Needs root, as the first one does.
 *
 * Its bridge is one of its own: `--bridge none` would make dockerd delete
 * docker0 at start, which is the first engine's (seen here).
 */
export interface SecondEngine {
  socket: string;
  client: Docker;
  /** The engine dies at once (a node lost): its containers live on, outside any engine, until `stop`. */
  kill9(): Promise<void>;
  /** Joins the first engine's swarm as a worker labelled `label=value`; returns its node id. */
  joinAsWorker(manager: Docker, label: [string, string]): Promise<string>;
  stop(): Promise<void>;
}

export async function startSecondEngine(): Promise<SecondEngine> {
  // Short paths: a unix socket's path has a 108-byte limit.
  const dir = mkdtempSync('/tmp/hde-');
  const socket = path.join(dir, 'docker.sock');
  const bridge = `hde${process.pid % 100000}`;
  execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', `10.199.${process.pid % 250}.1/24`, 'dev', bridge]);
  execFileSync('ip', ['link', 'set', bridge, 'up']);
  const child: ChildProcess = spawn(
    'dockerd',
    ['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '-H', `unix://${socket}`, '--pidfile', path.join(dir, 'docker.pid'), '--bridge', bridge, '--iptables=false', '--ip-masq=false'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new Docker({ socketPath: socket });
  let nodeId: string | undefined;
  let manager: Docker | undefined;
  const stop = async (): Promise<void> => {
    if (nodeId) {
      await client.swarmLeave({ force: true }).catch(() => {});
      await manager?.getNode(nodeId).remove({ force: true }).catch(() => {});
    }
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    child.kill('SIGKILL');
    forceCleanup(dir);
    try {
      execFileSync('ip', ['link', 'del', bridge]);
    } catch {
      /* gone already */
    }
  };
  try {
    await waitFor('the second engine to answer', () => client.ping().then(() => true, () => false), 20_000, 200);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    socket,
    client,
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    async joinAsWorker(first, [key, value]) {
      manager = first;
      // The image by `docker save | docker load`: no registry here.
      const image = await first.getImage(TEST_IMAGE).get();
      await new Promise<void>((resolve, reject) => client.loadImage(image, {}, (err, out: NodeJS.ReadableStream | undefined) => (err ? reject(err) : out ? (out.on('end', resolve), out.on('error', reject), out.resume()) : resolve())));
      const swarm = (await first.swarmInspect()) as { JoinTokens: { Worker: string } };
      await client.swarmJoin({ ListenAddr: '127.0.0.2:2377', AdvertiseAddr: '127.0.0.2', RemoteAddrs: ['127.0.0.1:2377'], JoinToken: swarm.JoinTokens.Worker });
      nodeId = ((await client.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
      const node = first.getNode(nodeId);
      const spec = (await node.inspect()) as { Version: { Index: number }; Spec: { Role: string; Availability: string; Labels?: Record<string, string> } };
      await node.update({ version: spec.Version.Index, ...spec.Spec, Labels: { ...spec.Spec.Labels, [key]: value } });
      await waitFor('the worker to be ready', async () => ((await node.inspect()) as { Status: { State: string } }).Status.State === 'ready', 20_000, 200);
      return nodeId;
    },
    stop,
  };
}

/**
 * What an engine killed with -9 leaves: containerd shims and their containers
 * (found by the engine's folder in their command lines), and its mounts. All
 * killed and unmounted, then the folder removed.
 */
function forceCleanup(dir: string): void {
  const procs = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  const cmdline = (pid: string): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      return '';
    }
  };
  const parent = (pid: string): string => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
    } catch {
      return '';
    }
  };
  const shims = new Set(procs.filter((p) => cmdline(p).includes(dir)));
  for (const p of procs.filter((q) => shims.has(parent(q)) || shims.has(q))) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m?.startsWith(dir))
    .sort()
    .reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  rmSync(dir, { recursive: true, force: true });
}
