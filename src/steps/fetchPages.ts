import type { Writable } from 'node:stream';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { render, renderDeep } from '../template.js';
import { decodedBody, failureReason, getFollowing, httpUrl, isNoSuchHost, isRedirect, readAll } from '../net/client.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { PageParser } from './pages/parser.js';
import { throwIfJobAborted, type StepRunner } from './step.js';
import { createFresh, resolveInside } from './workdir.js';

// The CSV field format is the step's public contract (tests and recipes quote with it).
export { csvField } from './pages/chunk.js';

type FetchPagesStep = Extract<Step, { kind: 'fetchPages' }>;

const PAGE_TRIES = 3;
const PAGE_REDIRECTS = 5;

async function write(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
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
  // Where the rows start (datastore_search's own offset): rows before it are skipped, `limit` counts from it.
  const offsetText = step.offset === undefined ? '' : render(step.offset, env.scope);
  const start = offsetText === '' ? 0 : Number(offsetText);
  if (!(Number.isInteger(start) && start >= 0)) throw new HopperError('E_PAGES_LIMIT', `offset "${offsetText}" is not a whole number of rows`);
  const query = queryOf(step, env.scope);
  const part = `${dest}.part`;
  const out = createFresh(part);
  const started = Date.now();
  let parser: PageParser | undefined;
  let header: string[] | undefined;
  let rows = 0;
  try {
    // Pages are parsed on a worker thread (pages/worker.ts): a page of millions of
    // tiny objects stalls and swells that thread, never the daemon's.
    parser = new PageParser({ format, records: step.records, total: step.total, maxPageBytes: step.maxPageBytes, signal: env.signal });
    for (let offset = start; rows < max; ) {
      throwIfJobAborted(env.signal);
      const size = Math.min(step.pageSize, max - rows);
      const url = new URL(base);
      for (const [k, v] of query) url.searchParams.set(k, v);
      url.searchParams.set('offset', String(offset));
      url.searchParams.set('limit', String(size));
      const body = await page(url, headers, step, env, offset);
      // More records than `size` fail there, so every record on the page is a row to write.
      const parsed = await parser.parse(body, { offset, asked: size, header, withHeader: rows === 0 });
      if (parsed.count === 0) break;
      header = parsed.header;
      await write(out, parsed.chunk);
      rows += parsed.count;
      offset += parsed.count;
      if (Number.isFinite(parsed.total) && offset >= parsed.total) break;
    }
    out.end();
    await once(out, 'finish');
    await rename(part, dest);
  } catch (err) {
    // A write still on its way when a page fails ends in an error of its own: not this step's.
    out.on('error', () => {});
    out.destroy();
    // Removed once the stream is closed: a file still being opened would come back after an earlier rm.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    await rm(part, { force: true });
    throwIfJobAborted(env.signal);
    throw err;
  } finally {
    // The worker ends with the step. A JSON.parse under way cannot be cut short
    // (the thread ends when it returns, within its capped heap): a canceled job
    // does not wait for that.
    const closing = parser?.close();
    if (!env.signal.aborted) await closing;
  }
  env.log.note(`fetchPages: ${rows} rows into ${to} in ${formatDuration(Date.now() - started)}`);
  return {};
};

/** One page's bytes (decoded, at most maxPageBytes); tried PAGE_TRIES times, then the step fails naming the offset. */
async function page(url: URL, headers: Record<string, string>, step: FetchPagesStep, env: Parameters<StepRunner<FetchPagesStep>>[1], offset: number): Promise<Buffer> {
  let last = '';
  for (let attempt = 1; attempt <= PAGE_TRIES; attempt++) {
    const timeout = AbortSignal.timeout(timerMs(step.timeoutMs));
    const signal = AbortSignal.any([env.signal, timeout]);
    try {
      const { res, url: at } = await getFollowing(url, { headers: { 'accept-encoding': 'gzip, deflate, br', ...headers }, signal, policy: env.outbound, maxRedirects: PAGE_REDIRECTS, check: (next) => httpUrl(next, 'E_PAGES_URL', env.secrets) });
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.destroy(); // an error page may be large, or never end
        // 4xx says the request itself is wrong (but 408 and 429: come back later): asking again, now or in a retry, gets the same.
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          throw new HopperError('E_PAGES_CLIENT', scrub(`the data API answered ${`${status} ${res.statusMessage ?? ''}`.trim()} for the page at offset ${offset} of ${at.origin + at.pathname}`, env.secrets));
        }
        last = isRedirect(res) ? `redirected more than ${PAGE_REDIRECTS} times` : `answered ${status}`;
      } else {
        // readAll counts decoded bytes: a small gzip of a huge page stops at maxPageBytes.
        return await readAll(decodedBody(res), step.maxPageBytes, () => new HopperError('E_PAGES_SIZE', `the page at offset ${offset} is larger than maxPageBytes (${formatBytes(step.maxPageBytes)}): ask for a smaller pageSize`));
      }
    } catch (err) {
      throwIfJobAborted(env.signal);
      if (err instanceof HopperError) throw err;
      if (isNoSuchHost(err)) throw new HopperError('E_PAGES_NO_HOST', `no such host: ${scrub(url.hostname, env.secrets)}`);
      const code = (err as { code?: string }).code ?? '';
      // A header value no HTTP request can carry (a line break in a param): trying again cannot help.
      if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') throw new HopperError('E_PAGES_HEADER', `a header cannot be sent: ${scrub((err as Error).message, env.secrets)}`);
      last = timeout.aborted ? `no answer within ${formatDuration(step.timeoutMs)}` : failureReason(err, `no answer within ${formatDuration(step.timeoutMs)}`);
    }
    if (attempt < PAGE_TRIES) await sleep(200 * 2 ** attempt, undefined, { signal: env.signal }).catch(() => throwIfJobAborted(env.signal));
  }
  throw new HopperError('E_PAGES', `the page at offset ${offset} failed ${PAGE_TRIES} times (${scrub(last, env.secrets)}) from ${scrub(url.origin + url.pathname, env.secrets)}`);
}

