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
 * The links are a requester's, so every URL and every redirect hop goes only
 * where hopper's outbound policy (hopper.yaml's `outbound.allow`) lets hopper's
 * own steps go: the policy is hopper's own code, imported from the module its
 * run step names in HOPPER_OUTBOUND_MODULE, with the allow list from
 * HOPPER_OUTBOUND_ALLOW. An address given literally is checked before any
 * connection, a name as it is connected (after DNS, so no rebinding). A link
 * the policy refuses is a row with status `refused`. Without the policy the
 * script checks nothing (exit 3): it never requests a link unguarded.
 *
 * Broken and refused links are the report's content, not a failure: the exit
 * code is 0 whenever a report was written, 2 on bad usage, 3 without the
 * policy. No dependencies, no shell.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

const MAX_URLS = 100_000;
const COLUMNS = ['url', 'status', 'ok', 'final_url', 'redirects', 'ms', 'error'];

function usage(message) {
  process.stderr.write(`check.mjs: ${message}\n`);
  process.exit(2);
}

/** No policy, no checking: one line and exit 3, before any request. */
function unguarded(message) {
  process.stderr.write(`check.mjs: ${message}; no link was checked (hopper's run step sets HOPPER_OUTBOUND_MODULE and HOPPER_OUTBOUND_ALLOW)\n`);
  process.exit(3);
}

/** hopper's OutboundPolicy, built from the run step's environment. */
async function loadPolicy(env) {
  const where = env.HOPPER_OUTBOUND_MODULE;
  const allowText = env.HOPPER_OUTBOUND_ALLOW;
  if (!where) unguarded('HOPPER_OUTBOUND_MODULE is not set, so the outbound policy cannot be loaded');
  if (allowText === undefined) unguarded('HOPPER_OUTBOUND_ALLOW is not set');
  let allow;
  try {
    allow = JSON.parse(allowText);
  } catch {
    unguarded('HOPPER_OUTBOUND_ALLOW is not JSON');
  }
  if (!Array.isArray(allow) || !allow.every((a) => typeof a === 'string')) unguarded('HOPPER_OUTBOUND_ALLOW is not a JSON list of strings');
  let policyModule;
  try {
    policyModule = await import(where);
  } catch (err) {
    unguarded(`cannot load the outbound policy from ${where}: ${String(err.message).split('\n')[0]}`);
  }
  if (typeof policyModule.OutboundPolicy !== 'function') unguarded(`${where} exports no OutboundPolicy`);
  let policy;
  try {
    policy = new policyModule.OutboundPolicy(allow);
  } catch (err) {
    unguarded(`the outbound policy refused its allow list: ${err.message}`);
  }
  if (typeof policy.lookup !== 'function' || typeof policy.checkLiteral !== 'function' || typeof policy.agent !== 'function') unguarded(`${where} has an OutboundPolicy without lookup, checkLiteral and agent`);
  return policy;
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

/** Why a request failed, in words. */
function reason(err) {
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  const message = String(err.message ?? err);
  return err.code && !message.includes(err.code) ? `${err.code}: ${message}` : message;
}

/**
 * One request, no redirect followed, resolving with the response's status and
 * headers. The policy decides where it may go: `checkLiteral` for an address
 * in the URL (no lookup happens for one), `lookup` for a name (the addresses
 * it resolves to are checked as the connection is made).
 */
function request(url, method, options) {
  return new Promise((resolve, reject) => {
    options.policy.checkLiteral(url);
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      {
        method,
        headers: { 'user-agent': 'hopper-link-check', accept: '*/*' },
        lookup: options.policy.lookup,
        agent: options.policy.agent(url),
        signal: AbortSignal.timeout(options.timeoutMs),
      },
      (res) => {
        // The body is never needed: a HEAD has none; a GET's is dropped with its connection.
        if (method === 'HEAD') res.resume();
        else res.destroy();
        resolve({ status: res.statusCode ?? 0, location: typeof res.headers.location === 'string' ? res.headers.location : undefined });
      },
    );
    req.on('error', reject);
    req.end();
  });
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
      let res = await request(parsed, 'HEAD', options);
      if (res.status === 405 || res.status === 501) res = await request(parsed, 'GET', options);
      const location = res.location;
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
    if (err.code === 'E_OUTBOUND') {
      row.status = 'refused';
      row.error = `refused: ${err.message}`;
    } else {
      row.error = err.code === 'ERR_INVALID_URL' ? 'not a valid URL' : reason(err);
    }
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
  options.policy = await loadPolicy(process.env);
  const batches = Math.ceil(urls.length / options.batch);
  const lines = [COLUMNS.join(',')];
  let broken = 0;
  let refused = 0;
  let lastStart = 0;
  for (let b = 0; b < batches; b++) {
    const wait = lastStart + options.pauseMs - Date.now();
    if (b > 0 && wait > 0) await sleep(wait);
    lastStart = Date.now();
    const rows = await Promise.all(urls.slice(b * options.batch, (b + 1) * options.batch).map((u) => check(u, options)));
    for (const row of rows) {
      if (row.ok !== 'yes') broken++;
      if (row.status === 'refused') refused++;
      lines.push(COLUMNS.map((c) => csvField(row[c])).join(','));
    }
    process.stdout.write(`batch ${b + 1}/${batches}: ${Math.min((b + 1) * options.batch, urls.length)} of ${urls.length} checked, ${broken} broken\n`);
  }
  writeFileSync(options.out, lines.join('\r\n') + '\r\n');
  const refusedNote = refused ? ` (${refused} refused by the outbound policy)` : '';
  process.stdout.write(`report: ${urls.length} links, ${urls.length - broken} ok, ${broken} broken${refusedNote}\n`);
}

await main();
