import type Docker from 'dockerode';
import type { SwarmConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { engineRequest } from './api.js';
import { readSwarm, type SwarmView } from './swarm.js';

export type EngineState = 'up' | 'down';

/** The Docker engine as a step sees it: a client, and whether the engine answered when the job started. */
export interface DockerAccess {
  readonly up: boolean;
  readonly client: Docker;
  readonly socketPath: string;
  /** hopper.yaml `docker.swarm`: container steps run as Swarm services. */
  readonly swarm?: SwarmConfig;
}

/**
 * The Docker engine as hopper sees it: a client over the socket and whether
 * the engine answers. Container jobs wait while it is down; the rest of
 * hopper does not need it.
 */
export class DockerEngine {
  readonly socketPath: string;
  private state: EngineState = 'down';
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly onChange: (state: EngineState) => void;

  /** With `docker.swarm`: the swarm as last read (undefined until the engine answered). */
  swarm: SwarmView | undefined;
  private readonly swarmMode: boolean;
  private swarmKey = '';

  constructor(socketPath: string, log: Logger, onChange: (state: EngineState) => void = () => {}, options: { swarm?: boolean } = {}) {
    this.socketPath = socketPath;
    this.log = log;
    this.onChange = onChange;
    this.swarmMode = options.swarm ?? false;
  }

  /** Whether container steps can run: the engine answers (and, on Swarm, is a manager). */
  get up(): boolean {
    return this.state === 'up' && !this.swarm?.problem;
  }

  /** Why container jobs wait for the engine: it does not answer, or it is no swarm manager. */
  get problem(): string {
    return this.state === 'up' && this.swarm?.problem ? this.swarm.problem : `it does not answer at ${this.socketPath}`;
  }

  /** Asks the engine once (and the swarm, in swarm mode); tells when the state or the swarm's room changed. */
  async check(): Promise<EngineState> {
    let next: EngineState;
    try {
      next = (await engineRequest(this.socketPath, 'GET', '/_ping', 3000)).status === 200 ? 'up' : 'down';
    } catch {
      next = 'down';
    }
    const swarmChanged = next === 'up' && this.swarmMode && (await this.readSwarm());
    if (next !== this.state) {
      this.state = next;
      if (next === 'up') this.log.info({ socket: this.socketPath }, 'docker engine answers');
      else this.log.warn({ socket: this.socketPath }, 'docker engine does not answer; container jobs wait');
      this.onChange(next);
    } else if (swarmChanged) this.onChange(next);
    return next;
  }

  /** Reads the swarm; true when what admission reads of it changed. */
  private async readSwarm(): Promise<boolean> {
    let view: SwarmView;
    try {
      view = await readSwarm(this.socketPath);
    } catch (err) {
      // A manager that lost its quorum answers pings but not /nodes: no new work until it is back.
      view = { problem: `the swarm manager at ${this.socketPath} does not answer: ${(err as Error).message}`, nodes: [] };
    }
    const before = this.swarm?.problem;
    if (view.problem !== before) {
      if (view.problem) this.log.error({ socket: this.socketPath, problem: view.problem }, 'container jobs wait: the engine cannot run Swarm services');
      else this.log.info({ socket: this.socketPath, nodes: view.nodes.length, ready: view.nodes.filter((n) => n.ready).length }, 'container steps run on the swarm');
    }
    this.swarm = view;
    const key = JSON.stringify(view);
    if (key === this.swarmKey) return false;
    this.swarmKey = key;
    return true;
  }

  /** Checks now and then every `everyMs`. */
  async watch(everyMs: number): Promise<void> {
    await this.check();
    const tick = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.check().finally(tick), everyMs);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Where container steps run, as /healthz and /status say it. */
export interface ContainersInfo {
  runOn: 'host' | 'swarm';
  engine: 'up' | 'down';
  /** On Swarm: the nodes the manager knows, and how many are ready. */
  nodes?: number;
  nodesReady?: number;
  /** Why container jobs wait (the engine is away, or no swarm manager). */
  problem?: string;
}

export function containersInfo(engine: DockerEngine | undefined, swarm: boolean): ContainersInfo {
  const info: ContainersInfo = { runOn: swarm ? 'swarm' : 'host', engine: engine?.up ? 'up' : 'down' };
  if (swarm && engine?.swarm) {
    info.nodes = engine.swarm.nodes.length;
    info.nodesReady = engine.swarm.nodes.filter((n) => n.ready).length;
  }
  if (!engine?.up && engine) info.problem = engine.problem;
  return info;
}
