import type { Problem } from '../errors.js';
import { fingerprint, laneFor, type Recipe } from '../recipes/recipe.js';
import type { ParsedFile } from '../schemas/document.js';
import { closestName } from '../schemas/messages.js';
import { assertNoProblems, paramsProblems, schemaProblems } from '../schemas/validate.js';
import { stepProblems, stepScope } from '../steps/plan.js';
import type { NewJob, RequestNotify } from '../store/jobs.js';
import { recipePrefix } from '../delivery/deliver.js';
import { placeholders, type TemplateScope } from '../template.js';

interface RequestDoc {
  kind: 'request';
  recipe: string;
  id?: string;
  params?: Record<string, unknown>;
  notify?: RequestNotify;
  priority?: number;
  notBefore?: string;
}

export interface RecipeLookup {
  get(name: string): Recipe | undefined;
  all(): Recipe[];
}

function unknownRecipe(name: string, recipes: RecipeLookup, parsed: ParsedFile): Problem {
  const loaded = recipes.all().map((r) => r.name);
  const close = closestName(name, loaded);
  const hint = close ? `did you mean "${close}"? ` : '';
  return { path: 'recipe', message: `no recipe named "${name}" is loaded (${hint}loaded: ${loaded.length ? loaded.join(', ') : 'none'})`, ...parsed.locate(['recipe']) };
}

/** Where a step problem comes from: the first param its template reads, else the recipe name. */
function placeStepProblem(p: Problem, recipe: Recipe, parsed: ParsedFile): Problem {
  const m = /^steps\[(\d+)\]\.(\w+)(?:\.(\w+))?/.exec(p.path);
  const step = m ? (recipe.source.steps as unknown[])[Number(m[1])] : undefined;
  const text = JSON.stringify(step ?? '');
  const param = placeholders(text).find((ph) => ph.startsWith('params.'));
  const segments = param ? param.split('.').slice(0, 2) : ['recipe'];
  return { path: param ? segments.join('.') : 'recipe', message: `${p.path} (recipe ${recipe.name}): ${p.message}`, ...parsed.locate(segments) };
}

/** An S3 prefix filled from params must stay a plain relative key (and may not use a secret). */
function prefixProblems(r: Recipe, scope: TemplateScope, parsed: ParsedFile): Problem[] {
  if (r.output.upload !== 's3') return [];
  try {
    recipePrefix(r, scope);
    return [];
  } catch (err) {
    const param = placeholders(r.output.prefix).find((ph) => ph.startsWith('params.'));
    const segments = param ? param.split('.').slice(0, 2) : ['recipe'];
    return [{ path: segments.join('.'), message: `${(err as Error).message} (recipe ${r.name})`, ...parsed.locate(segments) }];
  }
}

/**
 * Validates a request completely (its own schema, the recipe's params schema,
 * and every step path and template rendered with its values) and returns the
 * job to store. Throws InvalidFileError listing every problem with its place.
 */
export function requestFromFile(parsed: ParsedFile, recipes: RecipeLookup, sourceFile: string): { input: NewJob; recipe: Recipe } {
  // Every problem of the request and of its params at once, each at its line: not only the first kind found.
  const problems = schemaProblems('request', parsed);
  const doc = parsed.value as RequestDoc;
  const recipe = typeof doc.recipe === 'string' ? recipes.get(doc.recipe) : undefined;
  if (typeof doc.recipe === 'string' && !recipe) problems.push(unknownRecipe(doc.recipe, recipes, parsed));
  const params = doc.params ?? {};
  if (recipe && typeof params === 'object' && params !== null && !Array.isArray(params)) problems.push(...paramsProblems(recipe.validateParams, params, parsed));
  assertNoProblems(problems);
  const r = recipe as Recipe;
  const notify = doc.notify ?? {};
  const scope = stepScope({ id: 'JOB-ID', requestId: doc.id ?? null, notify, params, priority: doc.priority ?? r.priority }, r, 1, '/work', '/recipes');
  assertNoProblems(stepProblems(r.steps, scope).map((p) => placeStepProblem(p, r, parsed)));
  assertNoProblems(prefixProblems(r, scope, parsed));
  const notBefore = doc.notBefore ? Date.parse(doc.notBefore) : null;
  return { recipe: r, input: jobInput(r, { requestId: doc.id ?? null, params, notify, priority: doc.priority, notBefore, sourceFile }) };
}

/** The job to store for valid params: what a dropped request and a scheduled run share. */
export function jobInput(
  r: Recipe,
  o: { requestId: string | null; params: Record<string, unknown>; notify: RequestNotify; priority?: number; notBefore: number | null; sourceFile: string },
): NewJob {
  const { params, notify, notBefore } = o;
  return {
    requestId: o.requestId,
    requestHash: fingerprint({ recipe: r.name, params, notify, priority: o.priority ?? null, notBefore }),
    recipe: r.name,
    recipeVersion: r.version,
    recipeSource: r.source as unknown as NewJob['recipeSource'],
    params,
    notify,
    lane: laneFor(r, params),
    priority: o.priority ?? r.priority,
    notBefore,
    sourceFile: o.sourceFile,
    cacheKey: r.cacheMs === undefined ? null : fingerprint({ version: r.version, params }),
  };
}
