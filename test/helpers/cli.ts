import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(REPO, 'src', 'cli', 'main.ts');
/** The installed command: runs the build in dist/ when it is fresh (see src/cli/bin.mjs). */
export const BIN = path.join(REPO, 'src', 'cli', 'bin.mjs');
// Resolved here, so the CLI can run with any working directory.
const TSX = import.meta.resolve('tsx');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the hopper CLI as a user would, in a child process, bounded in time. */
export function hopper(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
      cwd: o.cwd ?? REPO,
      env: { ...process.env, HOPPER_ROOT: '', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hopper ${args.join(' ')} did not finish in ${o.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`));
    }, o.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningDaemon {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** `hopper start` in a child process; resolves once it logged that it started. */
/**
 * `built`: through bin.mjs, as npm start and the systemd unit run it (flags
 * included). `source`: through bin.mjs too, but on the TypeScript, as after an
 * edit not yet built (tsx registered in-process, not by the tsx command).
 */
export async function startCli(root: string, extraArgs: string[] = [], o: { built?: boolean; source?: boolean } = {}): Promise<RunningDaemon> {
  const entry = o.built || o.source ? ['--max-semi-space-size=4', BIN] : ['--import', TSX, MAIN];
  const child = spawn(process.execPath, [...entry, 'start', '--root', root, ...extraArgs], {
    cwd: root,
    // Built, with what npm start and the systemd unit set too.
    env: { ...process.env, HOPPER_ROOT: '', ...(o.built ? { MALLOC_ARENA_MAX: '2' } : {}), ...(o.source ? { HOPPER_FROM_SOURCE: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('hopper to start', () => out.includes('"hopper started"') || child.exitCode !== null, 20_000);
  if (child.exitCode !== null) throw new Error(`hopper start exited ${child.exitCode}:\n${out}`);
  return { child, output: () => out, exited };
}
