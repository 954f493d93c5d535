import { formatBytes } from '../units.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { engineJson } from './api.js';

// The swarm as the main thread sees it: is the engine a manager, which nodes
// are ready, and how much of each is not yet reserved. Read over the socket
// with each ping; admission reads it to keep a job queued (with its reason)
// while no node has room, instead of handing Swarm a task it cannot place.

export interface SwarmNode {
  id: string;
  name: string;
  ready: boolean;
  /** Ready, and its availability is `active` (not paused or drained). */
  takesWork: boolean;
  cpus: number;
  memory: number;
  /** What reservations of tasks placed on it leave. */
  cpusFree: number;
  memoryFree: number;
}

export interface SwarmView {
  /** Why container steps cannot run on this engine's swarm (not a manager, not answering), or undefined. */
  problem: string | undefined;
  /** The engine said it is no swarm manager: a config to fix, not an outage to wait out. */
  refused?: boolean;
  nodes: SwarmNode[];
}

interface NodeDoc {
  ID: string;
  Description?: { Hostname?: string; Resources?: { NanoCPUs?: number; MemoryBytes?: number } };
  Spec?: { Availability?: string };
  Status?: { State?: string };
}

interface TaskDoc {
  NodeID?: string;
  Status?: { State?: string };
  Spec?: { Resources?: { Reservations?: { NanoCPUs?: number; MemoryBytes?: number } } };
}

/** Task states in which a task holds its reservation on a node. */
const HOLDING = new Set(['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** Task states before `running`: the task is on its way to a node, or being prepared there. */
export const TASK_ON_ITS_WAY = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'ready', 'preparing', 'starting']);

/** Whether a task in this state may still have (or get) a container on its node. */
export function taskLive(state: string | undefined): boolean {
  return state === 'running' || TASK_ON_ITS_WAY.has(state ?? 'new');
}

/** Why this engine cannot run Swarm services (from /info), or undefined when it is a manager. */
export function managerProblem(info: { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }, socketPath: string): string | undefined {
  const state = info.Swarm?.LocalNodeState ?? 'inactive';
  if (state !== 'active') return `the Docker engine at ${socketPath} is not part of a swarm (Swarm: ${state}); run docker swarm init there, or remove docker.swarm`;
  if (!info.Swarm?.ControlAvailable) return `the Docker engine at ${socketPath} is a swarm worker, not a manager; point docker.socketPath at a manager's engine`;
  return undefined;
}

/** Nodes (from /nodes) with what tasks (from /tasks) hold of them. */
export function swarmNodes(nodes: NodeDoc[], tasks: TaskDoc[]): SwarmNode[] {
  const held = new Map<string, { cpus: number; memory: number }>();
  for (const t of tasks) {
    if (!t.NodeID || !HOLDING.has(t.Status?.State ?? '')) continue;
    const r = t.Spec?.Resources?.Reservations;
    const h = held.get(t.NodeID) ?? { cpus: 0, memory: 0 };
    h.cpus += (r?.NanoCPUs ?? 0) / 1e9;
    h.memory += r?.MemoryBytes ?? 0;
    held.set(t.NodeID, h);
  }
  return nodes.map((n) => {
    const cpus = (n.Description?.Resources?.NanoCPUs ?? 0) / 1e9;
    const memory = n.Description?.Resources?.MemoryBytes ?? 0;
    const h = held.get(n.ID) ?? { cpus: 0, memory: 0 };
    const ready = n.Status?.State === 'ready';
    return {
      id: n.ID,
      name: n.Description?.Hostname ?? n.ID.slice(0, 12),
      ready,
      takesWork: ready && (n.Spec?.Availability ?? 'active') === 'active',
      cpus,
      memory,
      cpusFree: Math.max(cpus - h.cpus, 0),
      memoryFree: Math.max(memory - h.memory, 0),
    };
  });
}

/** What a job reserves on a node. */
export interface NodeNeed {
  cpus: number;
  memory: number;
}

function describe(need: NodeNeed): string {
  return [need.cpus > 0 ? `${need.cpus} cpus` : '', need.memory > 0 ? formatBytes(need.memory) : ''].filter(Boolean).join(' and ');
}

const fits = (need: NodeNeed, cpus: number, memory: number): boolean => need.cpus <= cpus + 1e-9 && need.memory <= memory;

/** Why no node of the swarm can take a job that reserves `need` now, or null (one can, as far as hopper knows). */
export function placementProblem(view: SwarmView, need: NodeNeed): string | null {
  if (view.problem) return view.problem;
  const open = view.nodes.filter((n) => n.takesWork);
  if (open.length === 0) return `no Swarm node is ready to take work (${view.nodes.length} known)`;
  if (need.cpus <= 0 && need.memory <= 0) return null;
  if (open.some((n) => fits(need, n.cpusFree, n.memoryFree))) return null;
  if (!open.some((n) => fits(need, n.cpus, n.memory))) {
    const biggest = [...open].sort((a, b) => b.memory - a.memory || b.cpus - a.cpus)[0];
    return `no node has ${describe(need)} in all (the largest, ${biggest.name}, has ${biggest.cpus} cpus and ${formatBytes(biggest.memory)})`;
  }
  const roomiest = [...open].sort((a, b) => b.memoryFree - a.memoryFree || b.cpusFree - a.cpusFree)[0];
  return `no node has ${describe(need)} free (most free: ${Number(roomiest.cpusFree.toFixed(2))} cpus and ${formatBytes(roomiest.memoryFree)} on ${roomiest.name})`;
}

/**
 * Counts a job just handed to Swarm against the node with the most room that
 * fits it, until the next reading replaces the view (Swarm places it itself).
 */
export function claim(view: SwarmView, need: NodeNeed): void {
  const node = view.nodes.filter((n) => n.takesWork && fits(need, n.cpusFree, n.memoryFree)).sort((a, b) => b.memoryFree - a.memoryFree || b.cpusFree - a.cpusFree)[0];
  if (!node) return;
  node.cpusFree -= need.cpus;
  node.memoryFree -= need.memory;
}

/**
 * Reads the swarm through the engine's socket: /nodes and /tasks, as a manager
 * answers them. Only when they fail is /info read (a heavier call), to tell an
 * engine that is no manager from one that does not answer now.
 */
export async function readSwarm(socketPath: string): Promise<SwarmView> {
  try {
    const [nodes, tasks] = await Promise.all([
      engineJson<NodeDoc[]>(socketPath, 'GET', '/nodes', { timeoutMs: 5000 }),
      engineJson<TaskDoc[]>(socketPath, 'GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ 'desired-state': ['running'] }))}`, { timeoutMs: 5000 }),
    ]);
    return { problem: undefined, nodes: swarmNodes(nodes ?? [], tasks ?? []) };
  } catch (err) {
    const info = (await engineJson<Parameters<typeof managerProblem>[0]>(socketPath, 'GET', '/info', { timeoutMs: 5000 })) ?? {};
    const problem = managerProblem(info, socketPath);
    if (problem) return { problem, refused: true, nodes: [] };
    throw err;
  }
}

/** The first engine API that can set no-new-privileges on a service (Docker 27). */
export const NO_NEW_PRIVILEGES_API = '1.46';

/** Whether an engine API version (as /version says it, "1.41") is `least` or later. */
export function apiAtLeast(version: string | undefined, least: string): boolean {
  const [a, b] = (version ?? '0.0').split('.').map(Number);
  const [x, y] = least.split('.').map(Number);
  return a > x || (a === x && b >= y);
}

/** Whether any task of the service may still have a container on its node. */
async function serviceTaskLive(socketPath: string, id: string): Promise<boolean> {
  const tasks = (await engineJson<Array<{ Status?: { State?: string } }>>(socketPath, 'GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [id] }))}`)) ?? [];
  return tasks.some((t) => taskLive(t.Status?.State));
}

/**
 * Stops a service's task if it still runs, then removes the service. The task
 * is stopped by scaling the service to nothing and waited for (at most 15 s),
 * so that what its container was on (the job's network) may go after it: on
 * Docker 20.10 a network removed under a running container left the manager's
 * network state broken and the container running (seen here). The spec goes in
 * the body, never a query string: it holds the container's env, secrets too.
 * Returns whether the task was seen to stop; throws when the removal fails.
 */
export async function stopService(socketPath: string, id: string): Promise<boolean> {
  const at = `/services/${encodeURIComponent(id)}`;
  let stopped = true;
  try {
    if (await serviceTaskLive(socketPath, id)) {
      const service = await engineJson<{ Version: { Index: number }; Spec: Record<string, unknown> }>(socketPath, 'GET', at, { missingOk: true });
      if (service) {
        await engineJson(socketPath, 'POST', `${at}/update?version=${service.Version.Index}`, { body: { ...service.Spec, Mode: { Replicated: { Replicas: 0 } } } });
        for (let i = 0; i < 150 && (await serviceTaskLive(socketPath, id)); i++) await sleep(100);
      }
    }
  } catch {
    stopped = false;
  }
  await engineJson(socketPath, 'DELETE', at, { missingOk: true });
  return stopped;
}

/**
 * Why services of this swarm may run without no-new-privileges, or undefined:
 * engines before API 1.46 (Docker 27) cannot set it per service, so it must
 * come from each node's daemon.json. Said once at start; the manager's own
 * setting is all hopper can see.
 */
export async function privilegesWarning(socketPath: string): Promise<string | undefined> {
  const version = (await engineJson<{ ApiVersion?: string }>(socketPath, 'GET', '/version'))?.ApiVersion;
  if (apiAtLeast(version, NO_NEW_PRIVILEGES_API)) return undefined;
  const info = await engineJson<{ SecurityOptions?: string[] }>(socketPath, 'GET', '/info');
  const managerHasIt = (info?.SecurityOptions ?? []).some((o) => o.includes('no-new-privileges'));
  return `this engine (API ${version}) cannot set no-new-privileges on Swarm services (Docker 27 can); ${
    managerHasIt ? 'the manager sets it for all its containers: make sure every node does' : 'set "no-new-privileges": true in every node\'s /etc/docker/daemon.json'
  }`;
}
