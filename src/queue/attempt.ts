import type { Context } from '../context.js';
import { workDirIn } from '../paths.js';
import { linksFor, type Link } from '../delivery/deliver.js';
import type { Recipe } from '../recipes/recipe.js';
import { attemptRecipe } from '../steps/attempt.js';
import { stepSettings } from '../steps/services.js';
import type { Job } from '../store/jobs.js';
import type { Output, ProducedOutput } from '../store/outputs.js';

/** Where a job's steps work; made afresh for each run (steps/attempt.ts). */
export function workDirOf(ctx: Context, jobId: string): string {
  return workDirIn(ctx.paths.jobs, jobId);
}

/**
 * One run of a job: its steps (on a worker thread: ctx.offload), then the
 * links to its outputs; or what they produced, when it waits for the
 * delivery stage (an upload, a copy to another disk). Throws a HopperError
 * (secrets scrubbed) on failure; when `signal` aborted, the error is its
 * reason (cancel, timeout, shutdown).
 */
export async function runAttempt(
  ctx: Context,
  job: Job,
  recipe: Recipe,
  { attempt, run }: { attempt: number; run: number },
  signal: AbortSignal,
): Promise<{ outputs: Output[]; links: Link[] } | { produced: ProducedOutput[] }> {
  const { root, recipes, jobs, outputs: outputsDir } = ctx.paths;
  const outcome = await ctx.offload.attempt(
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
  if ('produced' in outcome) return outcome;
  return { outputs: outcome.delivered, links: await linksFor(ctx, outcome.delivered, ctx.clock.now()) };
}
