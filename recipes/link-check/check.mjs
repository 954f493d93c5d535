#!/usr/bin/env node
/**
 * Checks a list of URLs and writes a CSV report: the link-check recipe's worker.
 *
 *   node check.mjs --out report.csv [--urls "URL\nURL..."] [--list FILE]
 *                  [--batch 10] [--pause-ms 1000] [--timeout-ms 15000] [--max-redirects 10]
 *
 * URLs come from --urls (one per line) or, when that is empty, from --list (one
 * per line, # starts a comment). They are checked `batch` at a time, and each
 * batch starts at least `pause-ms` after the one before: the rate limit that
 * keeps a weekly check polite to the sites it visits. Redirects are followed by
 * hand so the report shows each hop. HEAD first; a server that refuses HEAD is
 * asked again with GET (the body is not read).
 *
 * Broken links are the report's content, not a failure: the exit code is 0
 * whenever a report was written, 2 on bad usage. No dependencies, no shell.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const MAX_URLS = 100_000;
const COLUMNS = ['url', 'status', 'ok', 'final_url', 'redirects', 'ms', 'error'];

function usage(message) {
  process.stderr.write(`check.mjs: ${message}\n`);
  process.exit(2);
}

function intOption(values, name, fallback, min, max) {
  const raw = values[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) usage(`--${name} takes a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function readOptions(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        out: { type: 'string' },
        urls: { type: 'string' },
        list: { type: 'string' },
        batch: { type: 'string' },
        'pause-ms': { type: 'string' },
        'timeout-ms': { type: 'string' },
        'max-redirects': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    usage(err.message);
  }
  const v = parsed.values;
  if (!v.out) usage('--out FILE is required');
  return {
    out: v.out,
    urls: v.urls ?? '',
    list: v.list ?? '',
    batch: intOption(v, 'batch', 10, 1, 100),
    pauseMs: intOption(v, 'pause-ms', 1000, 0, 600_000),
    timeoutMs: intOption(v, 'timeout-ms', 15_000, 100, 600_000),
    maxRedirects: intOption(v, 'max-redirects', 10, 0, 50),
  };
}

function urlsOf(options) {
  let text = options.urls;
  if (!text.trim() && options.list) {
    try {
      text = readFileSync(options.list, 'utf8');
    } catch (err) {
      usage(`cannot read the list ${options.list}: ${err.code ?? err.message}`);
    }
  }
  const urls = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  if (urls.length === 0) usage('no URLs: give --urls or a --list with one URL per line');
  if (urls.length > MAX_URLS) usage(`${urls.length} URLs is more than ${MAX_URLS}; split the list`);
  return urls;
}

/** RFC 4180: quote a field holding a comma, a quote or a line break; double the quotes. */
function csvField(value) {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Why a fetch failed, in words: undici hides the system error in `cause`. */
function reason(err) {
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  const cause = err.cause;
  if (cause?.code) return `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return err.message;
}

async function request(url, method, timeoutMs) {
  const res = await fetch(url, { method, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs), headers: { 'user-agent': 'hopper-link-check' } });
  // The body is never needed; cancelling it frees the connection at once.
  await res.body?.cancel().catch(() => {});
  return res;
}

async function check(url, options) {
  const started = Date.now();
  const row = { url, status: '', ok: 'no', final_url: '', redirects: '', ms: '', error: '' };
  const hops = [];
  let current = url;
  try {
    for (let hop = 0; ; hop++) {
      const parsed = new URL(current);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`not an http(s) URL: ${parsed.protocol}`);
      let res = await request(current, 'HEAD', options.timeoutMs);
      if (res.status === 405 || res.status === 501) res = await request(current, 'GET', options.timeoutMs);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        if (hop >= options.maxRedirects) throw new Error(`more than ${options.maxRedirects} redirects`);
        const next = new URL(location, current).href;
        hops.push(`${res.status} ${next}`);
        if (hops.filter((h) => h.endsWith(` ${next}`)).length > 1) throw new Error('redirect loop');
        current = next;
        continue;
      }
      row.status = String(res.status);
      row.ok = res.status >= 200 && res.status < 300 ? 'yes' : 'no';
      break;
    }
  } catch (err) {
    row.error = err instanceof TypeError && err.message === 'Invalid URL' ? 'not a valid URL' : reason(err);
  }
  row.final_url = current;
  row.redirects = hops.join(' -> ');
  row.ms = String(Date.now() - started);
  return row;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const options = readOptions(process.argv.slice(2));
  const urls = urlsOf(options);
  const batches = Math.ceil(urls.length / options.batch);
  const lines = [COLUMNS.join(',')];
  let broken = 0;
  let lastStart = 0;
  for (let b = 0; b < batches; b++) {
    const wait = lastStart + options.pauseMs - Date.now();
    if (b > 0 && wait > 0) await sleep(wait);
    lastStart = Date.now();
    const rows = await Promise.all(urls.slice(b * options.batch, (b + 1) * options.batch).map((u) => check(u, options)));
    for (const row of rows) {
      if (row.ok !== 'yes') broken++;
      lines.push(COLUMNS.map((c) => csvField(row[c])).join(','));
    }
    process.stdout.write(`batch ${b + 1}/${batches}: ${Math.min((b + 1) * options.batch, urls.length)} of ${urls.length} checked, ${broken} broken\n`);
  }
  writeFileSync(options.out, lines.join('\r\n') + '\r\n');
  process.stdout.write(`report: ${urls.length} links, ${urls.length - broken} ok, ${broken} broken\n`);
}

await main();
