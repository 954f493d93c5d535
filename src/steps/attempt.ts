import { mkdirSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { collectOutputs } from '../delivery/collect.js';
import { produceOutputs } from '../delivery/deliver.js';
import { deliverLocalByRename } from '../delivery/local.js';
import type { S3Delivery } from '../delivery/s3.js';
import type { DockerAccess } from '../docker/engine.js';
import { HopperError, toHopperError } from '../errors.js';
import { checkOwnFolder } from '../fs/owndir.js';
import type { OutboundPolicy } from '../net/outbound.js';
import type { Recipe } from '../recipes/recipe.js';
import { scrub, secretValues } from '../redact.js';
import type { Job } from '../store/jobs.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import { printable } from '../text.js';
import { formatBytes } from '../units.js';
import { runOneStep } from './index.js';
import { JobLog } from './joblog.js';
import { stepScope } from './plan.js';
import { throwIfJobAborted } from './step.js';

// One run of a job's steps, written so it can run on a worker thread: its
// input is plain data (structured-cloneable), and what it needs beyond that
// (the Docker client, S3, the outbound policy) is handed in by whoever runs it.

/** What of a recipe its steps need: plain data, no compiled validator. */
export type AttemptRecipe = Pick<Recipe, 'name' | 'description' | 'paramsSchema' | 'resources' | 'retries' | 'steps' | 'output'>;

export interface AttemptInput {
  job: Pick<Job, 'id' | 'requestId' | 'notify' | 'params' | 'priority'>;
  recipe: AttemptRecipe;
  attempt: number;
  run: number;
  paths: { root: string; recipes: string; jobs: string; outputs: string };
  /** Whether the Docker engine answered when the job was admitted (a container step needs it). */
  dockerUp: boolean;
}

/** What runs the steps provides: the parts that are not plain data. */
export interface AttemptServices {
  docker: DockerAccess | undefined;
  s3: S3Delivery | undefined;
  outbound: OutboundPolicy;
}

export function attemptRecipe(recipe: Recipe): AttemptRecipe {
  const { name, description, paramsSchema, resources, retries, steps, output } = recipe;
  return { name, description, paramsSchema, resources, retries, steps, output };
}

/**
 * The job's work dir, made empty, as its real path: steps check every path
 * against it. Steps, containers and job.log write here: the job dir and the
 * work dir must be hopper's real folders, not links.
 */
function freshWorkDir(dir: string): string {
  const workDir = path.join(dir, 'work');
  // Synchronous, as the steps' own path work (see workdir.ts).
  mkdirSync(dir, { recursive: true });
  try {
    mkdirSync(workDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Left by an earlier run (a crash, a retry): it starts empty.
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir);
  }
  checkOwnFolder(dir);
  checkOwnFolder(workDir);
  return realpathSync.native(workDir);
}

/**
 * What a run of the steps ends with: its outputs delivered (local, by a
 * rename), or recorded for the delivery stage (S3, a copy to another disk).
 */
export type StepsOutcome = { delivered: Output[] } | { produced: ProducedOutput[] };

/**
 * One run of a job: a fresh work dir, each step in order, then the outputs
 * checked, and delivered when a rename does it (else left for the delivery
 * stage). Throws a HopperError (secrets scrubbed) on failure; when `signal`
 * aborted, the error is its reason.
 */
export async function runSteps(input: AttemptInput, services: AttemptServices, signal: AbortSignal): Promise<StepsOutcome> {
  const { job, recipe, attempt, paths } = input;
  const dir = path.join(paths.jobs, job.id);
  const secrets = secretValues(job.params, recipe.paramsSchema);
  const workDir = freshWorkDir(dir);
  const log = new JobLog(path.join(dir, 'job.log'), secrets);
  log.note(`attempt ${attempt} of ${recipe.retries.attempts}: ${recipe.name} (${recipe.steps.length} steps)`);
  try {
    const scope = stepScope(job, recipe, attempt, workDir, paths.recipes, input.run);
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
        job: { id: job.id, attempt, root: paths.root },
        resources: recipe.resources,
        docker: services.docker,
        outbound: services.outbound,
      });
      lastZip = result.zips?.at(-1) ?? lastZip;
    }
    throwIfJobAborted(signal);
    const produced = await produceOutputs(recipe, job.id, workDir, await collectOutputs(workDir, recipe.output, lastZip), scope, services.s3 !== undefined);
    // Delivered at once when a rename is all it takes; anything longer (an upload, a
    // copy to another disk) is the delivery stage's, after the lane slot is free.
    const delivered = produced.every((p) => p.location === 'local') ? deliverLocalByRename(paths.outputs, workDir, produced) : undefined;
    if (!delivered) {
      log.note(`steps done; ${produced.map((p) => `${p.name} (${formatBytes(p.bytes)})`).join(', ')} to be delivered${recipe.output.upload === 's3' ? ' to S3' : ''}`);
      return { produced };
    }
    log.note(`delivered ${delivered.map((o) => `${o.name} (${formatBytes(o.bytes)})`).join(', ')}`);
    // rmSync: Node does it natively in one call; the promise form walks the tree in JS, ~15x the time.
    rmSync(workDir, { recursive: true, force: true });
    return { delivered };
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
