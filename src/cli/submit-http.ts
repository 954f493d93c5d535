import { setTimeout as sleep } from 'node:timers/promises';
import type { ValidateFunction } from 'ajv';
import { stringify } from 'yaml';
import { isLoopback } from '../config/config.js';
import { createAjv } from '../schemas/ajv.js';
import { END_STATES, type JobState } from '../store/jobs.js';
import { formatBytes } from '../units.js';
import { CliError, EXIT, say } from './common.js';

// `hopper submit --http URL`: the request goes to a daemon's POST /requests
// (on this host or another) instead of into an inbox folder, and --wait
// follows it through GET /jobs/:id. The token comes from HOPPER_TOKEN or, for
// this root's own daemon, its config's http.token; never from the command line
// (where `ps` shows it).

const ANSWER_MS = 30_000;
const POLL_MS = 500;

interface Problem {
  path: string;
  line: number | null;
  column: number | null;
  message: string;
}

/** What the CLI reads of POST /requests' 200/201 answer. */
interface Accepted {
  id: string;
  links?: { self?: string };
}

/** An error answer: `{error}`, with `problems` for a request that is not valid. */
interface Refusal {
  error: string;
  problems?: Problem[];
}

/** What the CLI reads of GET /jobs/:id. */
interface JobView {
  id: string;
  state: string;
  events: Array<{ event: string; at: string }>;
  outputs: Array<{ name: string; bytes: number; link: string | null }>;
  waiting: { reason: string; position: number | null } | null;
  error: { code: string; message: string } | null;
}

const text = { type: 'string' } as const;
const nullable = (schema: object): object => ({ anyOf: [schema, { type: 'null' }] });
const ANSWER_SCHEMAS = {
  accepted: { type: 'object', required: ['id'], properties: { id: text, links: { type: 'object', properties: { self: text } } } },
  refusal: {
    type: 'object',
    required: ['error'],
    properties: {
      error: text,
      problems: {
        type: 'array',
        items: { type: 'object', required: ['path', 'message'], properties: { path: text, message: text, line: nullable({ type: 'integer' }), column: nullable({ type: 'integer' }) } },
      },
    },
  },
  job: {
    type: 'object',
    required: ['id', 'state', 'events', 'outputs'],
    properties: {
      id: text,
      state: text,
      events: { type: 'array', items: { type: 'object', required: ['event', 'at'], properties: { event: text, at: text } } },
      outputs: { type: 'array', items: { type: 'object', required: ['name', 'bytes'], properties: { name: text, bytes: { type: 'number' }, link: nullable(text) } } },
      waiting: nullable({ type: 'object', required: ['reason'], properties: { reason: text, position: nullable({ type: 'integer' }) } }),
      error: nullable({ type: 'object', required: ['message'], properties: { code: text, message: text } }),
    },
  },
};

/** The daemon's answers, checked where they come in (another host may answer anything): compiled on first use. */
let answers: { accepted: ValidateFunction<Accepted>; refusal: ValidateFunction<Refusal>; job: ValidateFunction<JobView> } | undefined;
function answerCheck(): NonNullable<typeof answers> {
  if (!answers) {
    const ajv = createAjv();
    answers = { accepted: ajv.compile<Accepted>(ANSWER_SCHEMAS.accepted), refusal: ajv.compile<Refusal>(ANSWER_SCHEMAS.refusal), job: ajv.compile<JobView>(ANSWER_SCHEMAS.job) };
  }
  return answers;
}

/** The `error` of an answer, or what the answer is when it has none. */
function errorText(body: unknown): string {
  return answerCheck().refusal(body) ? body.error : "an answer that is not hopper's";
}


/** No answer from the daemon (not running, restarting, the network): --wait tries again until its timeout. */
class Unreachable extends CliError {}

/** The daemon's base URL from --http: a bare host:port gets http://; a trailing slash goes. */
export function daemonBase(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`--http takes the daemon's address, like http://127.0.0.1:8765; got "${raw}"`, EXIT.usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--http takes an http:// or https:// address; got "${raw}"`, EXIT.usage);
  url.search = '';
  url.hash = '';
  return url.href.replace(/\/+$/, '');
}

/** A URL's host is this machine ([::1] as URL writes it, too). */
const onThisHost = (url: URL): boolean => isLoopback(url.hostname.replace(/^\[(.*)\]$/, '$1'));

/**
 * The token to send to `base`: HOPPER_TOKEN when set; else this root's
 * http.token, but only to this root's own daemon (its port on this host, or its
 * publicUrl): a token is not handed to whatever address --http names.
 */
export function tokenFor(base: string, env: string | undefined, config: { token: string | undefined; port: number; publicUrl: string | undefined }): string | undefined {
  if (env) return env;
  if (!config.token) return undefined;
  const url = new URL(base);
  const own = (onThisHost(url) && Number(url.port || 80) === config.port) || (config.publicUrl !== undefined && new URL(config.publicUrl).origin === url.origin);
  return own ? config.token : undefined;
}

/** Said once: a token sent in clear text to another host can be read on the way. */
export function warnIfClear(base: string, token: string | undefined): void {
  const url = new URL(base);
  if (token && url.protocol === 'http:' && !onThisHost(url)) {
    process.stderr.write(`warning: the token goes to ${url.host} over plain http, readable on the way; use https:// where the daemon is behind a TLS proxy\n`);
  }
}

async function call(url: string, token: string | undefined, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? 'GET',
      body: init.body,
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/yaml' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(ANSWER_MS),
      redirect: 'error',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new Unreachable(`no hopper answered at ${new URL(url).origin} (${cause})`, EXIT.failure);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    throw new CliError(`${new URL(url).origin} answered ${res.status} with something that is not hopper's JSON`, EXIT.failure);
  }
  return { status: res.status, body };
}

/** Sends the request; returns the job's id (throws a CliError with the daemon's reasons when refused). */
export async function submitOverHttp(base: string, token: string | undefined, request: Record<string, unknown>): Promise<string> {
  const { status, body } = await call(`${base}/requests`, token, { method: 'POST', body: stringify(request) });
  const check = answerCheck();
  if ((status === 201 || status === 200) && check.accepted(body)) {
    say(`${status === 201 ? 'submitted' : 'already submitted'} ${String(request.id)}: job ${body.id} (${body.links?.self ?? ''})\n`);
    return body.id;
  }
  const problems = (check.refusal(body) && body.problems) || [];
  const lines = problems.map((p) => `request${p.line === null ? '' : `:${p.line}:${p.column ?? 1}`}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
  const hint = status === 401 ? " (set HOPPER_TOKEN to the daemon's http.token)" : status === 403 ? ' (the daemon takes requests over HTTP only with a token, or with http.allowAnonymousSubmit)' : '';
  throw new CliError([`${base}/requests refused the request (${status}): ${errorText(body)}${hint}`, ...lines].join('\n'), EXIT.failure);
}

/** Follows a job through GET /jobs/:id until it ends: its events, why it waits, its outputs. */
export async function followOverHttp(base: string, token: string | undefined, id: string, timeoutMs: number | undefined): Promise<number> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let seenEvents = 0;
  let lastWait = '';
  let away = false;
  while (Date.now() < deadline) {
    let answer: Awaited<ReturnType<typeof call>>;
    try {
      answer = await call(`${base}/jobs/${encodeURIComponent(id)}`, token);
      if (answer.status === 503) throw new Unreachable(`${base} answered 503: ${errorText(answer.body)}`, EXIT.failure);
    } catch (err) {
      // A daemon restarting (or a network blip) does not end the wait; the job goes on there.
      if (!(err instanceof Unreachable)) throw err;
      if (!away) process.stderr.write(`${err.message}; still waiting\n`);
      away = true;
      await sleep(POLL_MS * 4);
      continue;
    }
    if (away) process.stderr.write(`${base} answers again\n`);
    away = false;
    const { status, body } = answer;
    if (status !== 200) throw new CliError(`${base}/jobs/${id} answered ${status}: ${errorText(body)}`, EXIT.failure);
    if (!answerCheck().job(body)) throw new CliError(`${base}/jobs/${id} answered with a job document this hopper cannot read`, EXIT.failure);
    const job = body;
    for (const e of job.events.slice(seenEvents)) say(`${e.at} ${job.id} ${e.event}\n`);
    seenEvents = job.events.length;
    const waiting = job.waiting ? `waiting: ${job.waiting.reason}${job.waiting.position === null ? '' : ` (position ${job.waiting.position})`}` : '';
    if (waiting && waiting !== lastWait) say(`${waiting}\n`);
    lastWait = waiting;
    if (END_STATES.includes(job.state as JobState)) {
      if (job.state === 'succeeded') {
        for (const o of job.outputs) say(`output: ${o.name} (${formatBytes(o.bytes)}): ${o.link ?? 'no link'}\n`);
        return EXIT.ok;
      }
      say(`${job.state}: ${job.error?.message ?? ''}\n`);
      return EXIT.failure;
    }
    await sleep(POLL_MS);
  }
  process.stderr.write(`gave up waiting after ${timeoutMs} ms; the request goes on (job ${id})\n`);
  return EXIT.failure;
}
