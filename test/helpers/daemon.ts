import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/config.js';
import type { Clock } from '../../src/context.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { silentLogger, createLogger, type Logger } from '../../src/log.js';
import type { Job } from '../../src/store/jobs.js';
import { waitFor } from './wait.js';

export function tempRoot(prefix = 'hopper-test-'): { root: string; cleanup(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Writes a file elsewhere, then renames it into place, as the SPEC asks writers to. */
export function drop(dir: string, name: string, content: string | object): string {
  mkdirSync(dir, { recursive: true });
  const text = typeof content === 'string' ? content : stringify(content);
  const tmp = path.join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  const target = path.join(dir, name);
  renameSync(tmp, target);
  return target;
}

export interface TestDaemonOptions {
  root?: string;
  recipes?: Record<string, string | object>;
  config?: Record<string, unknown>;
  settleMs?: number;
  diskCheckMs?: number;
  resourceHoldMs?: number;
  dockerPingMs?: number;
  notifyRetryBaseMs?: number;
  deliveryRetryBaseMs?: number;
  /** Docker socket path in the config (tests of an engine that is away). */
  dockerSocket?: string;
  clock?: Clock;
  schedulePollMs?: number;
  /** Where the daemon logs (default: nowhere, or stdout with HOPPER_TEST_LOG). */
  log?: Logger;
}

export interface TestDaemon extends Daemon {
  root: string;
  inboxDir: string;
  drop(name: string, content: string | object): string;
  /** Waits until the job for a request id (or job id) exists and satisfies `until`. */
  job(id: string, until?: (j: Job) => boolean, timeoutMs?: number): Promise<Job>;
  cleanup(): Promise<void>;
}

/** A whole daemon in a temp dir, HTTP on a free loopback port, logs silent unless HOPPER_TEST_LOG is set. */
export async function testDaemon(o: TestDaemonOptions = {}): Promise<TestDaemon> {
  const tmp = o.root ? undefined : tempRoot();
  const root = o.root ?? tmp!.root;
  for (const [name, content] of Object.entries(o.recipes ?? {})) drop(path.join(root, 'recipes'), `${name}.yaml`, content);
  const doc = { http: { port: 0 }, outbound: { allow: ['127.0.0.1'] }, ...(o.dockerSocket ? { docker: { socketPath: o.dockerSocket } } : {}), ...(o.config ?? {}) };
  const config = parseConfig(stringify(doc), path.join(root, 'hopper.yaml'));
  const log = o.log ?? (process.env.HOPPER_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger());
  const d = await startDaemon({
    root,
    config,
    log,
    settleMs: o.settleMs ?? 80,
    rescanMs: 2000,
    diskCheckMs: o.diskCheckMs,
    resourceHoldMs: o.resourceHoldMs,
    dockerPingMs: o.dockerPingMs ?? 500,
    notifyRetryBaseMs: o.notifyRetryBaseMs,
    deliveryRetryBaseMs: o.deliveryRetryBaseMs,
    clock: o.clock,
    schedulePollMs: o.schedulePollMs,
  });
  return {
    ...d,
    root,
    inboxDir: path.join(root, 'inbox'),
    drop: (name, content) => drop(path.join(root, 'inbox'), name, content),
    job: (id, until = () => true, timeoutMs = 15_000) =>
      waitFor(`job ${id}`, () => {
        const j = d.ctx.store.jobs.find(id);
        return j && until(j) ? j : undefined;
      }, timeoutMs),
    cleanup: async () => {
      await d.stop(1000);
      tmp?.cleanup();
    },
  };
}

export const ended = (j: Job): boolean => j.state === 'succeeded' || j.state === 'failed' || j.state === 'canceled';

/** A clock a test sets by hand: what schedules, notBefore and backoff read. */
export function manualClock(start: number): Clock & { set(t: number): void; advance(ms: number): void } {
  let t = start;
  return { now: () => t, set: (v) => void (t = v), advance: (ms) => void (t += ms) };
}

/** The whole NAME.error.txt once `name` is rejected: the reason complete, the file beside it. */
export function rejectionOf(d: { inboxDir: string }, name: string, timeoutMs = 10_000): Promise<string> {
  const dir = path.join(d.inboxDir, 'rejected');
  return waitFor(`${name} to be rejected`, () => {
    if (!existsSync(path.join(dir, name))) return undefined;
    const text = readFileSync(path.join(dir, `${name}.error.txt`), 'utf8');
    return text.endsWith('drop it into the inbox again.\n') && text;
  }, timeoutMs);
}
