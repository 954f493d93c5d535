import { execa } from 'execa';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { render } from '../template.js';
import { formatDuration } from '../units.js';
import { throwIfJobAborted, type StepRunner } from './step.js';

type RunStep = Extract<Step, { kind: 'run' }>;

/**
 * Runs a command as an argv list in the work dir: no shell reads it, so a
 * parameter fills exactly one argument. The daemon's own environment (tokens,
 * keys) is not passed on; only PATH, a HOME in the work dir and the step's env.
 */
export const runStep: StepRunner<RunStep> = async (step, env) => {
  const argv = step.command.map((a) => render(a, env.scope, { strict: true }));
  const vars = Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, render(v, env.scope, { strict: true })]));
  const shown = scrub(argv.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' '), env.secrets);
  env.log.note(`run: ${shown}`);
  const started = Date.now();
  const child = execa(argv[0], argv.slice(1), {
    cwd: env.workDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: env.workDir, LANG: 'C.UTF-8', ...vars },
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
    cancelSignal: env.signal,
    forceKillAfterDelay: 5000,
    ...(step.timeoutMs !== undefined ? { timeout: step.timeoutMs } : {}),
  });
  child.all?.pipe(env.log.sink());
  const result = await child;
  throwIfJobAborted(env.signal);
  const tail = env.log.lastLines();
  const quote = tail.length ? `; last output:\n${tail.join('\n')}` : '';
  if (result.timedOut) {
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
