import { parentPort, workerData } from 'node:worker_threads';
import { HopperError } from '../../errors.js';
import type { PageLimits } from './cost.js';
import { pageRows } from './rows.js';

// The page worker: one page's bytes in, its CSV or JSONL chunk out. It exists
// so that JSON.parse of a page (a hostile API can send millions of tiny
// objects that parse for seconds and take gigabytes) runs on another thread
// with its own, capped heap, while the daemon's event loop keeps answering. A
// page whose parse could take more heap than allowed is refused before it is
// parsed (cost.ts says why the cap alone is not enough). It keeps no state
// between pages: the step sends the CSV header back with each page.

/** What the step tells the worker once, when it starts it (workerData). */
export interface PagesConfig {
  format: 'csv' | 'jsonl';
  /** Paths in each answer, e.g. `result.records` and `result.total`. */
  records: string;
  total: string;
  maxPageBytes: number;
  limits: PageLimits;
}

/** One page to turn into rows. */
export interface PageJob {
  /** The page's bytes as received (decoded), transferred to the worker, not copied. */
  bytes: ArrayBuffer;
  /** The offset the page was asked for, and how many records (the `limit` sent). */
  offset: number;
  asked: number;
  /** The CSV columns, from the first page; undefined until a page had records. */
  header: string[] | undefined;
  /** Whether the chunk starts with the header line (the first rows written). */
  withHeader: boolean;
}

export type PageReply =
  | { ok: true; count: number; total: number; header: string[] | undefined; chunk: Uint8Array }
  | { ok: false; code: string; message: string };

const config = workerData as PagesConfig;

parentPort!.on('message', (job: PageJob) => {
  let reply: PageReply;
  try {
    reply = pageRows(config, job);
  } catch (err) {
    reply = err instanceof HopperError ? { ok: false, code: err.code, message: err.message } : { ok: false, code: 'E_PAGES', message: `the page at offset ${job.offset} could not be turned into rows: ${(err as Error).message}` };
  }
  parentPort!.postMessage(reply, reply.ok ? [reply.chunk.buffer as ArrayBuffer] : []);
});
