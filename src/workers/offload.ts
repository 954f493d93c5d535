import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OutboxMail } from '../notify/outbox.js';
import type { StepsOutcome } from '../steps/attempt.js';
import type { AttemptTask, DeliveryTask } from '../steps/services.js';
import type { CheckpointResult } from '../store/checkpoints.js';
import type { Output } from '../store/outputs.js';
import { NEVER, WorkerPool } from './pool.js';
import { taskRunner, type Preload, type Task, type TaskResults } from './tasks.js';

/**
 * Where the per-job work goes that would otherwise hold the main thread (it
 * keeps intake, the store, the lanes and the HTTP views): a job's steps,
 * writing its mail to outbox/, and the database's checkpoints. On `threads`
 * worker threads, or, with 0, here.
 */
export interface Offload {
  attempt(task: AttemptTask, signal: AbortSignal): Promise<StepsOutcome>;
  deliver(task: DeliveryTask, signal: AbortSignal): Promise<Output[]>;
  outbox(mail: OutboxMail): Promise<void>;
  /** A PASSIVE checkpoint of the database file `db`, on a thread's own connection (store/checkpoints.ts). */
  checkpoint(db: string): Promise<CheckpointResult>;
  /** Loads on the threads what the first jobs will need (see steps/index.ts): on one started now, and first on each started later. */
  preload(preload: Preload): Promise<void>;
  /** Worker threads (0: the main thread does the work). */
  readonly threads: number;
  close(): Promise<void>;
}

/**
 * The module a pool thread runs: beside this one, as .ts under tsx or .js in
 * the build. A thread inherits the process's flags, so under the tsx command
 * (tests) it loads TypeScript as the main thread does; `hopper start` after an
 * edit not yet built registers tsx in-process instead (bin.mjs), which a thread
 * does not inherit: every job failed with "Cannot find module .../pool.js".
 * (A thread takes only some flags: not the process's --max-semi-space-size.)
 */
function threadEntry(): { entry: URL; execArgv?: string[] } {
  const ext = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./thread${ext}`, import.meta.url);
  const inherited = ext !== '.ts' || process.execArgv.some((arg) => arg.includes('tsx'));
  return inherited ? { entry } : { entry, execArgv: ['--import', import.meta.resolve('tsx/esm')] };
}

export function createOffload(threads: number): Offload {
  let run: (task: Task, signal: AbortSignal) => Promise<TaskResults[Task['kind']]>;
  let preloadOn: (task: Task) => Promise<unknown>;
  let close = async (): Promise<void> => {};
  if (threads === 0) {
    run = taskRunner();
    preloadOn = (task) => run(task, NEVER);
  } else {
    const pool = new WorkerPool<Task, TaskResults[Task['kind']]>({ size: threads, ...threadEntry(), what: "a job's work" });
    run = (task, signal) => pool.run(task, signal);
    preloadOn = (task) => pool.preload(task);
    close = () => pool.close();
  }
  return {
    threads,
    attempt: async (attempt, signal) => (await run({ kind: 'attempt', attempt }, signal)) as StepsOutcome,
    deliver: async (deliver, signal) => (await run({ kind: 'deliver', deliver }, signal)) as Output[],
    outbox: async (mail) => void (await run({ kind: 'outbox', mail }, NEVER)),
    checkpoint: async (db) => (await run({ kind: 'checkpoint', db }, NEVER)) as CheckpointResult,
    preload: async (preload) => void (await preloadOn({ kind: 'preload', preload })),
    close,
  };
}
