import { mkdir, rm } from 'node:fs/promises';
import { checkOwnFolder } from '../fs/owndir.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { collectOutputs } from '../delivery/collect.js';
import { deliver, linksFor, type Link } from '../delivery/deliver.js';
import { HopperError, toHopperError } from '../errors.js';
import type { Recipe } from '../recipes/recipe.js';
import { scrub, secretValues } from '../redact.js';
import { printable } from '../text.js';
import { policyFor } from '../net/outbound.js';
import { runOneStep } from '../steps/index.js';
import { JobLog } from '../steps/joblog.js';
import { throwIfJobAborted } from '../steps/step.js';
import { stepScope } from '../steps/plan.js';
import type { Job } from '../store/jobs.js';
import type { Output } from '../store/outputs.js';
import { formatBytes } from '../units.js';

export function jobDir(ctx: Context, jobId: string): string {
  return path.join(ctx.paths.jobs, jobId);
}

/** Where a job's steps work; made afresh for each run. */
export function workDirOf(ctx: Context, jobId: string): string {
  return path.join(jobDir(ctx, jobId), 'work');
}

/**
 * One run of a job: a fresh work dir, each step in order, then the outputs
 * checked and delivered. Throws a HopperError (secrets scrubbed) on failure;
 * when `signal` aborted, the error is its reason (cancel, timeout, shutdown).
 */
export async function runAttempt(ctx: Context, job: Job, recipe: Recipe, { attempt, run }: { attempt: number; run: number }, signal: AbortSignal): Promise<{ outputs: Output[]; links: Link[] }> {
  const dir = jobDir(ctx, job.id);
  const workDir = workDirOf(ctx, job.id);
  const secrets = secretValues(job.params, recipe.paramsSchema);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  // Steps, containers and job.log write here: both must be hopper's real folders, not links.
  checkOwnFolder(dir);
  checkOwnFolder(workDir);
  const log = new JobLog(path.join(dir, 'job.log'), secrets);
  log.note(`attempt ${attempt} of ${recipe.retries.attempts}: ${recipe.name} (${recipe.steps.length} steps)`);
  try {
    const scope = stepScope(job, recipe, attempt, workDir, ctx.paths.recipes, run);
    let lastZip: string | undefined;
    for (const [i, step] of recipe.steps.entries()) {
      throwIfJobAborted(signal);
      log.note(`step ${i + 1}/${recipe.steps.length}: ${step.kind}`);
      const result = await runOneStep(step, {
        workDir,
        scope,
        signal,
        log,
        secrets,
        job: { id: job.id, attempt, root: ctx.paths.root },
        resources: recipe.resources,
        docker: ctx.docker,
        outbound: policyFor(ctx.config),
      });
      lastZip = result.zips?.at(-1) ?? lastZip;
    }
    throwIfJobAborted(signal);
    const outputs = await deliver(ctx, job.id, recipe, await collectOutputs(workDir, recipe.output, lastZip), signal, scope);
    log.note(`delivered ${outputs.map((o) => `${o.name} (${formatBytes(o.bytes)})`).join(', ')}${recipe.output.upload === 's3' ? ' to S3' : ''}`);
    const links = await linksFor(ctx, outputs, ctx.clock.now());
    await rm(workDir, { recursive: true, force: true });
    return { outputs, links };
  } catch (err) {
    const e = toHopperError(signal.aborted ? signal.reason : err);
    // Stored, mailed and shown as it is: no secret, no control sequence from a remote server.
    const clean = new HopperError(e.code, printable(scrub(e.message, secrets)));
    log.note(`attempt ${attempt} ended: ${clean.code}: ${clean.message}`);
    throw clean;
  } finally {
    await log.close();
  }
}
