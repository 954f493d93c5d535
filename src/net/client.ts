import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { HopperError } from '../errors.js';
import { scrub } from '../redact.js';
import type { OutboundPolicy } from './outbound.js';

// Steps and webhooks use node:http(s) rather than the global fetch: fetch (undici
// and its WHATWG streams) costs a daemon about 15 MiB of resident memory once
// loaded, and churns garbage per chunk; a 200,000-row datastore job peaked
// ~15 MiB higher with it (docs/benchmarks.md). And node:http takes a `lookup`,
// where the outbound policy refuses private addresses at connect time.

/** `text` as an http(s) URL, else a HopperError with `code` (showing the text with secrets masked). */
export function httpUrl(text: string, code: string, secrets: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HopperError(code, `not a URL: ${scrub(text, secrets).slice(0, 200)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HopperError(code, `only http and https URLs can be used, not ${url.protocol}`);
  return url;
}

export interface Hop {
  res: IncomingMessage;
  url: URL;
}

/**
 * One request, no redirect followed, to an address `policy` allows (checked
 * as the connection is made). Resolves with the response once its headers arrive.
 */
export function send(
  url: URL,
  o: { method?: 'GET' | 'POST'; headers: Readonly<Record<string, string>>; body?: string; signal: AbortSignal; policy: OutboundPolicy },
): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    o.policy.checkLiteral(url);
    const req = client.request(url, { method: o.method ?? 'GET', headers: withDefaults(o.headers), signal: o.signal, lookup: o.policy.lookup, agent: o.policy.agent(url) }, resolve);
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Some servers refuse a request without a User-Agent; the caller's own (any case) wins. */
function withDefaults(headers: Readonly<Record<string, string>>): Record<string, string> {
  const names = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
  return { ...(names.has('user-agent') ? {} : { 'user-agent': 'hopper' }), ...(names.has('accept') ? {} : { accept: '*/*' }), ...headers };
}

export function isRedirect(res: IncomingMessage): boolean {
  const status = res.statusCode ?? 0;
  return status >= 300 && status < 400 && typeof res.headers.location === 'string';
}

/**
 * GET, following at most `maxRedirects` redirects hop by hop. The caller's
 * headers (API keys of any name) go only to the origin they were given for.
 * `check` vets each redirect target (and may throw), and every hop must be an
 * address `policy` allows. The last response is
 * returned; if it is still a redirect, the limit was reached.
 */
export async function getFollowing(
  first: URL,
  o: { headers: Readonly<Record<string, string>>; signal: AbortSignal; policy: OutboundPolicy; maxRedirects: number; check: (next: string) => URL; onRedirect?: (to: URL) => void },
): Promise<Hop> {
  let url = first;
  let headers = o.headers;
  for (let hop = 0; ; hop++) {
    const res = await send(url, { headers, signal: o.signal, policy: o.policy });
    if (!isRedirect(res) || hop >= o.maxRedirects) return { res, url };
    res.resume();
    const next = o.check(new URL(res.headers.location!, url).toString());
    if (next.origin !== url.origin) headers = {};
    url = next;
    o.onRedirect?.(url);
  }
}

/** The body as sent, decoded when the server compressed it (ask with `accept-encoding`). */
export function decodedBody(res: IncomingMessage): Readable {
  const encoding = String(res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : null;
  if (!decoder) return res;
  // Linked both ways: a decoder given up on (a size limit, bad data) frees the socket too.
  pipeline(res, decoder, () => {});
  return decoder;
}

/** Reads a whole body into memory, failing with `tooLarge()` past `maxBytes` (decoded). */
export async function readAll(body: Readable, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}

/** Why a request failed, in a few words: a timeout, a socket error code, or the message. */
export function failureReason(err: unknown, timeoutText: string): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { name?: string; code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') return timeoutText;
  return e.code && e.code !== 'ABORT_ERR' ? e.code : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(err));
}

/** DNS says the name does not exist (not a passing failure such as EAI_AGAIN): trying again will not help. */
export function isNoSuchHost(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === 'ENOTFOUND' || e.cause?.code === 'ENOTFOUND';
}
