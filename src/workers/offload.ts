import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OutboxMail } from '../notify/outbox.js';
import type { AttemptTask } from '../steps/services.js';
import type { Output } from '../store/outputs.js';
import { WorkerPool } from './pool.js';
import { taskRunner, type Task, type TaskResults } from './tasks.js';

/**
 * Where the per-job work goes that would otherwise hold the main thread (it
 * keeps intake, the store, the lanes and the HTTP views): a job's steps, and
 * writing its mail to outbox/. On `threads` worker threads, or, with 0, here.
 */
export interface Offload {
  attempt(task: AttemptTask, signal: AbortSignal): Promise<Output[]>;
  outbox(mail: OutboxMail): Promise<void>;
  /** Worker threads (0: the main thread does the work). */
  readonly threads: number;
  close(): Promise<void>;
}

/** The module a pool thread runs: beside this one, as .ts under tsx or .js in the build. */
function threadEntry(): URL {
  const ext = path.extname(fileURLToPath(import.meta.url));
  return new URL(`./thread${ext}`, import.meta.url);
}

const NEVER = new AbortController().signal;

export function createOffload(threads: number): Offload {
  let run: (task: Task, signal: AbortSignal) => Promise<TaskResults[Task['kind']]>;
  let close = async (): Promise<void> => {};
  if (threads === 0) {
    run = taskRunner();
  } else {
    const pool = new WorkerPool<Task, TaskResults[Task['kind']]>({ size: threads, entry: threadEntry(), what: "a job's work" });
    run = (task, signal) => pool.run(task, signal);
    close = () => pool.close();
  }
  return {
    threads,
    attempt: async (attempt, signal) => (await run({ kind: 'attempt', attempt }, signal)) as Output[],
    outbox: async (mail) => void (await run({ kind: 'outbox', mail }, NEVER)),
    close,
  };
}
