import type { Config } from './config/config.js';
import type { S3Delivery } from './delivery/s3.js';
import type { DockerEngine } from './docker/engine.js';
import type { Logger } from './log.js';
import type { Paths } from './paths.js';
import type { Offload } from './workers/offload.js';
import type { Store } from './store/store.js';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Everything a part of the daemon needs, passed in: no globals, so tests build a daemon in a temp dir. */
export interface Context {
  paths: Paths;
  /** Replaced as a whole when SIGHUP reloads hopper.yaml; read it at the time of use. */
  config: Config;
  store: Store;
  log: Logger;
  clock: Clock;
  /** Key for signing local download links (state/link.key, made on first start). */
  linkKey: Buffer;
  /** Key for signing webhook bodies: config webhooks.secret, else state/webhook.key (hex). */
  webhookKey: string;
  /** The Docker engine (it may be down; container jobs then wait). */
  docker: DockerEngine | undefined;
  /** S3 delivery, when hopper.yaml has an s3 section. */
  s3: S3Delivery | undefined;
  /** Runs jobs' steps and writes outbox mail, on worker threads (config `threads`). */
  offload: Offload;
  /** Base of download links, e.g. `http://localhost:8765` (known once the server listens). */
  publicUrl: () => string;
}
