import type { Context } from '../context.js';
import { HopperError } from '../errors.js';
import type { Recipe } from '../recipes/recipe.js';
import { stopLeftovers } from '../steps/leftovers.js';
import type { Job } from '../store/jobs.js';
import type { Store } from '../store/store.js';
import { workDirOf } from './attempt.js';
import { endJob, settleAttempt } from './settle.js';

// What the queue is rebuilt from at start: the store. A job that was running
// when hopper died goes back in the queue, or ends; a waiting job waits again.
// The dispatcher takes what this returns and decides from there.

/** Times a job may be cut short by hopper dying before that counts as its failure. */
export const MAX_INTERRUPTIONS = 3;

/**
 * What becomes of a job found running at start: `canceled` (a cancel came
 * before hopper died), `requeued` (it runs again, without using up an
 * attempt), or `failed` (it was cut short MAX_INTERRUPTIONS times already:
 * a job that keeps taking hopper down fails rather than doing it again).
 */
export function interruptedOutcome(job: Pick<Job, 'cancelRequested'>, interruptionsBefore: number): 'canceled' | 'requeued' | 'failed' {
  if (job.cancelRequested) return 'canceled';
  return interruptionsBefore < MAX_INTERRUPTIONS ? 'requeued' : 'failed';
}

/** Settles a job that was running when hopper stopped, as interruptedOutcome says. */
function recoverInterrupted(ctx: Context, job: Job, recipe: Recipe, now: number): void {
  const interruptions = ctx.store.jobs.attemptsOf(job.id).filter((a) => a.outcome === 'interrupted').length;
  const outcome = interruptedOutcome(job, interruptions);
  if (outcome === 'canceled') {
    settleAttempt(ctx, job.id, recipe, { ok: false, error: new HopperError('E_CANCELED', 'canceled by request') });
  } else if (outcome === 'requeued') {
    ctx.store.jobs.requeue(job.id, now, { code: 'E_INTERRUPTED', message: 'hopper stopped unexpectedly while this job ran' });
  } else {
    settleAttempt(ctx, job.id, recipe, { ok: false, error: new HopperError('E_INTERRUPTED', `hopper stopped unexpectedly while this job ran, ${interruptions + 1} times`) });
  }
  ctx.log.warn({ job: job.id, recipe: job.recipe, interruptions: interruptions + 1 }, 'job was running when hopper stopped');
}

/**
 * Runs `fn` for one job; if it throws, that job fails alone (E_RESUME), so
 * one unreadable job never keeps hopper from starting.
 */
export function isolated(ctx: Context, job: Job, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    const message = `hopper could not resume this job: ${(err as Error).message}`;
    ctx.log.error({ job: job.id, err: message }, 'job failed at start');
    ctx.store.jobs.finish(job.id, ctx.clock.now(), { state: 'failed', error: { code: 'E_RESUME', message }, notifications: [] });
  }
}

/**
 * Settles the jobs found running (their leftover commands stopped first) and
 * the waiting jobs whose cancel came before hopper died; returns the jobs that
 * wait, with their recipes, for the dispatcher to queue.
 */
export function recoverFromStore(ctx: Context, recipeOf: (job: Job) => Recipe, now: number): Array<{ job: Job; recipe: Recipe }> {
  const interrupted = ctx.store.jobs.running();
  const leftovers = stopLeftovers(interrupted.map((job) => workDirOf(ctx, job.id)));
  for (const job of interrupted) {
    const processes = leftovers.get(workDirOf(ctx, job.id));
    if (processes) ctx.log.warn({ job: job.id, processes }, 'stopped commands left running by a hopper that stopped unexpectedly');
    isolated(ctx, job, () => recoverInterrupted(ctx, job, recipeOf(job), now));
  }
  const waiting: Array<{ job: Job; recipe: Recipe }> = [];
  for (const job of ctx.store.jobs.pending()) {
    isolated(ctx, job, () => {
      const recipe = recipeOf(job);
      // A cancel accepted just before hopper died still counts.
      if (job.cancelRequested) endJob(ctx, job, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
      else waiting.push({ job, recipe });
    });
  }
  return waiting;
}

/**
 * The recent starts a rate limit reads, for the recipes among `waiting` that
 * have one: each with the longest window a waiting job of its recipe uses.
 */
export function recentStarts(
  store: Pick<Store, 'jobs'>,
  waiting: ReadonlyArray<{ recipe: Pick<Recipe, 'name' | 'rateLimit'> }>,
  now: number,
): Array<{ recipe: string; perMs: number; at: number }> {
  const limited = new Map<string, number>();
  for (const { recipe } of waiting) if (recipe.rateLimit) limited.set(recipe.name, Math.max(limited.get(recipe.name) ?? 0, recipe.rateLimit.perMs));
  // One argument per recipe: spread per waiting job, Math.max overflowed the stack at ~150,000 of them.
  const window = Math.max(3_600_000, ...limited.values());
  const out: Array<{ recipe: string; perMs: number; at: number }> = [];
  for (const s of store.jobs.startsSince(now - window)) {
    const perMs = limited.get(s.recipe);
    if (perMs !== undefined) out.push({ recipe: s.recipe, perMs, at: s.at });
  }
  return out;
}
