import { HopperError } from '../../errors.js';
import { lookup } from '../../template.js';
import { formatBytes } from '../../units.js';
import { ChunkBuilder, csvHeader, csvRows, jsonlRows } from './chunk.js';
import { mayCostMore, parseCost } from './cost.js';
import type { PageJob, PageReply, PagesConfig } from './worker.js';

// One page's bytes to its rows: what the page worker does, and what the step
// does itself for a page small enough to parse without a noticeable pause.

export function pageRows(config: PagesConfig, job: PageJob): Extract<PageReply, { ok: true }> {
  const allowed = (what: string): string => `than hopper allows (${what}, with maxPageBytes ${formatBytes(config.maxPageBytes)}): ask for a smaller pageSize`;
  const cost = mayCostMore(job.bytes.byteLength, config.limits.parseBudget) ? parseCost(new Uint8Array(job.bytes)) : 0;
  if (cost > config.limits.parseBudget) {
    throw new HopperError('E_PAGES_SIZE', `the page at offset ${job.offset} needs more memory to parse ${allowed(`up to ${formatBytes(cost)} for its ${formatBytes(job.bytes.byteLength)} of JSON, at most ${formatBytes(config.limits.parseBudget)}`)}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(job.bytes).toString('utf8'));
  } catch {
    throw new HopperError('E_PAGES_SHAPE', `the answer at offset ${job.offset} is not JSON`);
  }
  const records = lookup(body, config.records);
  if (!Array.isArray(records)) throw new HopperError('E_PAGES_SHAPE', `the answer at offset ${job.offset} has no list at "${config.records}"`);
  // An API that ignores `limit` (or a hostile one) could hand over any number of rows per page.
  if (records.length > job.asked) {
    throw new HopperError('E_PAGES_SHAPE', `the answer at offset ${job.offset} holds ${records.length} records where ${job.asked} were asked for (limit=${job.asked}): the API does not page as datastore_search does`);
  }
  const total = Number(lookup(body, config.total));
  if (records.length === 0) return { ok: true, count: 0, total, header: job.header, chunk: new Uint8Array(0) };
  // A record can hold more than its JSON shows: the first one's million keys are a million columns in every row.
  const out = new ChunkBuilder(config.limits.chunkBytes, () => new HopperError('E_PAGES_SIZE', `the rows of the page at offset ${job.offset} come to more ${allowed(`at most ${formatBytes(config.limits.chunkBytes)} of ${config.format.toUpperCase()}`)}`));
  const header = config.format === 'csv' ? (job.header ?? csvHeader(records[0])) : undefined;
  if (header) csvRows(records, header, job.withHeader, job.offset, out);
  else jsonlRows(records, out);
  return { ok: true, count: records.length, total, header, chunk: out.finish() };
}
