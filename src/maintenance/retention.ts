import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { workDirIn } from '../paths.js';

export interface SweepResult {
  outputs: number;
  workDirs: number;
  jobs: number;
  files: number;
}

const BATCH = 1000;

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Removes files in `dir` last changed before `before` (archived requests, sent emails). */
async function sweepFiles(dir: string, before: number): Promise<number> {
  let n = 0;
  for (const name of await entries(dir)) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => null);
    if (st?.isFile() && st.mtimeMs < before) {
      await rm(file, { force: true });
      n++;
    }
  }
  return n;
}

/**
 * What `retention` in hopper.yaml promises: local outputs (and the work dirs
 * of ended jobs) go after `retention.outputs`; jobs with their attempts,
 * events, outputs and notifications, their logs, archived request files and
 * sent emails after `retention.jobs`. Jobs still waiting or running are never
 * touched. Runs in small batches so the lanes never wait on it.
 */
export async function sweep(ctx: Context): Promise<SweepResult> {
  const now = ctx.clock.now();
  const { outputsMs, jobsMs } = ctx.config.retention;
  // A job with both outputs and a job folder is looked up once, and only for its end time.
  const seen = new Map<string, { finished: number | null } | undefined>();
  const ended = (id: string): { finished: number | null } | undefined => {
    if (!seen.has(id)) seen.set(id, ctx.store.jobs.finishedAt(id));
    return seen.get(id);
  };
  const result: SweepResult = { outputs: 0, workDirs: 0, jobs: 0, files: 0 };

  for (const id of await entries(ctx.paths.outputs)) {
    const job = ended(id);
    if (!job || (job.finished !== null && job.finished < now - outputsMs)) {
      await rm(path.join(ctx.paths.outputs, id), { recursive: true, force: true });
      result.outputs++;
    }
  }
  for (const id of await entries(ctx.paths.jobs)) {
    const job = ended(id);
    if (job && job.finished !== null && job.finished < now - outputsMs) {
      const work = workDirIn(ctx.paths.jobs, id);
      if ((await stat(work).catch(() => null)) !== null) {
        await rm(work, { recursive: true, force: true });
        result.workDirs++;
      }
    }
    if (!job || (job.finished !== null && job.finished < now - jobsMs)) await rm(path.join(ctx.paths.jobs, id), { recursive: true, force: true });
  }
  for (;;) {
    // Not while a checkpoint holds the commits (store/checkpoints.ts): the WAL would not start over.
    await ctx.store.writable();
    const n = ctx.store.jobs.deleteEndedBefore(now - jobsMs, BATCH);
    result.jobs += n;
    if (n < BATCH) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  result.files += await sweepFiles(ctx.paths.archive, now - jobsMs);
  result.files += await sweepFiles(ctx.paths.outbox, now - jobsMs);
  return result;
}

/** Sweeps a minute after start, then every `everyMs`; returns a stop function. */
export function scheduleRetention(ctx: Context, everyMs: number, firstMs = 60_000): () => void {
  let timer: NodeJS.Timeout;
  let stopped = false;
  const run = async (): Promise<void> => {
    try {
      const r = await sweep(ctx);
      if (r.outputs + r.workDirs + r.jobs + r.files > 0) ctx.log.info({ ...r }, 'retention: removed what is past its time');
    } catch (err) {
      ctx.log.error({ err: (err as Error).message }, 'retention sweep failed; trying again later');
    }
    if (!stopped) {
      timer = setTimeout(() => void run(), everyMs);
      timer.unref();
    }
  };
  timer = setTimeout(() => void run(), firstMs);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
