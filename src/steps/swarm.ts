import type Docker from 'dockerode';
import type { Writable } from 'node:stream';
import type { SwarmConfig } from '../config/config.js';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DockerAccess } from '../docker/engine.js';
import { apiAtLeast, NO_NEW_PRIVILEGES_API, stopService, TASK_ON_ITS_WAY } from '../docker/swarm.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { CAPPED_LOGS, dockerMessage, envOf, fill, idleError, imageOf, labelsOf, logInto, PIDS_LIMIT, StopReason, stepTimeoutError, userOf } from './container.js';
import { throwIfJobAborted, type StepEnv } from './step.js';

// A container step as a Docker Swarm service: one task, placed by Swarm on a
// node with room for the recipe's resources, watched from the manager. What
// the container may do is what a local one may (see container.ts).

type ContainerStep = Extract<Step, { kind: 'container' }>;

const STOP_GRACE_NS = 1e9;
/** How often the task's state is read from the manager: often while a short job may end, then once a second. */
const pollMs = (sinceStart: number): number => (sinceStart < 5000 ? 100 : 1000);

/** What the spec is built from, beside the step: names made by the runner. */
export interface ServicePlan {
  name: string;
  image: string;
  swarm: SwarmConfig;
  /** The job's own internal overlay network (network: none), or undefined (the node's default bridge). */
  network: string | undefined;
  /** Whether the engine's API can set no-new-privileges on a service. */
  noNewPrivileges: boolean;
}

/** How the task's container reaches the job's work dir: a bind of the same path, or the NFS export of state/jobs. */
export function workMount(env: Pick<StepEnv, 'workDir' | 'job'>, swarm: SwarmConfig): Docker.MountSettings {
  if (!swarm.workDir) return { Type: 'bind', Source: env.workDir, Target: '/work' };
  const { server, path } = swarm.workDir;
  return {
    Type: 'volume',
    Source: '',
    Target: '/work',
    // No name: an anonymous volume, removed with the task's container; Docker's local driver mounts the export.
    VolumeOptions: {
      NoCopy: true,
      Labels: {},
      DriverConfig: {
        Name: 'local',
        Options: { type: 'nfs', o: `addr=${server},rw,nfsvers=4,hard`, device: `:${path.replace(/\/$/, '')}/${env.job.id}/work` },
      },
    },
  };
}

/** The service for one container step: pure, so what a recipe can reach on a cluster is tested without one. */
export function serviceSpec(step: ContainerStep, env: StepEnv, plan: ServicePlan): Docker.CreateServiceOptions {
  const r = env.resources;
  const nano = r.cpus ? Math.round(r.cpus * 1e9) : undefined;
  const mounts: Docker.MountSettings[] = [workMount(env, plan.swarm)];
  if (step.shmBytes) mounts.push({ Type: 'tmpfs', Source: '', Target: '/dev/shm', TmpfsOptions: { SizeBytes: step.shmBytes, Mode: 0o1777 } });
  return {
    Name: plan.name,
    Labels: labelsOf(env),
    TaskTemplate: {
      ContainerSpec: {
        Image: plan.image,
        // Swarm's Command is the entrypoint, its Args the command.
        ...(step.entrypoint ? { Command: step.entrypoint.map((v) => fill(v, env)) } : {}),
        ...(step.command ? { Args: step.command.map((v) => fill(v, env)) } : {}),
        Env: envOf(step, env),
        Dir: '/work',
        User: userOf(step, env),
        Labels: labelsOf(env),
        Mounts: mounts,
        ...(step.capAdd.length ? { CapabilityAdd: step.capAdd } : {}),
        ...(plan.noNewPrivileges ? { Privileges: { NoNewPrivileges: true } } : {}),
        // A stopped job is killed soon after SIGTERM, as a local one is killed at once.
        StopGracePeriod: STOP_GRACE_NS,
      } as Docker.ContainerSpec,
      Resources: {
        Limits: { ...(nano ? { NanoCPUs: nano } : {}), ...(r.memory ? { MemoryBytes: r.memory } : {}), Pids: PIDS_LIMIT } as Docker.ResourceRequirements['Limits'],
        Reservations: { ...(nano ? { NanoCPUs: nano } : {}), ...(r.memory ? { MemoryBytes: r.memory } : {}) },
      },
      // hopper's own `retries` decide whether it runs again.
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
      Placement: { Constraints: plan.swarm.constraints },
      ...(plan.network ? { Networks: [{ Target: plan.network }] } : {}),
      LogDriver: { Name: 'json-file', Options: CAPPED_LOGS },
    },
    // One replica that is never restarted: a job. (Swarm's own replicated-job mode, on Docker 20.10,
    // neither stops nor removes a job's container when its service is removed: see docs/scale-out.md.)
    Mode: { Replicated: { Replicas: 1 } },
  };
}

interface TaskView {
  ID: string;
  NodeID?: string;
  Status?: { State?: string; Err?: string; Message?: string; ContainerStatus?: { ExitCode?: number } };
}

/** What a task's state means for the step: still on its way, or how it ended. */
export type TaskOutcome =
  | { done: false; running: boolean; waiting?: string }
  | { done: true; exitCode: number }
  | { done: true; error: HopperError };

/** Reads one task's status (as /tasks answers it) into what the step does next. */
export function taskOutcome(task: TaskView | undefined, image: string): TaskOutcome {
  const state = task?.Status?.State ?? 'new';
  const err = task?.Status?.Err ?? '';
  if (state === 'running') return { done: false, running: true };
  if (TASK_ON_ITS_WAY.has(state)) return { done: false, running: false, waiting: state === 'pending' && err ? err : undefined };
  if (state === 'complete') return { done: true, exitCode: 0 };
  if (state === 'failed' && task?.Status?.ContainerStatus?.ExitCode) return { done: true, exitCode: task.Status.ContainerStatus.ExitCode };
  if (/no such image|image .* not found|pull access denied|manifest unknown/i.test(err)) {
    return { done: true, error: new HopperError('E_IMAGE_MISSING', `no node could get image ${image}: ${err}`) };
  }
  const why = err || task?.Status?.Message || state;
  return { done: true, error: new HopperError('E_SWARM_TASK', `Swarm ended the container's task (${state}): ${why}`) };
}

/** How long the manager may not answer before a running job's attempt is given up. */
const MANAGER_PATIENCE_MS = 60_000;

/** Node states in which a task on the node is lost. */
const NODE_LOST = new Set(['down', 'disconnected']);

const apiVersions = new WeakMap<Docker, string>();
/** The engine's API version, asked once per client; a failed ask is asked again next time. */
async function apiVersion(docker: Docker): Promise<string | undefined> {
  let v = apiVersions.get(docker);
  if (v === undefined) {
    v = (await docker.version()).ApiVersion;
    apiVersions.set(docker, v);
  }
  return v;
}

/** Stops and removes the service (stopService), then the job's network, later still if the stop was not seen. */
async function removeAll(docker: Docker, socketPath: string, serviceId: string | undefined, networkId: string | undefined): Promise<void> {
  const stopped = serviceId ? await stopService(socketPath, serviceId).catch(() => false) : true;
  if (!networkId) return;
  if (!stopped) await sleep(STOP_GRACE_NS / 1e6 + 3000);
  for (let i = 0; i < 50; i++) {
    try {
      await docker.getNetwork(networkId).remove();
      return;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return;
      await sleep(100);
    }
  }
}

/**
 * Runs one container step as a Swarm service and waits for its task: logs
 * into job.log while it runs, the exit code from the task's status. Stopped
 * early (timeout, idle, cancel, shutdown) by scaling the service to nothing;
 * the reason is recorded once. The service (and its network) is always removed.
 */
export async function swarmStep(step: ContainerStep, env: StepEnv & { docker: DockerAccess & { swarm: SwarmConfig } }): Promise<void> {
  const { client: docker, socketPath, swarm } = env.docker;
  const image = imageOf(step, env);
  const stamp = `${env.job.id}-${env.job.attempt}-${Date.now().toString(36)}`;
  const reason = new StopReason();
  const stop = new AbortController();
  const kill = (e: HopperError): void => {
    if (reason.set(e)) stop.abort();
  };
  const onAbort = (): void => kill(env.signal.reason instanceof HopperError ? env.signal.reason : new HopperError('E_CANCELED', 'stopped'));
  const timers: NodeJS.Timeout[] = [];
  let idle: NodeJS.Timeout | undefined;
  let networkId: string | undefined;
  let serviceId: string | undefined;
  let logs: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  try {
    if (step.network === 'none') {
      // Swarm has no "none" network: an internal overlay of the job's own reaches no host and no other job.
      const net = await docker.createNetwork({ Name: `hopper-${stamp}`, Driver: 'overlay', Internal: true, Attachable: false, Labels: labelsOf(env) });
      networkId = net.id;
    }
    const spec = serviceSpec(step, env, { name: `hopper-${stamp}`, image, swarm, network: networkId, noNewPrivileges: apiAtLeast(await apiVersion(docker), NO_NEW_PRIVILEGES_API) });
    const args = (step.command ?? []).map((v) => fill(v, env)).join(' ');
    env.log.note(`container: ${image} ${scrub(args, env.secrets)} as a Swarm service (network ${step.network})`);
    try {
      serviceId = (await docker.createService(spec)).id;
    } catch (err) {
      throw new HopperError('E_CONTAINER_CREATE', `could not create a Swarm service from ${image}: ${scrub(dockerMessage(err), env.secrets)}`);
    }
    env.signal.addEventListener('abort', onAbort, { once: true });
    if (env.signal.aborted) onAbort();
    if (step.timeoutMs !== undefined) timers.push(setTimeout(() => kill(stepTimeoutError(step.timeoutMs!)), timerMs(step.timeoutMs)));
    let running = false;
    const armIdle = (): void => {
      if (step.idleTimeoutMs === undefined || !running || stop.signal.aborted) return;
      clearTimeout(idle);
      idle = setTimeout(() => kill(idleError(step.idleTimeoutMs!)), timerMs(step.idleTimeoutMs));
      idle.unref();
    };
    const service = docker.getService(serviceId);
    logs = (await service.logs({ follow: true, stdout: true, stderr: true, timestamps: true })) as unknown as typeof logs;
    const stamps = new LogStamps();
    const sink = logInto(env, docker, logs!, armIdle, stamps.live);
    const started = Date.now();
    const ended = await watchTask(docker, serviceId, image, env, stop.signal, () => {
      if (running) return;
      running = true;
      armIdle();
    });
    clearTimeout(idle);
    // The manager's log stream does not end with the task: close it, and read what it had not
    // brought yet from the node's own log, once (below).
    logs!.destroy?.();
    // Swarm's log stream is best effort, and behind: under a flood it drops lines. What the node
    // kept after the newest line seen is read once more, so the end of the output (the part a
    // failure quotes) is there; lines lost in between stay lost (docs/scale-out.md).
    if (!stop.signal.aborted) await catchUp(service, sink, stamps);
    await new Promise<void>((resolve) => sink.end(resolve));
    if (reason.error) throw reason.error;
    if (!ended) throw new HopperError('E_CANCELED', 'stopped');
    if ('error' in ended) throw ended.error;
    const tail = env.log.lastLines();
    const quote = tail.length ? `; last output:\n${tail.join('\n')}` : '';
    if (ended.exitCode === 137 && env.resources.memory) {
      throw new HopperError('E_CONTAINER_OOM', `the container was killed (exit code 137), most likely for memory past its limit of ${formatBytes(env.resources.memory)}${quote}`);
    }
    if (ended.exitCode !== 0) throw new HopperError('E_CONTAINER_EXIT', `the container (${image}) exited with code ${ended.exitCode}${quote}`);
    env.log.note(`container: done in ${formatDuration(Date.now() - started)}`);
  } catch (err) {
    if (reason.error) throw reason.error;
    throwIfJobAborted(env.signal);
    if (err instanceof HopperError) throw err;
    throw new HopperError('E_CONTAINER', `the Swarm service (${image}) failed: ${scrub(dockerMessage(err), env.secrets)}`);
  } finally {
    clearTimeout(idle);
    for (const t of timers) clearTimeout(t);
    env.signal.removeEventListener('abort', onAbort);
    logs?.destroy?.();
    await removeAll(docker, socketPath, serviceId, networkId);
  }
}

/**
 * Service log frames come with a timestamp ("2026-11-29T06:14:52.098570882Z line"):
 * strips it and remembers the newest. stdout and stderr are stamped apart, so the
 * live stream is not in strict time order: only the second read, from the newest
 * time seen, drops frames not newer than it.
 */
export class LogStamps {
  newest = '';
  /** The live stream: every frame, its stamp stripped. */
  readonly live = (chunk: Buffer): Buffer | null => this.take(chunk, false);
  /** The read after the task ended: only frames newer than any seen live. */
  readonly after = (chunk: Buffer): Buffer | null => this.take(chunk, true);

  private take(chunk: Buffer, onlyNewer: boolean): Buffer | null {
    const space = chunk.indexOf(0x20);
    if (space < 20 || space > 40 || chunk[space - 1] !== 0x5a /* Z */) return chunk;
    const ts = chunk.toString('latin1', 0, space);
    const newer = !this.newest || compareStamps(ts, this.newest) > 0;
    if (onlyNewer && !newer) return null;
    if (newer && !onlyNewer) this.newest = ts;
    return chunk.subarray(space + 1);
  }
}

/** RFC 3339 stamps with nanoseconds compared in time (their fractions may be written short). */
function compareStamps(a: string, b: string): number {
  const split = (t: string): [string, string] => {
    const m = /^(.*?)(?:\.(\d+))?Z$/.exec(t);
    return [m?.[1] ?? t, (m?.[2] ?? '').padEnd(9, '0')];
  };
  const [sa, fa] = split(a);
  const [sb, fb] = split(b);
  return sa < sb ? -1 : sa > sb ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0;
}

/** Docker's `since`: seconds since the epoch, with the nanoseconds. */
function sinceOf(stamp: string): string {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(stamp);
  return `${Math.floor(Date.parse(`${m?.[1] ?? stamp}Z`) / 1000)}.${(m?.[2] ?? '').padEnd(9, '0')}`;
}

/** After the task ended: the lines the node kept after the newest one seen (or all of them), into the log; at most 30 s. */
async function catchUp(service: Docker.Service, sink: Writable, stamps: LogStamps): Promise<void> {
  let rest: unknown;
  const given = new AbortController();
  try {
    const read = service.logs({ follow: false, stdout: true, stderr: true, timestamps: true, ...(stamps.newest ? { since: sinceOf(stamps.newest) } : {}) });
    rest = await Promise.race([read, sleep(30_000, undefined, { signal: given.signal }).catch(() => undefined)]);
  } catch {
    return; // the live stream's lines stay; a missing tail is not worth failing the job
  } finally {
    given.abort();
  }
  if (!Buffer.isBuffer(rest)) return;
  // Docker's multiplexed frames: 8 bytes of header (stream, 3 zero bytes, length), then the payload.
  for (let at = 0; at + 8 <= rest.length; ) {
    const end = at + 8 + rest.readUInt32BE(at + 4);
    const out = stamps.after(rest.subarray(at + 8, Math.min(end, rest.length)));
    if (out && !sink.writableEnded) sink.write(out);
    at = end;
  }
}

/**
 * Polls the service's task until it ends (or `stop` aborts: undefined). Says
 * once in job.log why it waits for a node; fails it when its node is lost.
 */
async function watchTask(docker: Docker, serviceId: string, image: string, env: StepEnv, stop: AbortSignal, onRunning: () => void): Promise<TaskOutcome & { done: true } | undefined> {
  let said = '';
  let nodeCheckedAt = 0;
  const started = Date.now();
  let lostSince: number | undefined;
  while (!stop.aborted) {
    let tasks: TaskView[];
    try {
      tasks = (await docker.listTasks({ filters: { service: [serviceId] } })) as TaskView[];
      lostSince = undefined;
    } catch (err) {
      // A manager restarting (or electing a new leader) does not answer for a while; the task runs on.
      lostSince ??= Date.now();
      if (Date.now() - lostSince > MANAGER_PATIENCE_MS) {
        return { done: true, error: new HopperError('E_SWARM_TASK', `the swarm manager did not answer for ${formatDuration(MANAGER_PATIENCE_MS)}: ${dockerMessage(err)}`) };
      }
      await sleep(1000, undefined, { signal: stop }).catch(() => {});
      continue;
    }
    const task = tasks[0];
    const outcome = taskOutcome(task, image);
    if (outcome.done) return outcome;
    if (outcome.waiting && outcome.waiting !== said) {
      said = outcome.waiting;
      env.log.note(`container: waiting for a node: ${outcome.waiting}`);
    }
    if (outcome.running) onRunning();
    // Placed on a node (running, or preparing there): that node may be lost under it.
    if (task?.NodeID && Date.now() - nodeCheckedAt > 2000) {
      nodeCheckedAt = Date.now();
      const lost = await nodeLost(docker, task.NodeID);
      if (lost) return { done: true, error: new HopperError('E_SWARM_NODE', `the node running the container (${lost}) was lost`) };
    }
    await sleep(pollMs(Date.now() - started), undefined, { signal: stop }).catch(() => {});
  }
  return undefined;
}

/** A node document (from /nodes/ID): its name and state when Swarm has lost it, else undefined. */
export function lostNode(node: { ID?: string; Description?: { Hostname?: string }; Status?: { State?: string; Message?: string } }): string | undefined {
  const state = node.Status?.State ?? '';
  if (!NODE_LOST.has(state)) return undefined;
  return `${node.Description?.Hostname ?? node.ID ?? 'a node'}, ${state}${node.Status?.Message ? `: ${node.Status.Message}` : ''}`;
}

/** The node's name and state when Swarm has lost it, else undefined. */
async function nodeLost(docker: Docker, nodeId: string): Promise<string | undefined> {
  try {
    return lostNode((await docker.getNode(nodeId).inspect()) as Parameters<typeof lostNode>[0]);
  } catch (err) {
    // A node removed from the swarm is lost too; any other answer is not ours to judge.
    return (err as { statusCode?: number }).statusCode === 404 ? `${nodeId}, removed from the swarm` : undefined;
  }
}
