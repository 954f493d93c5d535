import type { Step } from '../recipes/recipe.js';
import { containerStep } from './container.js';
import { fetchStep } from './fetch.js';
import { fetchPagesStep } from './fetchPages.js';
import { runStep } from './run.js';
import type { StepEnv, StepResult } from './step.js';
import { zipStep } from './zip.js';

export function runOneStep(step: Step, env: StepEnv): Promise<StepResult> {
  switch (step.kind) {
    case 'fetch':
      return fetchStep(step, env);
    case 'fetchPages':
      return fetchPagesStep(step, env);
    case 'run':
      return runStep(step, env);
    case 'zip':
      return zipStep(step, env);
    case 'container':
      return containerStep(step, env);
  }
}
