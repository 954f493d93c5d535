import { formatBytes } from '../units.js';
import { engineProblem, engineRequest } from './api.js';

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

async function getJson<T>(socketPath: string, path: string): Promise<T> {
  const answer = await engineRequest(socketPath, 'GET', path, 5000);
  if (answer.status !== 200) throw new Error(engineProblem(answer));
  return JSON.parse(answer.body) as T;
}

/** Reads the swarm through the engine's socket: /info, and when it is a manager, /nodes and /tasks. */
export async function readSwarm(socketPath: string): Promise<SwarmView> {
  const info = await getJson<Parameters<typeof managerProblem>[0]>(socketPath, '/info');
  const problem = managerProblem(info, socketPath);
  if (problem) return { problem, refused: true, nodes: [] };
  const [nodes, tasks] = await Promise.all([
    getJson<NodeDoc[]>(socketPath, '/nodes'),
    getJson<TaskDoc[]>(socketPath, `/tasks?filters=${encodeURIComponent(JSON.stringify({ 'desired-state': ['running'] }))}`),
  ]);
  return { problem: undefined, nodes: swarmNodes(nodes, tasks) };
}

/**
 * Why services of this swarm may run without no-new-privileges, or undefined:
 * engines before API 1.46 (Docker 27) cannot set it per service, so it must
 * come from each node's daemon.json. Said once at start; the manager's own
 * setting is all hopper can see.
 */
export async function privilegesWarning(socketPath: string): Promise<string | undefined> {
  const version = await getJson<{ ApiVersion?: string }>(socketPath, '/version');
  const [major, minor] = (version.ApiVersion ?? '0.0').split('.').map(Number);
  if (major > 1 || (major === 1 && minor >= 46)) return undefined;
  const info = await getJson<{ SecurityOptions?: string[] }>(socketPath, '/info');
  const managerHasIt = (info.SecurityOptions ?? []).some((o) => o.includes('no-new-privileges'));
  return `this engine (API ${version.ApiVersion}) cannot set no-new-privileges on Swarm services (Docker 27 can); ${
    managerHasIt ? 'the manager sets it for all its containers: make sure every node does' : 'set "no-new-privileges": true in every node\'s /etc/docker/daemon.json'
  }`;
}
