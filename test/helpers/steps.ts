import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HopperError } from '../../src/errors.js';
import { OutboundPolicy } from '../../src/net/outbound.js';
import { JobLog } from '../../src/steps/joblog.js';
import type { StepEnv } from '../../src/steps/step.js';
import { tempRoot } from './daemon.js';

/** A step's surroundings built by hand: a work dir, a job log, an abort controller. */
export interface StepHarness {
  env: StepEnv;
  root: string;
  workDir: string;
  logFile: string;
  abort: AbortController;
  /** Writes a file (creating folders) relative to the work dir. */
  put(rel: string, content: string | Buffer): void;
  /** Closes the job log and returns what was written to it. */
  logText(): Promise<string>;
}

/** The tests' servers listen on 127.0.0.1: allowed, as a config `outbound: { allow: [127.0.0.1] }` would. */
export const LOOPBACK_ONLY = new OutboundPolicy(['127.0.0.1']);

const cleanups: Array<() => Promise<void> | void> = [];

/** Registers more clean-up (servers, env changes) to run with the harnesses'. */
export function afterStep(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** For afterEach: closes logs and removes the temp dirs of every harness made since. */
export async function cleanupStepHarnesses(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!();
}

export function stepHarness(o: { scope?: StepEnv['scope']; secrets?: string[] } = {}): StepHarness {
  const secrets = o.secrets ?? [];
  const tmp = tempRoot('hopper-step-');
  const workDir = path.join(tmp.root, 'work');
  mkdirSync(workDir);
  const logFile = path.join(tmp.root, 'job.log');
  const log = new JobLog(logFile, secrets);
  const abort = new AbortController();
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      await log.close();
    }
  };
  cleanups.push(async () => {
    await close();
    tmp.cleanup();
  });
  return {
    env: { workDir, scope: o.scope ?? { params: {} }, signal: abort.signal, log, secrets, job: { id: 'test-job', attempt: 1, root: tmp.root }, resources: {}, docker: undefined, outbound: LOOPBACK_ONLY },
    root: tmp.root,
    workDir,
    logFile,
    abort,
    put: (rel, content) => {
      const file = path.join(workDir, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content);
    },
    logText: async () => {
      await close();
      return existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    },
  };
}

/** For assert.rejects: a HopperError with this code whose message matches each pattern. */
export function isCode(code: string, ...mustMatch: RegExp[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof HopperError, `expected a HopperError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const re of mustMatch) assert.match(err.message, re);
    return true;
  };
}
