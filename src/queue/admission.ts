import { usesDocker, type Recipe } from '../recipes/recipe.js';
import { needOf } from './resources.js';
import type { Job } from '../store/jobs.js';
import { placementProblem, type SwarmView } from '../docker/swarm.js';
import { formatDuration } from '../units.js';

// May this job start now, and if not, why: pure functions of the job and a
// snapshot of the daemon, each blocker on its own. The dispatcher gathers the
// snapshot and acts on the answer; lanes and resources come after these.

export interface Blocker {
  reason: string;
  /** When the blocker lifts by itself (a time), so the dispatcher wakes then. */
  until?: number;
  /** Waiting for the Docker engine: at `until` the job has waited its whole timeout and fails. */
  docker?: boolean;
}

/** What the blockers read of the daemon at one moment. */
export interface Snapshot {
  now: number;
  docker: { up: boolean; socketPath: string; problem?: string };
  /** With `docker.swarm`: the swarm as last read (undefined: containers run on this host). */
  swarm?: SwarmView;
  /** Running jobs per recipe name, and per group. */
  runningByRecipe: ReadonlyMap<string, number>;
  runningByGroup: ReadonlyMap<string, number>;
  /** hopper.yaml `groups`. */
  groups: Readonly<Record<string, number>>;
  /** Start times of rate-limited recipes' jobs, oldest first (older than their window may be left in). */
  starts: ReadonlyMap<string, readonly number[]>;
  /** The job on its way for the same request (same cache key), if any: this one joins it. */
  sameRequestOnItsWay: (job: Job) => Pick<Job, 'id'> | undefined;
}

export type AdmissionJob = Pick<Job, 'notBefore' | 'state' | 'nextAttemptAt' | 'attempts' | 'cacheKey'>;
export type AdmissionRecipe = Pick<Recipe, 'name' | 'steps' | 'resources' | 'timeoutMs' | 'retries' | 'cacheMs' | 'concurrency' | 'group' | 'rateLimit'>;

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `notBefore` not reached, or a retry's time not come. */
export function timeBlocker(job: AdmissionJob, recipe: AdmissionRecipe, now: number): Blocker | null {
  if (job.notBefore !== null && job.notBefore > now) return { reason: `not before ${iso(job.notBefore)}`, until: job.notBefore };
  if (job.state === 'retrying' && job.nextAttemptAt !== null && job.nextAttemptAt > now) {
    return { reason: `retry ${job.attempts + 1} of ${recipe.retries.attempts} at ${iso(job.nextAttemptAt)}`, until: job.nextAttemptAt };
  }
  return null;
}

/** A container job while the engine does not answer; `since`: when this job began to wait for it. */
export function dockerBlocker(recipe: AdmissionRecipe, docker: Snapshot['docker'], since: number): Blocker | null {
  if (!usesDocker(recipe) || docker.up) return null;
  return { reason: `waiting for the Docker engine (${docker.problem ?? `it does not answer at ${docker.socketPath}`})`, until: since + recipe.timeoutMs, docker: true };
}

/** A container job on Swarm while no ready node has room for its resources (it waits; Swarm would only hold it pending). */
export function swarmBlocker(recipe: AdmissionRecipe, swarm: SwarmView | undefined): Blocker | null {
  if (!swarm || !usesDocker(recipe)) return null;
  const problem = placementProblem(swarm, needOf(recipe));
  return problem ? { reason: `waiting for a Swarm node: ${problem}` } : null;
}

/** One run for identical requests: a cached recipe's job waits for the same request already on its way. */
export function joinBlocker(job: AdmissionJob, recipe: AdmissionRecipe, first: Pick<Job, 'id'> | undefined): Blocker | null {
  if (recipe.cacheMs === undefined || job.cacheKey === null || job.state !== 'queued' || !first) return null;
  return { reason: `joined job ${first.id}, the same request already on its way` };
}

export function concurrencyBlocker(recipe: AdmissionRecipe, running: number): Blocker | null {
  if (recipe.concurrency === undefined || running < recipe.concurrency) return null;
  return { reason: `recipe ${recipe.name} is at its concurrency (${running} of ${recipe.concurrency} running)` };
}

export function groupBlocker(recipe: AdmissionRecipe, limit: number | undefined, running: number): Blocker | null {
  if (!recipe.group || limit === undefined || running < limit) return null;
  return { reason: `group ${recipe.group} is full (${running} of ${limit} running)` };
}

/** `starts`: this recipe's start times, oldest first. */
export function rateBlocker(recipe: AdmissionRecipe, starts: readonly number[], now: number): Blocker | null {
  if (!recipe.rateLimit) return null;
  const { count, perMs } = recipe.rateLimit;
  const recent = starts.filter((t) => t > now - perMs);
  if (recent.length < count) return null;
  return { reason: `rate limit: ${count} starts per ${formatDuration(perMs)}`, until: recent[0] + perMs };
}

/**
 * The first thing that keeps `job` from starting now, or null. `dockerWaitSince`:
 * when the job began to wait for the Docker engine (now, if it has not yet).
 */
export function admissionBlocker(job: Job, recipe: AdmissionRecipe, s: Snapshot, dockerWaitSince: number): Blocker | null {
  return (
    timeBlocker(job, recipe, s.now) ??
    dockerBlocker(recipe, s.docker, dockerWaitSince) ??
    swarmBlocker(recipe, s.swarm) ??
    joinBlocker(job, recipe, recipe.cacheMs !== undefined && job.cacheKey !== null && job.state === 'queued' ? s.sameRequestOnItsWay(job) : undefined) ??
    concurrencyBlocker(recipe, s.runningByRecipe.get(recipe.name) ?? 0) ??
    groupBlocker(recipe, recipe.group ? s.groups[recipe.group] : undefined, recipe.group ? (s.runningByGroup.get(recipe.group) ?? 0) : 0) ??
    rateBlocker(recipe, s.starts.get(recipe.name) ?? [], s.now)
  );
}
