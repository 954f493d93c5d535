import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { linksFor, type LinkContext } from '../delivery/deliver.js';
import { tailLines } from '../fs/tail.js';
import { lockHolder } from '../lock.js';
import type { Paths } from '../paths.js';
import { loadOrMakeKey } from '../keys/key.js';
import { statistics } from '../store/stats.js';
import type { JobState } from '../store/jobs.js';
import { openStore, type Store } from '../store/store.js';
import { daemonStatus, JOB_STATES, jobDetail, listJobs, MAX_LIMIT, type ScheduleStatus } from '../store/views.js';
import { formatBytes } from '../units.js';
import { VERSION } from '../version.js';
import { CliError, configFor, EXIT, openRootStore, rootPaths, say } from './common.js';
import { table, when } from './table.js';

interface ReadOptions {
  json?: boolean;
}

/**
 * Opens the database read-only, whether or not the daemon runs, and says
 * which it is (on stderr, so --json output stays clean).
 */
async function withStore<T>(paths: Paths, quiet: boolean, fn: (store: Store, running: boolean) => T | Promise<T>): Promise<T> {
  // Brings a database left by an older hopper up to date first (the views need its indexes).
  openRootStore(paths.db).close();
  const holder = lockHolder(path.join(paths.state, 'daemon.lock'));
  if (!quiet) {
    process.stderr.write(holder ? `hopper is running${holder.pid ? ` (pid ${holder.pid})` : ''}\n` : 'hopper is not running; this is the state it left\n');
  }
  const store = openStore(paths.db, { readonly: true });
  try {
    return await fn(store, holder !== undefined);
  } finally {
    store.close();
  }
}

function print(o: ReadOptions, json: unknown, human: () => string): void {
  if (o.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else say(human());
}

/** Download links as the daemon makes them, where the CLI can: the key exists, S3 is configured. */
async function linkContext(paths: Paths, config: Config): Promise<LinkContext | undefined> {
  if (!existsSync(paths.linkKey)) return undefined;
  return {
    clock: { now: () => Date.now() },
    s3: config.s3 ? (await import('../delivery/s3.js')).createS3(config.s3) : undefined,
    config,
    publicUrl: () => config.http.publicUrl ?? `http://localhost:${config.http.port}`,
    linkKey: loadOrMakeKey(paths.linkKey),
  };
}

function intOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw new CliError(`--${name} takes a whole number from ${min} to ${max}`, EXIT.usage);
  return Number(value);
}

/** Scheduled recipes; a next run already past is one missed while hopper was stopped. */
function scheduleTable(rows: ScheduleStatus[], running: boolean, now: number): string {
  const next = (r: ScheduleStatus): string => {
    if (r.nextRunAt && Date.parse(r.nextRunAt) <= now) return `${when(r.nextRunAt)} (${running ? 'due now' : 'missed: runs at start'})`;
    return when(r.nextRunAt);
  };
  return table(['scheduled', 'schedule', 'next run', 'last run', 'last job'], rows.map((r) => [r.recipe, r.schedule, next(r), when(r.lastRunAt), r.lastJob ?? '-']));
}

export function registerRead(program: Command): void {
  program
    .command('status')
    .option('--json', 'print JSON')
    .description('lanes, queue and totals (works whether or not the daemon runs)')
    .action(async (o: ReadOptions, cmd: Command) => {
      const config = configFor(cmd);
      await withStore(rootPaths(cmd), !!o.json, (store, running) => {
        const now = Date.now();
        const s = { ...daemonStatus(store, config, { version: VERSION, now }), running };
        print(o, s, () =>
          [
            `hopper ${s.version}: ${s.running ? 'running' : 'not running'}; ${s.queueLength} queued, ${s.delivering} delivering, ${s.processed} processed, ${s.failed} failed`,
            '',
            table(['lane', 'concurrency', 'running', 'queued'], Object.entries(s.lanes).map(([l, v]) => [l, String(v.concurrency), String(v.running), String(v.queued)])),
            ...(s.schedules.length ? ['', scheduleTable(s.schedules, s.running, now)] : []),
          ].join('\n'),
        );
      });
    });

  program
    .command('jobs')
    .option('--state <state>', `only jobs in this state (${JOB_STATES.join(', ')})`)
    .option('--recipe <name>', 'only jobs of this recipe')
    .option('--limit <n>', `how many (1 to ${MAX_LIMIT}, default 50)`)
    .option('--offset <n>', 'skip this many of the newest')
    .option('--json', 'print JSON')
    .description('jobs, newest first')
    .action(async (o: ReadOptions & { state?: string; recipe?: string; limit?: string; offset?: string }, cmd: Command) => {
      configFor(cmd);
      if (o.state && !(JOB_STATES as readonly string[]).includes(o.state)) throw new CliError(`--state takes one of ${JOB_STATES.join(', ')}`, EXIT.usage);
      const limit = intOption('limit', o.limit, 1, MAX_LIMIT);
      const offset = intOption('offset', o.offset, 0, 1e9);
      await withStore(rootPaths(cmd), !!o.json, (store) => {
        const list = listJobs(store, { state: o.state as JobState | undefined, recipe: o.recipe, limit, offset });
        print(o, list, () =>
          list.jobs.length === 0
            ? 'no jobs\n'
            : table(
                ['id', 'request', 'recipe', 'state', 'lane', 'created', 'finished', 'error'],
                list.jobs.map((j) => [j.id, j.requestId ?? '-', j.recipe, j.state, j.lane, when(j.createdAt), when(j.finishedAt), j.error?.message.split('\n')[0] ?? '']),
              ) + (list.total > list.offset + list.jobs.length ? `(${list.total} in all; --offset ${list.offset + list.jobs.length} for more)\n` : ''),
        );
      });
    });

  program
    .command('show')
    .argument('<id>', 'a job id or request id')
    .option('--lines <n>', 'how many lines of job.log to show (default 20)')
    .option('--json', 'print JSON')
    .description("one job: params (secrets masked), attempts, events, outputs with links, why it waits, its log's tail")
    .action(async (id: string, o: ReadOptions & { lines?: string }, cmd: Command) => {
      const config = configFor(cmd);
      const paths = rootPaths(cmd);
      const lines = intOption('lines', o.lines, 0, 10_000) ?? 20;
      const links = await linkContext(paths, config);
      const detail = await withStore(paths, !!o.json, (store) =>
        jobDetail(store, id, links ? { links: (outputs, since) => linksFor(links, outputs, since) } : {}),
      );
      links?.s3?.client.destroy();
      if (!detail) throw new CliError(`no job or request with id "${id}"`);
      const log = lines === 0 ? [] : tailLines(path.join(paths.jobs, detail.id, 'job.log'), lines, 64 * 1024);
      print(o, { ...detail, logTail: log }, () =>
        [
          `job ${detail.id}${detail.requestId ? ` (request ${detail.requestId})` : ''}: ${detail.recipe}, ${detail.state}, ${detail.lane} lane`,
          detail.waiting ? `waiting: ${detail.waiting.reason}${detail.waiting.position === null ? '' : ` (position ${detail.waiting.position})`}` : '',
          detail.error ? `error: ${detail.error.code}: ${detail.error.message}` : '',
          detail.cachedFrom ? `output reused from job ${detail.cachedFrom}` : '',
          `params: ${JSON.stringify(detail.params)}`,
          '',
          table(['event', 'at'], detail.events.map((e) => [e.event, when(e.at)])),
          detail.outputs.length
            ? table(['output', 'size', 'link'], detail.outputs.map((x) => [x.name, formatBytes(x.bytes), x.link ?? '-']), 400)
            : '',
          log.length ? `job.log (last ${log.length} lines):\n${log.map((l) => `  ${l}`).join('\n')}\n` : '',
        ]
          .filter((l) => l !== '')
          .join('\n') + '\n',
      );
    });

  program
    .command('stats')
    .option('--recipe <name>', 'only this recipe')
    .option('--json', 'print JSON')
    .description('requests, unique emails, errors, bytes, cache hits and run times per recipe')
    .action(async (o: ReadOptions & { recipe?: string }, cmd: Command) => {
      configFor(cmd);
      await withStore(rootPaths(cmd), !!o.json, (store) => {
        const s = statistics(store, { recipe: o.recipe });
        print(o, s, () =>
          table(
            ['recipe', 'requests', 'emails', 'errors', 'bytes', 'cache hits', 'mean s', 'p95 s'],
            Object.entries(s.totals).map(([r, t]) => [r, String(t.requests), String(t.emails), String(t.errors), formatBytes(t.bytes), String(t.cacheHits), String(t.meanRunSeconds ?? '-'), String(t.p95RunSeconds ?? '-')]),
          ),
        );
      });
    });
}
