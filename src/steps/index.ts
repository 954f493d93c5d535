import type { Step } from '../recipes/recipe.js';
import type { StepEnv, StepResult } from './step.js';

// Each kind of step is loaded when a job first needs it: a daemon, or a step
// thread, that never runs a container does not hold dockerode (about 25 MiB
// of memory per thread), nor execa (about 15) without a run step.
const loaders = {
  fetch: () => import('./fetch.js').then((m) => m.fetchStep),
  fetchPages: () => import('./fetchPages.js').then((m) => m.fetchPagesStep),
  run: () => import('./run.js').then((m) => m.runStep),
  zip: () => import('./zip.js').then((m) => m.zipStep),
  container: () => import('./container.js').then((m) => m.containerStep),
};

type Runner = (step: Step, env: StepEnv) => Promise<StepResult>;
const loaded = new Map<Step['kind'], Promise<Runner>>();

function runnerOf(kind: Step['kind']): Promise<Runner> {
  let runner = loaded.get(kind);
  if (!runner) {
    // A load that failed (too many open files at a busy start, say) is tried again by the next job.
    runner = (loaders[kind] as () => Promise<Runner>)().catch((err: unknown) => {
      loaded.delete(kind);
      throw err;
    });
    loaded.set(kind, runner);
  }
  return runner;
}

export async function runOneStep(step: Step, env: StepEnv): Promise<StepResult> {
  return (await runnerOf(step.kind))(step, env);
}

/**
 * Loads the steps of these kinds now (at start, for the loaded recipes), so
 * the first jobs do not pay for it: measured, a fresh daemon's first 1,000
 * trivial jobs spent ~6 % of the step thread loading and compiling modules.
 * Containers are left to their first job: dockerode is the heavy one (~25 MiB
 * a thread), and a container's own start takes far longer than its load.
 */
export async function preloadSteps(kinds: ReadonlyArray<Step['kind']>): Promise<void> {
  await Promise.all([...new Set(kinds)].filter((k) => k !== 'container').map((k) => runnerOf(k)));
}
