import type { WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { lookup, render } from '../template.js';
import { formatDuration, timerMs } from '../units.js';
import { throwIfJobAborted, type StepRunner } from './step.js';
import { createFresh, resolveInside } from './workdir.js';

type FetchPagesStep = Extract<Step, { kind: 'fetchPages' }>;

const PAGE_TRIES = 3;

/** One CSV field, quoted as RFC 4180 says when it must be. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
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
  const base = render(step.url, env.scope, { strict: true });
  // A header whose value renders empty (an optional API key not given) is left out.
  const headers = Object.fromEntries(
    Object.entries(step.headers)
      .map(([k, v]) => [k, render(v, env.scope)])
      .filter(([, v]) => v !== ''),
  );
  const to = render(step.to, env.scope, { strict: true });
  const dest = await resolveInside(env.workDir, to, true);
  const format = step.format ?? (to.endsWith('.jsonl') ? 'jsonl' : 'csv');
  const limitText = step.limit === undefined ? '' : render(step.limit, env.scope);
  const max = limitText === '' ? Infinity : Number(limitText);
  if (Number.isNaN(max) || max < 0) throw new HopperError('E_PAGES_LIMIT', `limit "${limitText}" is not a number of rows`);
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
      for (const r of records.slice(0, max - rows)) {
        if (format === 'jsonl') {
          await write(out, `${JSON.stringify(r)}\n`);
        } else {
          const record = (r ?? {}) as Record<string, unknown>;
          if (!header) {
            header = Object.keys(record);
            await write(out, `${header.map(csvField).join(',')}\r\n`);
          }
          await write(out, `${header.map((h) => csvField(record[h])).join(',')}\r\n`);
        }
        rows++;
      }
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

async function page(url: URL, headers: Record<string, string>, step: FetchPagesStep, env: Parameters<StepRunner<FetchPagesStep>>[1], offset: number): Promise<unknown> {
  let last = '';
  for (let attempt = 1; attempt <= PAGE_TRIES; attempt++) {
    const signal = AbortSignal.any([env.signal, AbortSignal.timeout(timerMs(step.timeoutMs))]);
    try {
      const res = await fetch(url, { headers, signal });
      if (!res.ok) {
        await res.body?.cancel();
        last = `answered ${res.status}`;
      } else {
        return await res.json();
      }
    } catch (err) {
      throwIfJobAborted(env.signal);
      const cause = (err as { cause?: { code?: string } }).cause;
      last = (err as Error).name === 'TimeoutError' ? `no answer within ${formatDuration(step.timeoutMs)}` : (cause?.code ?? (err as Error).message);
    }
    if (attempt < PAGE_TRIES) await sleep(200 * 2 ** attempt, undefined, { signal: env.signal }).catch(() => throwIfJobAborted(env.signal));
  }
  throw new HopperError('E_PAGES', `the page at offset ${offset} failed ${PAGE_TRIES} times (${scrub(last, env.secrets)}) from ${scrub(url.origin + url.pathname, env.secrets)}`);
}
