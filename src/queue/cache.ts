import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Context } from '../context.js';
import { linksFor } from '../delivery/deliver.js';
import type { Recipe } from '../recipes/recipe.js';
import type { Job } from '../store/jobs.js';
import type { Output } from '../store/outputs.js';
import type { Store } from '../store/store.js';
import { succeed } from './settle.js';

// A recipe with `cache`: a job whose recipe version and params match one that
// succeeded within the window is delivered that job's outputs again, without
// a run. The dispatcher asks before it admits a job, and serves a hit.

/** A succeeded job whose outputs a waiting job can be given. */
export interface CacheHit {
  source: { id: string; finishedAt: number };
  outputs: Output[];
}

/**
 * The cache hit for `job` now, if it has one: its recipe caches, it waits for
 * its first run and its time has come, a job of the same key succeeded within
 * the window, and every output of that job is still there.
 */
export function cacheHit(
  store: Pick<Store, 'jobs' | 'outputs'>,
  outputsDir: string,
  job: Pick<Job, 'cacheKey' | 'state' | 'notBefore'>,
  recipe: Pick<Recipe, 'cacheMs'>,
  now: number,
): CacheHit | undefined {
  if (recipe.cacheMs === undefined || job.cacheKey === null || job.state !== 'queued' || (job.notBefore !== null && job.notBefore > now)) return undefined;
  const source = store.jobs.cacheSource(job.cacheKey, now - recipe.cacheMs);
  if (!source) return undefined;
  const outputs = store.outputs.forJob(source.id);
  if (outputs.length === 0 || !outputs.every((o) => o.location !== 'local' || existsSync(path.join(outputsDir, o.ref)))) return undefined;
  return { source, outputs };
}

/**
 * Settles `job` as succeeded with the hit's outputs (links made anew, the
 * job's end committed and notified as a run's would be). Resolves false when
 * that failed (the error is logged): the job should then run.
 */
export async function serveFromCache(ctx: Context, job: Job, recipe: Recipe, hit: CacheHit): Promise<boolean> {
  try {
    const links = await linksFor(ctx, hit.outputs, hit.source.finishedAt);
    await ctx.store.later(() => succeed(ctx, job, recipe, hit.outputs, links, hit.source));
    ctx.log.info({ job: job.id, recipe: recipe.name, from: hit.source.id }, 'job served from the cache');
    return true;
  } catch (err) {
    ctx.log.error({ job: job.id, err: (err as Error).message }, 'could not serve from the cache; the job runs');
    return false;
  }
}
