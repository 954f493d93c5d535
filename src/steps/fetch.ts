import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { HopperError } from '../errors.js';
import { pump } from '../fs/pump.js';
import { decodedBody, failureReason, getFollowing, httpUrl, isNoSuchHost, isRedirect } from '../net/client.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { render, renderDeep } from '../template.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { throwIfJobAborted, type StepRunner } from './step.js';
import { createFresh, resolveInside } from './workdir.js';

type FetchStep = Extract<Step, { kind: 'fetch' }>;


/** Credentials in a URL travel as a Basic Authorization header, which a redirect elsewhere drops with the other headers. */
function splitCredentials(url: URL): { url: URL; authorization?: string } {
  if (!url.username && !url.password) return { url };
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return { url: bare, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

/** A safe file name from a URL's last path segment, for a `to:` that names a folder. */
export function nameFromUrl(url: URL): string {
  let last = url.pathname.split('/').filter(Boolean).pop() ?? '';
  try {
    last = decodeURIComponent(last);
  } catch {
    /* keep it encoded */
  }
  const safe = last.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 200);
  return safe || 'download';
}

/** Counts bytes as they pass and stops the download at the limit. */
function byteLimit(maxBytes: number, url: string): { counter: Transform; bytes: () => number } {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(new HopperError('E_FETCH_TOO_LARGE', `${url} is larger than maxBytes (${formatBytes(maxBytes)})`));
      else done(null, chunk);
    },
  });
  return { counter, bytes: () => bytes };
}

/**
 * GET a URL, following at most `maxRedirects`, streamed to a file. Written in
 * place, not as a `.part` renamed at the end (two entries fewer per job): a
 * fetch that fails removes it, and a failed attempt's work dir is never used
 * again (the next one starts empty), so nothing half written is taken for an output.
 */
export const fetchStep: StepRunner<FetchStep> = async (step, env) => {
  const split = splitCredentials(httpUrl(render(step.url, env.scope, { strict: true }), 'E_FETCH_URL', env.secrets));
  const first = split.url;
  let headers: Record<string, string> = renderDeep(step.headers, env.scope, { strict: true });
  if (split.authorization) headers.authorization = split.authorization;
  const to = render(step.to, env.scope, { strict: true });
  const dest = await resolveInside(env.workDir, to.endsWith('/') ? `${to}${nameFromUrl(first)}` : to, true);
  const shown = (u: URL): string => scrub(u.toString(), env.secrets);
  const timeout = AbortSignal.timeout(timerMs(step.timeoutMs));
  const signal = AbortSignal.any([env.signal, timeout]);
  const started = Date.now();
  let res: IncomingMessage | undefined;
  let created = false;
  try {
    const hop = await getFollowing(first, {
      headers,
      signal,
      policy: env.outbound,
      maxRedirects: step.maxRedirects,
      check: (next) => httpUrl(next, 'E_FETCH_URL', env.secrets),
      onRedirect: (to) => env.log.note(`redirected to ${shown(to)}`),
    });
    res = hop.res;
    const url = hop.url;
    if (isRedirect(res)) {
      throw new HopperError('E_FETCH_REDIRECTS', `${shown(first)} redirected more than ${step.maxRedirects} times`);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const answer = `${status} ${res.statusMessage ?? ''}`.trim();
      // 4xx says the request itself is wrong (but 408 and 429: come back later); asking again gets the same.
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) throw new HopperError('E_FETCH_CLIENT', `the server answered ${answer} for ${shown(url)}`);
      throw new HopperError('E_FETCH_STATUS', `the server answered ${answer} for ${shown(url)}`);
    }
    const declared = Number(res.headers['content-length'] ?? NaN);
    if (!res.headers['content-encoding'] && declared > step.maxBytes) {
      throw new HopperError('E_FETCH_TOO_LARGE', `${shown(url)} is ${formatBytes(declared)}, more than maxBytes (${formatBytes(step.maxBytes)})`);
    }
    const limit = byteLimit(step.maxBytes, shown(url));
    const file = createFresh(dest);
    created = true;
    await pump([decodedBody(res), limit.counter, file], signal);
    env.log.note(`fetched ${formatBytes(limit.bytes())} from ${shown(url)} in ${formatDuration(Date.now() - started)}`);
    return {};
  } catch (err) {
    // Whatever of the body is left unread is not wanted: free the connection now.
    res?.destroy();
    if (created) await rm(dest, { force: true });
    throwIfJobAborted(env.signal);
    if (timeout.aborted) {
      throw new HopperError('E_FETCH_TIMEOUT', `${shown(first)} did not finish within ${formatDuration(step.timeoutMs)}`);
    }
    if (err instanceof HopperError) throw err;
    if (isNoSuchHost(err)) throw new HopperError('E_FETCH_NO_HOST', `no such host: ${scrub(first.hostname, env.secrets)}`);
    throw new HopperError('E_FETCH_NETWORK', `GET ${shown(first)} failed: ${scrub(failureReason(err, 'no answer'), env.secrets)}`);
  }
};
