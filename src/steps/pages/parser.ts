import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { bundledSource } from '../../bundle.js';
import { HopperError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import { pageLimits } from './cost.js';
import { pageRows } from './rows.js';
import { sweepAfter } from './sweep.js';
import type { PageJob, PageReply, PagesConfig } from './worker.js';

// The step's side of the page worker (worker.ts): one worker per fetchPages
// step, started with the step and ended with it (done, failed or aborted).
// Pages go over by transfer, so a page's bytes are never copied and the main
// thread keeps none of them while the worker parses. The worker costs ~10 MiB
// to start and its heap ~10 MiB more while pages go through.

// The young generation, as small as the daemon's. Where node runs with
// --max-semi-space-size (the daemon: 4 MiB) that flag wins over resourceLimits
// in every thread; without it (tests, a plain `node`) V8 would give the worker
// 48 MiB of young generation.
const YOUNG_MB = 12;

/**
 * Pages up to this size are parsed on the step's own thread: JSON.parse of
 * 1 MiB of rows takes ~5-15 ms, no pause anyone sees, and a job of small
 * pages (5,000 narrow rows are well under this) starts no worker, whose
 * ~18 MiB (Node 24) would take a 200,000-row job past its memory budget.
 * The same cost check (cost.ts) refuses a hostile small page before its parse.
 */
export const INLINE_PAGE_BYTES = 1024 * 1024;

export interface ParsedPage {
  /** Records on the page (0: the end), and the `total` it names (NaN when it names none). */
  count: number;
  total: number;
  header: string[] | undefined;
  /** The page's rows as CSV or JSONL, UTF-8. */
  chunk: Buffer;
}

/**
 * The worker that parses one step's pages: from dist/ (node), the built file
 * beside this one; from src/ (tsx), worker.ts bundled (see bundled()).
 */
function startWorker(config: PagesConfig): Worker {
  const here = import.meta.url;
  const ext = here.slice(here.lastIndexOf('.'));
  const file = new URL(`./worker${ext}`, here);
  const options = { workerData: config, resourceLimits: { maxOldGenerationSizeMb: config.limits.heapMb, maxYoungGenerationSizeMb: YOUNG_MB } };
  return ext === '.ts' ? new Worker(bundled(file), { ...options, execArgv: [] }) : new Worker(file, options);
}

/**
 * Under tsx, worker.ts as one plain module (src/bundle.ts). On Node 20 a
 * worker inherited `--import tsx` but tsx installs its loader on the main
 * thread only, so a worker could not load .ts files; registering tsx in each
 * worker made it start in ~200 ms, against ~25 for the bundle.
 */
function bundled(file: URL): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(bundledSource(fileURLToPath(file)))}`);
}

export class PageParser {
  readonly #config: PagesConfig;
  readonly #signal: AbortSignal;
  #worker: Worker | undefined;
  /** The page being parsed: settled by the worker's reply, its death, or the abort. */
  #pending: { offset: number; resolve: (page: ParsedPage) => void; reject: (err: unknown) => void } | undefined;
  /** Why the worker is gone, once it is: a later page fails with that. */
  #gone: unknown;
  readonly #onAbort = (): void => void this.#end(this.#signal.reason);

  constructor(o: Omit<PagesConfig, 'limits'> & { signal: AbortSignal }) {
    this.#config = { format: o.format, records: o.records, total: o.total, maxPageBytes: o.maxPageBytes, limits: pageLimits(o.maxPageBytes) };
    this.#signal = o.signal;
  }

  /** The worker, started with the first page too big to parse here. */
  #workerNow(): Worker {
    if (this.#worker) return this.#worker;
    const worker = startWorker(this.#config);
    this.#worker = worker;
    worker.unref(); // idle: never what keeps a process from exiting
    worker.on('message', (reply: PageReply) => this.#reply(reply));
    worker.on('error', (err: Error & { code?: string }) => {
      const at = this.#pending ? `the page at offset ${this.#pending.offset}` : 'a page';
      // The backstop (cost.ts): a page that passed the estimate and still filled the worker's heap.
      this.#died(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new HopperError('E_PAGES_SIZE', `${at} needs more memory to parse than hopper allows (${this.#config.limits.heapMb} MiB, with maxPageBytes ${formatBytes(this.#config.maxPageBytes)}): ask for a smaller pageSize`)
          : new HopperError('E_PAGES', `${at} could not be parsed: the page parser failed (${err.message})`),
      );
    });
    worker.on('exit', (code) => this.#died(new HopperError('E_PAGES', `the page parser stopped (exit code ${code})`)));
    this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    return worker;
  }

  /**
   * One page's bytes (decoded) as rows. `body` is handed over to the worker:
   * it is empty afterwards.
   */
  parse(body: Buffer, job: Omit<PageJob, 'bytes'>): Promise<ParsedPage> {
    if (this.#signal.aborted) return Promise.reject(this.#signal.reason);
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    if (this.#pending) return Promise.reject(new Error('PageParser: one page at a time'));
    const size = body.byteLength;
    if (size <= INLINE_PAGE_BYTES) return this.#parseHere(body, job);
    const worker = this.#workerNow();
    // A Buffer of a few KiB lives in Node's shared pool, which cannot be given away: copy those.
    const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    const bytes = (whole ? body.buffer : body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) as ArrayBuffer;
    const parsed = new Promise<ParsedPage>((resolve, reject) => {
      this.#pending = { offset: job.offset, resolve, reject };
      worker.ref(); // a page in the works keeps the process alive
      worker.postMessage({ ...job, bytes } satisfies PageJob, [bytes]);
    });
    sweepAfter(size); // the body's pieces, read and copied, are garbage now (sweep.ts)
    return parsed;
  }

  #parseHere(body: Buffer, job: Omit<PageJob, 'bytes'>): Promise<ParsedPage> {
    try {
      const bytes = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
      const r = pageRows(this.#config, { ...job, bytes });
      return Promise.resolve({ count: r.count, total: r.total, header: r.header, chunk: Buffer.from(r.chunk.buffer, r.chunk.byteOffset, r.chunk.byteLength) });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Ends the worker (again: no harm); a page still being parsed fails. */
  close(): Promise<void> {
    return this.#end(new HopperError('E_PAGES', 'the page parser was closed'));
  }

  async #end(reason: unknown): Promise<void> {
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#died(reason);
    await this.#worker?.terminate();
  }

  #reply(reply: PageReply): void {
    const pending = this.#pending;
    this.#pending = undefined;
    this.#worker?.unref();
    if (!pending) return;
    if (reply.ok) pending.resolve({ count: reply.count, total: reply.total, header: reply.header, chunk: Buffer.from(reply.chunk.buffer, reply.chunk.byteOffset, reply.chunk.byteLength) });
    else pending.reject(new HopperError(reply.code, reply.message));
  }

  /** The worker is gone (or going) for `reason`: the page in the works, and any later one, fail with it. */
  #died(reason: unknown): void {
    this.#gone ??= reason;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(this.#gone);
  }
}
