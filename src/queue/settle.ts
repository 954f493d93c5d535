import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Context } from '../context.js';
import type { Link } from '../delivery/deliver.js';
import type { HopperError } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import type { Recipe } from '../recipes/recipe.js';
import { atomically } from '../store/atomic.js';
import type { Job } from '../store/jobs.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import { isRetryable } from '../outcomes.js';
import { backoffMs } from './retry.js';

export type AttemptResult = { ok: true; outputs: Output[]; links: Link[] } | { ok: true; produced: ProducedOutput[] } | { ok: false; error: HopperError };

/** What became of the job after an attempt, so the dispatcher knows whether to queue it again (or hand it to delivery). */
export type Settled = 'succeeded' | 'failed' | 'canceled' | 'retrying' | 'requeued' | 'delivering';

/** Ends a job as succeeded with these outputs (its own, or, for a cache hit, those of `cachedFrom`). */
export function succeed(ctx: Context, job: Job, recipe: Recipe, outputs: Output[], links: Link[], cachedFrom?: { id: string }): void {
  const now = ctx.clock.now();
  // A loop, not Math.min(...): a spread of one argument per output overflows the stack past ~150,000.
  const expiresAt = links.reduce((soonest, l) => Math.min(soonest, l.expiresAt), Infinity);
  const inlineBelow = recipe.output.inlineBelow ?? 0;
  const files = outputs.map((o, i) => ({
    name: o.name,
    bytes: o.bytes,
    sha256: o.sha256,
    link: links[i].url,
    // Small results ride along in webhooks, so a receiver needs no second request.
    ...(o.bytes < inlineBelow && o.location === 'local' ? { contentBase64: readFileSync(path.join(ctx.paths.outputs, o.ref)).toString('base64') } : {}),
  }));
  const notifications = planNotifications(job, recipe, { event: 'succeeded', files, expiresAt }, now);
  atomically(ctx.store.db, () => {
    ctx.store.outputs.replace(job.id, outputs);
    ctx.store.outputs.clearProduced(job.id);
    if (cachedFrom) ctx.store.jobs.markCachedFrom(job.id, cachedFrom.id);
    ctx.store.jobs.finish(job.id, now, { state: 'succeeded', notifications });
  });
}

/** Ends a job that will not run again (failed for good, or canceled). */
export function endJob(ctx: Context, job: Job, recipe: Recipe, state: 'failed' | 'canceled', error: { code: string; message: string }): void {
  const now = ctx.clock.now();
  const notifications = planNotifications(job, recipe, { event: state, error }, now);
  ctx.store.jobs.finish(job.id, now, { state, error, notifications });
}

/**
 * Records the end of an attempt with its consequences: success with outputs,
 * a retry after backoff, a final failure, a cancel, or a requeue when hopper
 * itself is stopping (that attempt does not count).
 */
export function settleAttempt(ctx: Context, jobId: string, recipe: Recipe, result: AttemptResult): Settled {
  const job = ctx.store.jobs.get(jobId);
  if (!job) return 'failed';
  if (result.ok && 'produced' in result) {
    if (job.cancelRequested) {
      endJob(ctx, job, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
      return 'canceled';
    }
    atomically(ctx.store.db, () => {
      ctx.store.outputs.recordProduced(job.id, result.produced);
      ctx.store.jobs.markDelivering(job.id, ctx.clock.now());
    });
    return 'delivering';
  }
  if (result.ok) {
    succeed(ctx, job, recipe, result.outputs, result.links);
    return 'succeeded';
  }
  const { code, message } = result.error;
  const error = { code, message };
  if (code === 'E_SHUTDOWN') {
    ctx.store.jobs.requeue(job.id, ctx.clock.now());
    return 'requeued';
  }
  if (code === 'E_CANCELED' || job.cancelRequested) {
    endJob(ctx, job, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
    return 'canceled';
  }
  if (isRetryable(code) && job.attempts < recipe.retries.attempts) {
    const now = ctx.clock.now();
    const nextAt = now + backoffMs(recipe.retries, job.attempts);
    ctx.store.jobs.retryLater(job.id, now, nextAt, error, planNotifications(job, recipe, { event: 'retrying', error }, now));
    return 'retrying';
  }
  endJob(ctx, job, recipe, 'failed', error);
  return 'failed';
}
