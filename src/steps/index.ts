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

export async function runOneStep(step: Step, env: StepEnv): Promise<StepResult> {
  let runner = loaded.get(step.kind);
  if (!runner) {
    runner = (loaders[step.kind] as () => Promise<Runner>)();
    loaded.set(step.kind, runner);
  }
  return (await runner)(step, env);
}
