import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { engineRequest } from './api.js';

export type EngineState = 'up' | 'down';

/** The Docker engine as a step sees it: a client, and whether the engine answered when the job started. */
export interface DockerAccess {
  readonly up: boolean;
  readonly client: Docker;
  readonly socketPath: string;
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

  constructor(socketPath: string, log: Logger, onChange: (state: EngineState) => void = () => {}) {
    this.socketPath = socketPath;
    this.log = log;
    this.onChange = onChange;
  }

  get up(): boolean {
    return this.state === 'up';
  }

  /** Asks the engine once; updates the state (and tells) when it changed. */
  async check(): Promise<EngineState> {
    let next: EngineState;
    try {
      next = (await engineRequest(this.socketPath, 'GET', '/_ping', 3000)).status === 200 ? 'up' : 'down';
    } catch {
      next = 'down';
    }
    if (next !== this.state) {
      this.state = next;
      if (next === 'up') this.log.info({ socket: this.socketPath }, 'docker engine answers');
      else this.log.warn({ socket: this.socketPath }, 'docker engine does not answer; container jobs wait');
      this.onChange(next);
    }
    return next;
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
