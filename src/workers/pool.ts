import { parentPort, Worker } from 'node:worker_threads';
import { HopperError, toHopperError } from '../errors.js';

// A small pool of worker threads that run tasks of one kind (a job's steps).
// The main thread keeps intake, the store and the lanes; work that burns CPU
// per job (streams, zip, checksums) runs beside it, one thread per core. A
// thread takes many tasks at once: they are I/O-bound and interleave there as
// they would on the main thread. Tasks go to the thread with the fewest.

interface Failure {
  code: string;
  message: string;
}

type ToThread<I> = { t: 'run'; id: number; input: I } | { t: 'abort'; id: number; reason: Failure };
type FromThread<O> = { t: 'done'; id: number; ok: true; value: O } | { t: 'done'; id: number; ok: false; error: Failure };

interface Task<O> {
  resolve: (value: O) => void;
  reject: (err: HopperError) => void;
}

interface Thread<O> {
  worker: Worker;
  tasks: Map<number, Task<O>>;
}

/** A signal that never aborts: for tasks nothing cancels (a preload, an email, a checkpoint). */
export const NEVER = new AbortController().signal;

export interface PoolOptions {
  /** Threads at most; they start as tasks come (none before the first, or one with preload). */
  size: number;
  /** The module a thread runs: it calls `serveTasks`. */
  entry: URL;
  /** Node flags for each thread; default: the process's own. */
  execArgv?: string[];
  /** Names the work in errors ("the job's steps"). */
  what: string;
}

/**
 * The young generation of a step thread. Once steps did their file work
 * synchronously, 16 MiB did ~8 % more trivial jobs a second than 6 (fewer
 * scavenges), and the 10,000-file burst peaked at 261 MiB against 273. (With
 * the earlier async file work, 12 MiB peaked at 349 MiB and 6 at 311.)
 */
const YOUNG_MB = 16;

const asFailure = (err: unknown): Failure => {
  const e = toHopperError(err);
  return { code: e.code, message: e.message };
};

export class WorkerPool<I, O> {
  private readonly threads: Array<Thread<O>> = [];
  private nextId = 1;
  private closed = false;
  /** What every thread runs first (see preload). */
  private first: I | undefined;

  constructor(private readonly options: PoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`a pool needs at least one thread, got ${options.size}`);
  }

  get size(): number {
    return this.options.size;
  }

  /** Tasks under way, across threads. */
  get busy(): number {
    return this.threads.reduce((n, t) => n + t.tasks.size, 0);
  }

  /**
   * Runs `input` on a thread. When `signal` aborts, the thread is told (with
   * the reason's code and message) and the promise settles with what the task
   * does then: a task stops its work itself, as it would on the main thread.
   */
  run(input: I, signal: AbortSignal): Promise<O> {
    if (this.closed) return Promise.reject(new HopperError('E_SHUTDOWN', 'hopper is stopping'));
    return this.runOn(this.pick(), input, signal);
  }

  /**
   * Makes `input` the first task of every thread: run now on the threads there
   * are (one is started if there is none), and first on each thread started
   * later. So threads arrive loaded (modules, say) before their first real task,
   * and the pool still starts only as many as the work asks for: a host of 32
   * cores does not hold 31 idle threads. Resolves once the threads there are now
   * have run it; a later thread's failure is its own first task's (not thrown).
   */
  preload(input: I): Promise<O[]> {
    if (this.closed) return Promise.reject(new HopperError('E_SHUTDOWN', 'hopper is stopping'));
    this.first = input;
    if (this.threads.length === 0) this.spawn(false);
    return Promise.all(this.threads.map((t) => this.runOn(t, input, NEVER)));
  }

  private runOn(thread: Thread<O>, input: I, signal: AbortSignal): Promise<O> {
    const id = this.nextId++;
    return new Promise<O>((resolve, reject) => {
      const onAbort = (): void => thread.worker.postMessage({ t: 'abort', id, reason: asFailure(signal.reason) } satisfies ToThread<I>);
      const settle = (): void => signal.removeEventListener('abort', onAbort);
      thread.tasks.set(id, {
        resolve: (value) => (settle(), resolve(value)),
        reject: (err) => (settle(), reject(err)),
      });
      thread.worker.postMessage({ t: 'run', id, input } satisfies ToThread<I>);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The thread with the fewest tasks; a new one while fewer than `size` run and all are busy. */
  private pick(): Thread<O> {
    let best: Thread<O> | undefined;
    for (const t of this.threads) if (!best || t.tasks.size < best.tasks.size) best = t;
    if (best && (best.tasks.size === 0 || this.threads.length >= this.options.size)) return best;
    return this.spawn();
  }

  private spawn(runFirst = true): Thread<O> {
    const worker = new Worker(this.options.entry, { name: `hopper ${this.options.what}`, execArgv: this.options.execArgv, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB } });
    // The daemon's server keeps the process alive; an idle thread must not.
    worker.unref();
    const thread: Thread<O> = { worker, tasks: new Map() };
    this.threads.push(thread);
    worker.on('message', (m: FromThread<O>) => {
      const task = thread.tasks.get(m.id);
      if (!task) return;
      thread.tasks.delete(m.id);
      if (m.ok) task.resolve(m.value);
      else task.reject(new HopperError(m.error.code, m.error.message));
    });
    const lost = (why: string): void => {
      const i = this.threads.indexOf(thread);
      if (i >= 0) this.threads.splice(i, 1);
      for (const task of thread.tasks.values()) task.reject(new HopperError('E_WORKER', `the thread running ${this.options.what} stopped (${why})`));
      thread.tasks.clear();
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    // Posted before any task the caller gives it: messages reach the thread in order.
    if (runFirst && this.first !== undefined) this.runOn(thread, this.first, NEVER).catch(() => {});
    return thread;
  }

  /** Stops every thread; tasks still under way fail with E_WORKER (the daemon stops its jobs first). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}

/** In a pool's thread: answers each task with `handle`'s result, or its error as code and message. */
export function serveTasks<I, O>(handle: (input: I, signal: AbortSignal) => Promise<O>): void {
  const port = parentPort;
  if (!port) throw new Error('serveTasks runs in a worker thread');
  const running = new Map<number, AbortController>();
  port.on('message', (m: ToThread<I>) => {
    if (m.t === 'abort') {
      running.get(m.id)?.abort(new HopperError(m.reason.code, m.reason.message));
      return;
    }
    const controller = new AbortController();
    running.set(m.id, controller);
    handle(m.input, controller.signal).then(
      (value) => port.postMessage({ t: 'done', id: m.id, ok: true, value } satisfies FromThread<O>),
      (err: unknown) => port.postMessage({ t: 'done', id: m.id, ok: false, error: asFailure(err) } satisfies FromThread<O>),
    ).finally(() => running.delete(m.id));
  });
}
