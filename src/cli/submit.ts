import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, readSync, closeSync, statSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../fs/write.js';
import { lockHolder } from '../lock.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { InvalidFileError } from '../errors.js';
import { problemLines } from '../inbox/files.js';
import { requestFromFile } from '../inbox/request.js';
import { silentLogger } from '../log.js';
import type { Paths } from '../paths.js';
import type { Recipe } from '../recipes/recipe.js';
import { RecipeRegistry } from '../recipes/registry.js';
import { parseYaml } from '../schemas/document.js';
import { openStore } from '../store/store.js';
import { END_STATES } from '../store/jobs.js';
import { formatBytes, parseDuration } from '../units.js';
import { CliError, configFor, EXIT, rootPaths, say } from './common.js';
import { daemonBase, followOverHttp, submitOverHttp, tokenFor, warnIfClear } from './submit-http.js';

interface SubmitOptions {
  param: string[];
  email?: string;
  webhook?: string;
  priority?: string;
  id?: string;
  notBefore?: string;
  wait?: boolean;
  keepWaiting?: boolean;
  timeout?: string;
  http?: string;
}

function typesOf(recipe: Recipe | undefined, key: string): string[] {
  const props = (recipe?.paramsSchema as { properties?: Record<string, { type?: string | string[] }> } | undefined)?.properties;
  const t = props?.[key]?.type;
  return Array.isArray(t) ? t : t ? [t] : [];
}

/** `-p limit=100` fills a number where the recipe's schema says number; otherwise text. */
function coerce(types: string[], raw: string): unknown {
  if ((types.includes('integer') || types.includes('number')) && raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  if (types.includes('boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
  if ((types.includes('array') || types.includes('object')) && /^[[{]/.test(raw.trim())) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function buildRequest(recipeName: string, o: SubmitOptions, recipe: Recipe | undefined, id: string): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const p of o.param) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new CliError(`-p takes KEY=VALUE, got "${p}"`, EXIT.usage);
    const key = p.slice(0, eq);
    const types = typesOf(recipe, key);
    const value = coerce(types, p.slice(eq + 1));
    // An array param takes JSON, or one item per -p: `-p urls=A -p urls=B`.
    if (types.includes('array') && !Array.isArray(value)) params[key] = [...((params[key] as unknown[] | undefined) ?? []), value];
    else params[key] = value;
  }
  const request: Record<string, unknown> = { kind: 'request', recipe: recipeName, id, params };
  const notify: Record<string, string> = {};
  if (o.email) notify.email = o.email;
  if (o.webhook) notify.webhook = o.webhook;
  if (Object.keys(notify).length) request.notify = notify;
  if (o.priority !== undefined) {
    if (!/^-?\d+$/.test(o.priority)) throw new CliError(`--priority takes a whole number, got "${o.priority}"`, EXIT.usage);
    request.priority = Number(o.priority);
  }
  if (o.notBefore) request.notBefore = o.notBefore;
  return request;
}

/** Prints what is new in a file since `offset`; returns the new offset. */
function follow(file: string, offset: number): number {
  if (!existsSync(file)) return offset;
  const size = statSync(file).size;
  if (size <= offset) return size < offset ? 0 : offset;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(size - offset, 1024 * 1024));
    const n = readSync(fd, buf, 0, buf.length, offset);
    for (const line of buf.subarray(0, n).toString('utf8').split('\n')) if (line) say(`  | ${line}\n`);
    return offset + n;
  } finally {
    closeSync(fd);
  }
}

/** Follows a submitted request to its end, printing events and the job's log. */
async function waitFor(paths: Paths, requestId: string, fileName: string, timeoutMs: number | undefined): Promise<number> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  let store: ReturnType<typeof openStore> | undefined;
  let seenEvents = 0;
  let logOffset = 0;
  let warned = false;
  let lastWait = '';
  const started = Date.now();
  try {
    while (Date.now() < deadline) {
      const rejected = path.join(paths.rejected, `${fileName}.error.txt`);
      // Only a rejection of this very submission (an older one may have the same name).
      if (existsSync(rejected) && statSync(rejected).mtimeMs >= started - 1000) {
        say(readFileSync(rejected, 'utf8'));
        return EXIT.failure;
      }
      if (!store && existsSync(paths.db)) store = openStore(paths.db, { readonly: true });
      const job = store?.jobs.find(requestId);
      if (job) {
        const events = store!.jobs.events(job.id);
        for (const e of events.slice(seenEvents)) {
          say(`${new Date(e.at).toISOString()} ${job.id} ${e.event}${e.detail ? `: ${e.detail.split('\n')[0]}` : ''}\n`);
        }
        seenEvents = events.length;
        logOffset = follow(path.join(paths.jobs, job.id, 'job.log'), logOffset);
        const waiting = job.waitReason && (job.state === 'queued' || job.state === 'retrying') ? `waiting: ${job.waitReason} (position ${store!.jobs.position(job)} in the ${job.lane} lane)` : '';
        if (waiting && waiting !== lastWait) say(`${waiting}\n`);
        lastWait = waiting;
        if (END_STATES.includes(job.state)) {
          if (job.state === 'succeeded') {
            for (const o of store!.outputs.forJob(job.id)) {
              const where = o.location === 's3' ? `S3 object ${o.ref}` : path.join(paths.outputs, o.ref);
              say(`output: ${where} (${formatBytes(o.bytes)}, sha256 ${o.sha256}; links: hopper show ${job.id})\n`);
            }
            return EXIT.ok;
          }
          say(`${job.state}: ${job.errorMessage ?? ''}\n`);
          return EXIT.failure;
        }
      } else if (!warned && Date.now() - started > 15_000 && existsSync(path.join(paths.inbox, fileName))) {
        warned = true;
        process.stderr.write('the request is still in the inbox: is hopper running on this root? (still waiting)\n');
      }
      await sleep(200);
    }
    process.stderr.write(`gave up waiting after ${timeoutMs} ms; the request goes on (id ${requestId})\n`);
    return EXIT.failure;
  } finally {
    store?.close();
  }
}

/** The request's own id when none is given: what makes a repeated submit the same request. */
function newRequestId(): string {
  return `submit-${new Date().toISOString().slice(0, 10)}-${randomBytes(4).toString('hex')}`;
}

function durationOption(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new CliError(`--timeout: ${(err as Error).message}`, EXIT.usage);
  }
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .argument('<recipe>', 'the recipe to request')
    .option('-p, --param <KEY=VALUE>', 'a request parameter (repeatable; an array param takes JSON or one item per -p)', (v: string, all: string[]) => [...all, v], [])
    .option('--email <address>', 'email the result to this address')
    .option('--webhook <url>', 'POST job events to this URL')
    .option('--priority <n>', 'higher runs first')
    .option('--id <id>', 'idempotency key (default: a new random id)')
    .option('--not-before <time>', 'do not start before this ISO time')
    .option('--wait', 'follow the job with progress; exit 0 on success, 1 on failure')
    .option('--timeout <duration>', 'with --wait: give up waiting after this long (e.g. 30m)')
    .option('--keep-waiting', 'with --wait: wait even when no hopper runs on this root (the request runs once one starts)')
    .option('--http <url>', "send it to a daemon's POST /requests at this address instead (token: HOPPER_TOKEN, else this root's http.token for its own daemon)")
    .description('write a request into the inbox (atomically), or send it over HTTP')
    .action(async (recipeName: string, o: SubmitOptions, cmd: Command) => {
      const config = configFor(cmd);
      const timeoutMs = o.timeout ? durationOption(o.timeout) : undefined;
      const base = o.http === undefined ? undefined : daemonBase(o.http);
      const paths = rootPaths(cmd);
      if (!base && !existsSync(paths.inbox)) throw new CliError(`there is no inbox at ${paths.inbox}: is --root right? (hopper init makes the folders)`, EXIT.usage);
      // The root's recipes type the -p values; over HTTP they may not be there, and the daemon checks the values either way.
      const registry = new RecipeRegistry(paths.recipes, silentLogger());
      if (!base || existsSync(paths.recipes)) registry.loadAll();
      const id = o.id ?? newRequestId();
      const request = buildRequest(recipeName, o, registry.get(recipeName), id);
      if (base) {
        const token = tokenFor(base, process.env.HOPPER_TOKEN, config.http);
        warnIfClear(base, token);
        const jobId = await submitOverHttp(base, token, request);
        if (o.wait) process.exitCode = await followOverHttp(base, token, jobId, timeoutMs);
        return;
      }
      const text = stringify(request);
      const fileName = `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.yaml`;
      try {
        requestFromFile(parseYaml(text), registry, fileName);
      } catch (err) {
        if (err instanceof InvalidFileError) {
          throw new CliError(problemLines('request', err.problems).join('\n'), EXIT.failure);
        }
        throw err;
      }
      await writeFileAtomic(path.join(paths.inbox, fileName), text);
      say(`submitted ${id} (${path.join(paths.inbox, fileName)})\n`);
      if (!o.wait) return;
      // Said at once: without a daemon, waiting would only run out the timeout in silence.
      if (!lockHolder(path.join(paths.state, 'daemon.lock'))) {
        process.stderr.write(`no hopper is running on ${paths.root}: the request waits in the inbox and runs when hopper starts (hopper start, or systemctl start hopper)${o.keepWaiting ? '; waiting for it' : '; --keep-waiting waits for it'}\n`);
        if (!o.keepWaiting) {
          process.exitCode = EXIT.failure;
          return;
        }
      }
      process.exitCode = await waitFor(paths, id, fileName, timeoutMs);
    });
}
