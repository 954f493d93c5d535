import path from 'node:path';
import type { Context } from '../context.js';
import { linksFor, type Link } from '../delivery/deliver.js';
import type { Recipe } from '../recipes/recipe.js';
import { attemptRecipe } from '../steps/attempt.js';
import { stepSettings } from '../steps/services.js';
import type { Job } from '../store/jobs.js';
import type { Output } from '../store/outputs.js';

/** Where a job's steps work; made afresh for each run (steps/attempt.ts). */
export function workDirOf(ctx: Context, jobId: string): string {
  return path.join(ctx.paths.jobs, jobId, 'work');
}

/**
 * One run of a job: its steps (on a worker thread: ctx.offload), then the
 * links to its outputs. Throws a HopperError (secrets scrubbed) on failure;
 * when `signal` aborted, the error is its reason (cancel, timeout, shutdown).
 */
export async function runAttempt(ctx: Context, job: Job, recipe: Recipe, { attempt, run }: { attempt: number; run: number }, signal: AbortSignal): Promise<{ outputs: Output[]; links: Link[] }> {
  const { root, recipes, jobs, outputs: outputsDir } = ctx.paths;
  const outputs = await ctx.offload.attempt(
    {
      input: {
        job: { id: job.id, requestId: job.requestId, notify: job.notify, params: job.params, priority: job.priority },
        recipe: attemptRecipe(recipe),
        attempt,
        run,
        paths: { root, recipes, jobs, outputs: outputsDir },
        dockerUp: ctx.docker?.up ?? false,
      },
      settings: stepSettings(ctx.config),
    },
    signal,
  );
  return { outputs, links: await linksFor(ctx, outputs, ctx.clock.now()) };
}
