import { createHash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import type { Problem } from '../errors.js';
import type { JobEvent } from '../schemas/common.js';
import type { ParsedFile } from '../schemas/document.js';
import { assertNoProblems, compileParamsSchema, paramsProblems, schemaProblems } from '../schemas/validate.js';
import { placeholderProblem, placeholders, templateStrings } from '../template.js';
import { parseDuration, parseSize } from '../units.js';
import { parseCron, type CronSchedule } from '../schedule/cron.js';
import { stepPathProblems, stepProblems, stepScope } from '../steps/plan.js';

export type Lane = 'fast' | 'slow';
export const LANE_NAMES: readonly Lane[] = ['fast', 'slow'];

export type Step =
  | { kind: 'fetch'; url: string; to: string; maxBytes: number; timeoutMs: number; maxRedirects: number; headers: Record<string, string> }
  | {
      kind: 'fetchPages';
      url: string;
      query: Record<string, unknown>;
      pageSize: number;
      records: string;
      total: string;
      limit: string | undefined;
      offset: string | undefined;
      to: string;
      format: 'csv' | 'jsonl' | undefined;
      headers: Record<string, string>;
      timeoutMs: number;
      maxPageBytes: number;
    }
  | { kind: 'run'; command: string[]; timeoutMs: number | undefined; env: Record<string, string> }
  | { kind: 'zip'; from: string; to: string; level: number }
  | {
      kind: 'container';
      image: string;
      command: string[] | undefined;
      entrypoint: string[] | undefined;
      env: Record<string, string>;
      network: 'none' | 'bridge';
      capAdd: string[];
      shmBytes: number | undefined;
      user: string | undefined;
      pull: 'never' | 'missing' | 'always';
      idleTimeoutMs: number | undefined;
      timeoutMs: number | undefined;
    };

export interface Recipe {
  name: string;
  description: string;
  /** sha256 of the recipe's canonical JSON: what a cache key and a job snapshot name. */
  version: string;
  /** The recipe as written (validated), stored with each job so a later edit cannot change it. */
  source: Record<string, unknown>;
  paramsSchema: Record<string, unknown>;
  validateParams: ValidateFunction;
  lane: Lane | 'auto';
  slowWhen: { param: string; over: number; minus?: string } | undefined;
  priority: number;
  resources: { cpus?: number; memory?: number; disk?: number };
  concurrency: number | undefined;
  group: string | undefined;
  rateLimit: { count: number; perMs: number } | undefined;
  timeoutMs: number;
  retries: { attempts: number; backoff: 'fixed' | 'exponential'; delayMs: number };
  cacheMs: number | undefined;
  /** hopper requests the recipe itself at these times, with these params. */
  schedule: { cron: CronSchedule; params: Record<string, unknown> } | undefined;
  steps: Step[];
  output: { files: string[] | undefined; minBytes: number; upload: 'local' | 's3'; prefix: string; inlineBelow: number | undefined };
  notify: {
    email: { to: string[]; subject: string | undefined; body: string | undefined; events: JobEvent[] } | undefined;
    webhook: { url: string; events: JobEvent[] } | undefined;
  };
}

export const DEFAULTS = {
  timeout: '1h',
  fetchMaxBytes: '5GiB',
  fetchTimeout: '30m',
  pageSize: 5000,
  pageTimeout: '2m',
  // Set for real pages: 5,000 CKAN rows are a few MiB. A page is read whole and
  // parses to 2 to 30 times its size (steps/pages/cost.ts).
  maxPageBytes: '16MiB',
  maxRedirects: 5,
  zipLevel: 6,
  emailEvents: ['succeeded', 'failed', 'canceled'] as JobEvent[],
  webhookEvents: ['requested', 'started', 'retrying', 'succeeded', 'failed', 'canceled'] as JobEvent[],
};

type Size = string | number;

/** A recipe document as the recipe schema admits it (see schemas/recipe.ts). */
export interface RecipeDoc {
  kind: 'recipe';
  name: string;
  description?: string;
  params?: Record<string, unknown>;
  lane?: Lane | 'auto';
  slowWhen?: { param: string; over: number; minus?: string };
  priority?: number;
  resources?: { cpus?: number; memory?: Size; disk?: Size };
  concurrency?: number;
  group?: string;
  rateLimit?: { count: number; per: Size };
  timeout?: Size;
  retries?: { attempts?: number; backoff?: 'fixed' | 'exponential'; delay?: Size };
  cache?: Size;
  schedule?: string;
  scheduleParams?: Record<string, unknown>;
  steps: StepDoc[];
  output?: { files?: string[]; minBytes?: Size; upload?: 'local' | 's3'; prefix?: string; inlineBelow?: Size };
  notify?: {
    email?: { to?: string | string[]; subject?: string; body?: string; events?: JobEvent[] };
    webhook?: { url: string; events?: JobEvent[] };
  };
}

type StepDoc =
  | { fetch: { url: string; to: string; maxBytes?: Size; timeout?: Size; maxRedirects?: number; headers?: Record<string, string> } }
  | {
      fetchPages: {
        url: string;
        query?: Record<string, unknown>;
        pageSize?: number;
        records: string;
        total?: string;
        limit?: string;
        offset?: string;
        to: string;
        format?: 'csv' | 'jsonl';
        headers?: Record<string, string>;
        timeout?: Size;
        maxPageBytes?: Size;
      };
    }
  | { run: { command: string[]; timeout?: Size; env?: Record<string, string> } }
  | { zip: { from: string; to: string; level?: number } }
  | {
      container: {
        image: string;
        command?: string[];
        entrypoint?: string[];
        env?: Record<string, string>;
        network?: 'none' | 'bridge';
        capAdd?: string[];
        shm?: Size;
        user?: string;
        pull?: 'never' | 'missing' | 'always';
        idleTimeout?: Size;
        timeout?: Size;
      };
    };

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Whether the recipe runs containers (it needs the Docker engine, or a swarm). */
export function usesDocker(recipe: Pick<Recipe, 'steps'>): boolean {
  return recipe.steps.some((s) => s.kind === 'container');
}

export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex');
}

function normalizeStep(raw: StepDoc): Step {
  if ('fetch' in raw) {
    const f = raw.fetch;
    return {
      kind: 'fetch',
      url: f.url,
      to: f.to,
      maxBytes: parseSize(f.maxBytes ?? DEFAULTS.fetchMaxBytes),
      timeoutMs: parseDuration(f.timeout ?? DEFAULTS.fetchTimeout),
      maxRedirects: f.maxRedirects ?? DEFAULTS.maxRedirects,
      headers: f.headers ?? {},
    };
  }
  if ('fetchPages' in raw) {
    const f = raw.fetchPages;
    return {
      kind: 'fetchPages',
      url: f.url,
      query: f.query ?? {},
      pageSize: f.pageSize ?? DEFAULTS.pageSize,
      records: f.records,
      total: f.total ?? 'result.total',
      limit: f.limit,
      offset: f.offset,
      to: f.to,
      format: f.format,
      headers: f.headers ?? {},
      timeoutMs: parseDuration(f.timeout ?? DEFAULTS.pageTimeout),
      maxPageBytes: parseSize(f.maxPageBytes ?? DEFAULTS.maxPageBytes),
    };
  }
  if ('run' in raw) {
    const r = raw.run;
    return { kind: 'run', command: r.command, timeoutMs: r.timeout === undefined ? undefined : parseDuration(r.timeout), env: r.env ?? {} };
  }
  if ('container' in raw) {
    const c = raw.container;
    const ms = (v: Size | undefined): number | undefined => (v === undefined ? undefined : parseDuration(v));
    return {
      kind: 'container',
      image: c.image,
      command: c.command,
      entrypoint: c.entrypoint,
      env: c.env ?? {},
      network: c.network ?? 'none',
      capAdd: c.capAdd ?? [],
      shmBytes: c.shm === undefined ? undefined : parseSize(c.shm),
      user: c.user,
      pull: c.pull ?? 'missing',
      idleTimeoutMs: ms(c.idleTimeout),
      timeoutMs: ms(c.timeout),
    };
  }
  const z = raw.zip;
  return { kind: 'zip', from: z.from, to: z.to, level: z.level ?? DEFAULTS.zipLevel };
}

function asList(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Builds the typed recipe from a document that already passed the recipe schema. */
export function normalizeRecipe(source: RecipeDoc, validateParams: ValidateFunction, steps: Step[] = source.steps.map(normalizeStep)): Recipe {
  const retries = source.retries ?? {};
  const output = source.output ?? {};
  const email = source.notify?.email;
  const webhook = source.notify?.webhook;
  return {
    name: source.name,
    description: source.description ?? '',
    version: fingerprint(source),
    source: source as unknown as Record<string, unknown>,
    paramsSchema: source.params ?? { type: 'object' },
    validateParams,
    lane: source.lane ?? 'fast',
    slowWhen: source.slowWhen,
    priority: source.priority ?? 0,
    resources: {
      cpus: source.resources?.cpus,
      memory: source.resources?.memory === undefined ? undefined : parseSize(source.resources.memory),
      disk: source.resources?.disk === undefined ? undefined : parseSize(source.resources.disk),
    },
    concurrency: source.concurrency,
    group: source.group,
    rateLimit: source.rateLimit ? { count: source.rateLimit.count, perMs: parseDuration(source.rateLimit.per) } : undefined,
    timeoutMs: parseDuration(source.timeout ?? DEFAULTS.timeout),
    retries: {
      attempts: retries.attempts ?? 1,
      backoff: retries.backoff ?? 'exponential',
      delayMs: parseDuration(retries.delay ?? '10s'),
    },
    cacheMs: source.cache === undefined ? undefined : parseDuration(source.cache),
    schedule: source.schedule === undefined ? undefined : { cron: parseCron(source.schedule), params: source.scheduleParams ?? {} },
    steps,
    output: {
      files: output.files,
      minBytes: output.minBytes === undefined ? 1 : parseSize(output.minBytes),
      upload: output.upload ?? 'local',
      prefix: output.prefix ?? '',
      inlineBelow: output.inlineBelow === undefined ? undefined : parseSize(output.inlineBelow),
    },
    notify: {
      email: email ? { to: asList(email.to), subject: email.subject, body: email.body, events: email.events ?? DEFAULTS.emailEvents } : undefined,
      webhook: webhook ? { url: webhook.url, events: webhook.events ?? DEFAULTS.webhookEvents } : undefined,
    },
  };
}

/** Placeholders must read a known root; steps run before there is any output to read. */
function templateProblems(source: RecipeDoc, parsed: ParsedFile): Problem[] {
  const problems: Problem[] = [];
  for (const section of ['steps', 'output', 'notify'] as const) {
    for (const { at, text } of templateStrings(source[section], section)) {
      for (const path of placeholders(text)) {
        let message = placeholderProblem(path);
        if (!message && section === 'steps' && path.startsWith('output')) {
          message = `"{{${path}}}": steps run before there is output; use output only in notify`;
        }
        if (message) problems.push({ path: at, message, ...parsed.locate(pathToSegments(at)) });
      }
    }
  }
  return problems;
}

function pathToSegments(dotted: string): string[] {
  return dotted.replace(/\[(\d+)\]/g, '.$1').split('.').filter(Boolean);
}

/**
 * A schedule must parse, and its params must be a valid request of the recipe
 * (schema, step paths and templates): a scheduled run has no one to tell about
 * a rejection, so it is refused when the recipe loads.
 */
function scheduleProblems(source: RecipeDoc, steps: Step[], validate: ValidateFunction, parsed: ParsedFile): Problem[] {
  if (source.schedule === undefined) {
    return source.scheduleParams === undefined ? [] : [{ path: 'scheduleParams', message: 'needs a schedule', ...parsed.locate(['scheduleParams']) }];
  }
  try {
    parseCron(source.schedule);
  } catch (err) {
    return [{ path: 'schedule', message: (err as Error).message, ...parsed.locate(['schedule']) }];
  }
  const params = structuredClone(source.scheduleParams ?? {});
  const where = source.scheduleParams === undefined ? ['schedule'] : ['scheduleParams'];
  const problems = paramsProblems(validate, params).map((p) => ({ path: p.path.replace(/^params/, 'scheduleParams'), message: p.message }));
  if (problems.length === 0) {
    const scope = stepScope({ id: 'JOB-ID', requestId: null, notify: {}, params, priority: source.priority ?? 0 }, { name: source.name, description: source.description ?? '' }, 1, '/work', '/recipes');
    problems.push(...stepProblems(steps, scope).map((p) => ({ path: 'scheduleParams', message: `${p.path}: ${p.message}` })));
  }
  return problems.map((p) => ({ ...p, ...parsed.locate(p.path.startsWith('scheduleParams.') ? pathToSegments(p.path) : where) }));
}

/** Validates a parsed recipe file completely; throws InvalidFileError listing every problem. */
export function recipeFromFile(parsed: ParsedFile): Recipe {
  assertNoProblems(schemaProblems('recipe', parsed));
  const source = parsed.value as RecipeDoc;
  const problems: Problem[] = [];
  const compiledParams = compileParamsSchema(source.params ?? { type: 'object' });
  if ('error' in compiledParams) {
    problems.push({ path: 'params', message: compiledParams.error, ...parsed.locate(['params']) });
  }
  if (source.lane === 'auto' && !source.slowWhen) {
    problems.push({ path: 'slowWhen', message: 'is required with lane: auto', ...parsed.locate(['lane']) });
  }
  problems.push(...templateProblems(source, parsed));
  const hook = source.notify?.webhook?.url;
  if (hook !== undefined && placeholders(hook).length === 0 && !/^https?:\/\/./.test(hook)) {
    problems.push({ path: 'notify.webhook.url', message: 'must be an http(s) URL (or filled from a placeholder)', ...parsed.locate(['notify', 'webhook', 'url']) });
  }
  const steps = source.steps.map(normalizeStep);
  if (!('error' in compiledParams)) problems.push(...scheduleProblems(source, steps, compiledParams.validate, parsed));
  // Literal paths (no placeholders) are checked now; templated ones per request.
  const literal = stepPathProblems(steps, null);
  problems.push(...literal.map((p) => ({ ...p, ...parsed.locate(pathToSegments(p.path)) })));
  assertNoProblems(problems);
  return normalizeRecipe(source, (compiledParams as { validate: ValidateFunction }).validate, steps);
}

/** Rebuilds a recipe from the snapshot stored with a job. */
export function recipeFromSnapshot(source: RecipeDoc): Recipe {
  const compiled = compileParamsSchema(source.params ?? { type: 'object' });
  if ('error' in compiled) throw new Error(`stored recipe ${String(source.name)}: params ${compiled.error}`);
  return normalizeRecipe(source, compiled.validate);
}

/**
 * Recipes rebuilt from jobs' snapshots, once per recipe version: a queue of
 * 10,000 jobs of one recipe compiles its params schema once.
 */
export function snapshotRecipes(): (job: { recipeVersion: string; recipeSource: RecipeDoc }) => Recipe {
  const made = new Map<string, Recipe>();
  return (job) => {
    let recipe = made.get(job.recipeVersion);
    if (!recipe) {
      recipe = recipeFromSnapshot(job.recipeSource);
      made.set(job.recipeVersion, recipe);
    }
    return recipe;
  };
}

/** The lane a request runs in: `auto` goes slow when the named param is over the bound or unbounded. */
export function laneFor(recipe: Recipe, params: Record<string, unknown>): Lane {
  if (recipe.lane !== 'auto') return recipe.lane;
  const { param, over, minus } = recipe.slowWhen!;
  const value = params[param];
  if (value === undefined || value === null) return 'slow';
  // `minus`: the rows asked for are limit - offset, as ckanpackager counts them.
  const less = minus === undefined ? 0 : Number(params[minus] ?? 0);
  const n = Number(value) - less;
  return Number.isFinite(n) && n <= over ? 'fast' : 'slow';
}
