import type { WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { lookup, render, renderDeep } from '../template.js';
import { decodedBody, failureReason, getFollowing, httpUrl, isRedirect, readAll } from '../net/client.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { throwIfJobAborted, type StepRunner } from './step.js';
import { createFresh, resolveInside } from './workdir.js';

type FetchPagesStep = Extract<Step, { kind: 'fetchPages' }>;

const PAGE_TRIES = 3;
const PAGE_REDIRECTS = 5;

/** One CSV field, quoted as RFC 4180 says when it must be. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV columns: the first record's fields, in its order. */
function csvHeader(first: unknown): string[] {
  return typeof first === 'object' && first !== null ? Object.keys(first) : [];
}

// A page is turned into one string and written once: rows built one by one,
// each awaited, kept the page's records alive across many young-generation
// collections, so they were promoted and the old space grew by tens of MiB.
function csvChunk(records: unknown[], take: number, header: string[], withHeader: boolean, offset: number): string {
  let chunk = withHeader ? `${header.map(csvField).join(',')}\r\n` : '';
  for (let i = 0; i < take; i++) {
    const record = records[i] as Record<string, unknown>;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new HopperError('E_PAGES_SHAPE', `record ${offset + i} is not an object with fields, so it has no CSV row (ask for format: jsonl)`);
    }
    let line = '';
    for (let h = 0; h < header.length; h++) line += (h === 0 ? '' : ',') + csvField(record[header[h]]);
    chunk += `${line}\r\n`;
  }
  return chunk;
}

function jsonlChunk(records: unknown[], take: number): string {
  let chunk = '';
  for (let i = 0; i < take; i++) chunk += `${JSON.stringify(records[i])}\n`;
  return chunk;
}

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/** The rendered query: strings rendered; objects (CKAN `filters`) sent as JSON. */
function queryOf(step: FetchPagesStep, scope: Parameters<typeof render>[1]): Array<[string, string]> {
  return Object.entries(step.query).flatMap(([k, v]): Array<[string, string]> => {
    if (typeof v === 'string') {
      const text = render(v, scope);
      return text === '' ? [] : [[k, text]];
    }
    return [[k, JSON.stringify(v)]];
  });
}

/**
 * Pages through a JSON API in the style of CKAN's datastore_search (offset
 * and limit, `records` and `total` paths), streaming rows to CSV (header from
 * the first page) or JSONL. One page is in memory at a time; a page that
 * fails is tried again a few times, then the step fails naming its offset.
 */
export const fetchPagesStep: StepRunner<FetchPagesStep> = async (step, env) => {
  const base = httpUrl(render(step.url, env.scope, { strict: true }), 'E_PAGES_URL', env.secrets);
  // A header whose value renders empty (an optional API key not given) is left out.
  const headers = Object.fromEntries(Object.entries(renderDeep(step.headers, env.scope)).filter(([, v]) => v !== ''));
  const to = render(step.to, env.scope, { strict: true });
  const dest = await resolveInside(env.workDir, to, true);
  const format = step.format ?? (to.endsWith('.jsonl') ? 'jsonl' : 'csv');
  const limitText = step.limit === undefined ? '' : render(step.limit, env.scope);
  const max = limitText === '' ? Infinity : Number(limitText);
  if (!(max === Infinity || (Number.isInteger(max) && max >= 0))) throw new HopperError('E_PAGES_LIMIT', `limit "${limitText}" is not a whole number of rows`);
  const query = queryOf(step, env.scope);
  const part = `${dest}.part`;
  const out = await createFresh(part);
  const started = Date.now();
  let header: string[] | undefined;
  let rows = 0;
  try {
    for (let offset = 0; rows < max; ) {
      throwIfJobAborted(env.signal);
      const size = Math.min(step.pageSize, max - rows);
      const url = new URL(base);
      for (const [k, v] of query) url.searchParams.set(k, v);
      url.searchParams.set('offset', String(offset));
      url.searchParams.set('limit', String(size));
      const body = await page(url, headers, step, env, offset);
      const records = lookup(body, step.records);
      if (!Array.isArray(records)) throw new HopperError('E_PAGES_SHAPE', `the answer at offset ${offset} has no list at "${step.records}"`);
      if (records.length === 0) break;
      const take = Math.min(records.length, max - rows);
      if (format === 'csv') header ??= csvHeader(records[0]);
      await write(out, format === 'jsonl' ? jsonlChunk(records, take) : csvChunk(records, take, header!, rows === 0, offset));
      rows += take;
      offset += records.length;
      const total = Number(lookup(body, step.total));
      if (Number.isFinite(total) && offset >= total) break;
    }
    out.end();
    await once(out, 'finish');
    await rename(part, dest);
  } catch (err) {
    out.destroy();
    await rm(part, { force: true });
    throw err;
  }
  env.log.note(`fetchPages: ${rows} rows into ${to} in ${formatDuration(Date.now() - started)}`);
  return {};
};

/** One page, parsed; tried PAGE_TRIES times, then the step fails naming the offset. */
async function page(url: URL, headers: Record<string, string>, step: FetchPagesStep, env: Parameters<StepRunner<FetchPagesStep>>[1], offset: number): Promise<unknown> {
  let last = '';
  for (let attempt = 1; attempt <= PAGE_TRIES; attempt++) {
    const timeout = AbortSignal.timeout(timerMs(step.timeoutMs));
    const signal = AbortSignal.any([env.signal, timeout]);
    try {
      const { res } = await getFollowing(url, { headers: { 'accept-encoding': 'gzip, deflate, br', ...headers }, signal, policy: env.outbound, maxRedirects: PAGE_REDIRECTS, check: (next) => httpUrl(next, 'E_PAGES_URL', env.secrets) });
      if (res.statusCode !== 200) {
        res.destroy(); // an error page may be large, or never end
        last = isRedirect(res) ? `redirected more than ${PAGE_REDIRECTS} times` : `answered ${res.statusCode}`;
      } else {
        const body = await readAll(decodedBody(res), step.maxPageBytes, () => new HopperError('E_PAGES_SIZE', `the page at offset ${offset} is larger than maxPageBytes (${formatBytes(step.maxPageBytes)}): ask for a smaller pageSize`));
        try {
          return JSON.parse(body.toString('utf8')) as unknown;
        } catch {
          throw new HopperError('E_PAGES_SHAPE', `the answer at offset ${offset} is not JSON`);
        }
      }
    } catch (err) {
      throwIfJobAborted(env.signal);
      if (err instanceof HopperError) throw err;
      const code = (err as { code?: string }).code ?? '';
      // A header value no HTTP request can carry (a line break in a param): trying again cannot help.
      if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') throw new HopperError('E_PAGES_HEADER', `a header cannot be sent: ${scrub((err as Error).message, env.secrets)}`);
      last = timeout.aborted ? `no answer within ${formatDuration(step.timeoutMs)}` : failureReason(err, `no answer within ${formatDuration(step.timeoutMs)}`);
    }
    if (attempt < PAGE_TRIES) await sleep(200 * 2 ** attempt, undefined, { signal: env.signal }).catch(() => throwIfJobAborted(env.signal));
  }
  throw new HopperError('E_PAGES', `the page at offset ${offset} failed ${PAGE_TRIES} times (${scrub(last, env.secrets)}) from ${scrub(url.origin + url.pathname, env.secrets)}`);
}

