import type { Problem } from '../errors.js';
import type { Recipe, Step } from '../recipes/recipe.js';
import type { Job } from '../store/jobs.js';
import { placeholders, render, type TemplateScope } from '../template.js';
import { toHopperError } from '../errors.js';
import { pathProblem } from './workdir.js';

/** The fields of each step that name a path in the work dir, or a URL. */
function fieldsOf(step: Step, index: number): Array<{ at: string; text: string; type: 'path' | 'url' }> {
  const at = `steps[${index}].${step.kind}`;
  switch (step.kind) {
    case 'fetch':
      return [
        { at: `${at}.url`, text: step.url, type: 'url' },
        { at: `${at}.to`, text: step.to, type: 'path' },
      ];
    case 'zip':
      return [
        { at: `${at}.from`, text: step.from, type: 'path' },
        { at: `${at}.to`, text: step.to, type: 'path' },
      ];
    case 'fetchPages':
      return [
        { at: `${at}.url`, text: step.url, type: 'url' },
        { at: `${at}.to`, text: step.to, type: 'path' },
      ];
    case 'run':
    case 'container':
      return [];
  }
}

function urlProblem(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `is not a URL ("${text.slice(0, 200)}")`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http or https URL, not ${url.protocol}`;
  return null;
}

/**
 * Problems with step paths and URLs. With `scope` null, only fields without
 * placeholders are checked (recipe load); with a scope, every field is rendered
 * as the job would render it (request intake), so a parameter that would lead
 * out of the work dir is refused before it becomes a job.
 */
export function stepPathProblems(steps: readonly Step[], scope: TemplateScope | null): Problem[] {
  const problems: Problem[] = [];
  steps.forEach((step, i) => {
    for (const field of fieldsOf(step, i)) {
      const templated = placeholders(field.text).length > 0;
      if (scope === null && templated) continue;
      let text = field.text;
      if (scope) {
        try {
          text = render(field.text, scope, { strict: true });
        } catch (err) {
          problems.push({ path: field.at, message: toHopperError(err).message });
          continue;
        }
      }
      const problem = field.type === 'path' ? pathProblem(text) : urlProblem(text);
      if (problem) problems.push({ path: field.at, message: problem });
    }
  });
  return problems;
}

/** The strings of a step that are rendered when it runs (paths and URLs are checked apart). */
function templatedTexts(step: Step): string[] {
  switch (step.kind) {
    case 'run':
      return [...step.command, ...Object.values(step.env)];
    case 'fetch':
      return Object.values(step.headers);
    case 'fetchPages':
      return []; // its headers and query are optional: an empty one is left out
    case 'container':
      return [step.image, ...(step.command ?? []), ...(step.entrypoint ?? []), ...Object.values(step.env), step.user ?? ''];
    case 'zip':
      return [];
  }
}

/** Every template in the steps must render with the request's values; names what is missing. */
export function stepTemplateProblems(steps: readonly Step[], scope: TemplateScope): Problem[] {
  const problems: Problem[] = [];
  steps.forEach((step, i) => {
    const texts = templatedTexts(step);
    for (const text of texts) {
      try {
        render(text, scope, { strict: true });
      } catch (err) {
        problems.push({ path: `steps[${i}].${step.kind}`, message: toHopperError(err).message });
      }
    }
  });
  return problems;
}

/** Every problem a request's values cause in the steps: paths out of the work dir, placeholders without a value. */
export function stepProblems(steps: readonly Step[], scope: TemplateScope): Problem[] {
  return [...stepPathProblems(steps, scope), ...stepTemplateProblems(steps, scope)];
}

/** What step templates may read: the real params (steps need secrets), never output. */
export function stepScope(
  job: Pick<Job, 'id' | 'requestId' | 'notify' | 'params' | 'priority'>,
  recipe: Pick<Recipe, 'name' | 'description'>,
  attempt: number,
  workDir: string,
  recipesDir: string,
  /** Every start counts here, one a stop cut short too (`attempt` counts as retries do). */
  run = attempt,
): TemplateScope {
  return {
    params: job.params,
    request: { id: job.requestId, notify: job.notify, priority: job.priority },
    // recipe.dir lets a step read a file shipped beside the recipe (a script, a URL list).
    recipe: { name: recipe.name, description: recipe.description, dir: recipesDir },
    job: { id: job.id, attempt, run, dir: workDir },
  };
}
