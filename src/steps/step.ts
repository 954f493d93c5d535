import type { DockerAccess } from '../docker/engine.js';
import type { OutboundPolicy } from '../net/outbound.js';
import type { Recipe, Step } from '../recipes/recipe.js';
import type { TemplateScope } from '../template.js';
import type { JobLog } from './joblog.js';

/** What a step gets: it works only inside `workDir` and stops when `signal` aborts. */
export interface StepEnv {
  workDir: string;
  scope: TemplateScope;
  signal: AbortSignal;
  log: JobLog;
  secrets: readonly string[];
  /** Whom the step works for: names and labels its containers. */
  job: { id: string; attempt: number; root: string };
  /** The recipe's reservation: a container gets it as hard limits. */
  resources: Recipe['resources'];
  docker: DockerAccess | undefined;
  /** Which addresses fetch steps may reach (hopper.yaml's outbound). */
  outbound: OutboundPolicy;
}

export interface StepResult {
  /** Paths (relative to the work dir) of zips the step wrote: the default output is the last one. */
  zips?: string[];
}

export type StepRunner<S extends Step> = (step: S, env: StepEnv) => Promise<StepResult>;

/** Rethrows the job-level reason (cancel, timeout, shutdown) when the job's signal caused a failure. */
export function throwIfJobAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}
