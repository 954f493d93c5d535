import { execa } from 'execa';
import { HopperError } from '../errors.js';
import { policyEnv } from '../net/childPolicy.js';
import { pathsFor } from '../paths.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { render, renderDeep } from '../template.js';
import { formatDuration, timerMs } from '../units.js';
import { WORK_VAR, workMark } from './leftovers.js';
import { throwIfJobAborted, type StepRunner } from './step.js';

type RunStep = Extract<Step, { kind: 'run' }>;

const KILL_AFTER_MS = 5000;

/** Stops a process group: SIGTERM, then SIGKILL if it lingers. */
function stopper(pid: number | undefined): { stop(): void; reap(): void } {
  let hard: NodeJS.Timeout | undefined;
  const kill = (signal: NodeJS.Signals): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      /* already gone */
    }
  };
  return {
    stop() {
      if (hard) return;
      kill('SIGTERM');
      hard = setTimeout(() => kill('SIGKILL'), KILL_AFTER_MS);
      hard.unref();
    },
    /** After the command ended: nothing it started may live on. */
    reap() {
      clearTimeout(hard);
      kill('SIGKILL');
    },
  };
}

/**
 * Runs a command as an argv list in the work dir: no shell reads it, so a
 * parameter fills exactly one argument. The daemon's own environment (tokens,
 * keys) is not passed on; only PATH, a HOME in the work dir, the step's env,
 * HOPPER_WORK (the work dir, by which a restart finds left-over commands) and
 * the outbound policy (HOPPER_OUTBOUND_ALLOW and HOPPER_OUTBOUND_MODULE, see
 * net/childPolicy.ts), for scripts that request URLs a requester named.
 */
export const runStep: StepRunner<RunStep> = async (step, env) => {
  const argv = step.command.map((a) => render(a, env.scope, { strict: true }));
  const vars = renderDeep(step.env, env.scope, { strict: true });
  // Scrubbed before quoting: quoting would escape a secret's quotes and hide it from the scrub.
  const shown = argv.map((a) => scrub(a, env.secrets)).map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ');
  env.log.note(`run: ${shown}`);
  const policy = await policyEnv(env.outbound, pathsFor(env.job.root).state);
  if (policy.problem) env.log.note(`run: no outbound policy module for the command (${policy.problem}); a script that checks URLs against it will refuse to run`);
  const started = Date.now();
  // Its own process group, so a stop reaches everything it started (a `sleep`
  // under `sh` would otherwise hold the output pipe open after `sh` is gone).
  const child = execa(argv[0], argv.slice(1), {
    detached: true,
    cwd: env.workDir,
    // The policy and HOPPER_WORK come last: no step env (or parameter in it) overrides them.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.workDir, LANG: 'C.UTF-8', ...vars, ...policy.vars, [WORK_VAR]: workMark(env.workDir) },
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
  });
  child.all?.pipe(env.log.sink());
  const group = stopper(child.pid);
  const onAbort = (): void => group.stop();
  env.signal.addEventListener('abort', onAbort, { once: true });
  if (env.signal.aborted) group.stop();
  let timedOut = false;
  const timer =
    step.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          group.stop();
        }, timerMs(step.timeoutMs));
  const result = await child;
  clearTimeout(timer);
  env.signal.removeEventListener('abort', onAbort);
  group.reap();
  throwIfJobAborted(env.signal);
  const tail = env.log.lastLines();
  const quote = tail.length ? `; last output:\n${tail.join('\n')}` : '';
  if (timedOut) {
    throw new HopperError('E_RUN_TIMEOUT', `\`${shown}\` ran longer than ${formatDuration(step.timeoutMs ?? 0)} and was stopped${quote}`);
  }
  if (result.failed && result.exitCode === undefined) {
    const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') throw new HopperError('E_RUN_NOT_FOUND', `command "${argv[0]}" was not found on this host`);
    const how = result.signal ? `was killed by ${result.signal}` : `could not run (${code ?? result.shortMessage})`;
    throw new HopperError('E_RUN_FAILED', `\`${shown}\` ${how}${quote}`);
  }
  if (result.exitCode !== 0) {
    throw new HopperError('E_RUN_EXIT', `\`${shown}\` exited with code ${result.exitCode}${quote}`);
  }
  env.log.note(`run: done in ${formatDuration(Date.now() - started)}`);
  return {};
};
