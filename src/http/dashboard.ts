import os from 'node:os';
import path from 'node:path';
import type { Context } from '../context.js';
import { freeDiskBytes } from '../fs/disk.js';
import { tailLines } from '../fs/tail.js';
import type { Need } from '../queue/resources.js';
import { scrubber, secretValues } from '../redact.js';
import { recipeActivity, runningJobs, type Activity } from '../store/dashboard.js';
import { storedSecrets } from '../store/views.js';
import { noQuery, Query } from './query.js';
import { JOB_REF } from './jobs.js';
import { HttpError, sendJson, type Route } from './router.js';

/** Lines `GET /jobs/:id/log` gives without `tail`, and the most it gives. */
export const DEFAULT_TAIL = 50;
export const MAX_TAIL = 1000;

export interface RunningJob {
  id: string;
  requestId: string | null;
  recipe: string;
  lane: string;
  startedAt: string | null;
  attempt: number;
  /** The last line of its job.log (secrets masked), or null before it printed one. */
  lastLine: string | null;
}

export interface Dashboard {
  now: string;
  resources: {
    /** What admission may hand out (config `resources`); `disk` null when unlimited. */
    budget: { cpus: number; memory: number; disk: number | null };
    /** What running jobs hold of it. */
    reserved: Need;
    /** The machine itself: its cpus and memory, and free disk where state/ is (null when it cannot be read). */
    host: { cpus: number; memory: number; freeMemory: number; load1: number; freeDisk: number | null };
  };
  running: { total: number; jobs: RunningJob[] };
  activity: Activity;
}

/** The last lines of a job's job.log with its secrets masked again (each whole line, before a long one is cut): job.log is scrubbed when written, this is the second net. */
function logTail(ctx: Context, jobId: string, lines: number, secrets: readonly string[], maxBytes?: number): string[] {
  return tailLines(jobLogFile(ctx, jobId), lines, maxBytes, scrubber(secrets));
}

function jobLogFile(ctx: Context, jobId: string): string {
  return path.join(ctx.paths.jobs, jobId, 'job.log');
}

function freeDisk(dir: string): number | null {
  try {
    return freeDiskBytes(dir);
  } catch {
    return null;
  }
}

/**
 * `GET /dashboard`: what the dashboard page needs beyond /status, /jobs and
 * /statistics: resources held against the budget and the host's, running jobs
 * with their last log line, and each recipe's median run time and jobs ended
 * per minute over the last hour. `reserved` is the dispatcher's own count.
 */
export function dashboardRoute(ctx: Context, reserved: () => Need): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/dashboard',
    handler({ res, url }) {
      noQuery(url);
      const now = ctx.clock.now();
      const { resources } = ctx.config;
      const running = runningJobs(ctx.store);
      const body: Dashboard = {
        now: new Date(now).toISOString(),
        resources: {
          budget: { cpus: resources.cpus, memory: resources.memory, disk: resources.disk >= Number.MAX_SAFE_INTEGER ? null : resources.disk },
          reserved: reserved(),
          host: { cpus: os.availableParallelism(), memory: os.totalmem(), freeMemory: os.freemem(), load1: os.loadavg()[0], freeDisk: freeDisk(ctx.paths.state) },
        },
        running: {
          total: running.total,
          jobs: running.jobs.map((j) => ({
            id: j.id,
            requestId: j.requestId,
            recipe: j.recipe,
            lane: j.lane,
            startedAt: j.startedAt,
            attempt: j.attempt,
            lastLine: logTail(ctx, j.id, 1, storedSecrets(j.paramsJson, j.schemaJson), 16 * 1024)[0] ?? null,
          })),
        },
        activity: recipeActivity(ctx.store, now),
      };
      sendJson(res, 200, body);
    },
  };
}

/** `GET /jobs/:id/log?tail=N`: the last N lines of a job's job.log (a job id or a request id), secrets masked. */
export function jobLogRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/jobs/:id/log',
    handler({ res, url, params }) {
      const tail = new Query(url, ['tail']).int('tail', 1, MAX_TAIL, DEFAULT_TAIL);
      if (!JOB_REF.test(params.id)) throw new HttpError(400, 'id: not a job id or request id (1 to 128 letters, digits, dots, dashes, colons or underscores)');
      const job = ctx.store.jobs.find(params.id);
      if (!job) throw new HttpError(404, `no job ${params.id}`);
      // The file is named by the stored job's id, never by the path's text.
      sendJson(res, 200, { id: job.id, lines: logTail(ctx, job.id, tail, secretValues(job.params, job.recipeSource.params)) });
    },
  };
}
