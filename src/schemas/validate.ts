import type { ValidateFunction } from 'ajv';
import { InvalidFileError, type Problem } from '../errors.js';
import { createAjv } from './ajv.js';
import { configSchema } from './config.js';
import type { ParsedFile } from './document.js';
import { problemsFromAjv, type LocatedProblem } from './messages.js';
import { recipeSchema } from './recipe.js';
import { cancelSchema, requestSchema } from './request.js';

export const SCHEMAS = {
  recipe: recipeSchema,
  request: requestSchema,
  cancel: cancelSchema,
  config: configSchema,
} as const;
export type SchemaName = keyof typeof SCHEMAS;

// Compiled once: the validators are pure functions of the schemas above.
const ajv = createAjv();
const compiled = new Map<SchemaName, ValidateFunction>();

function validator(name: SchemaName): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    v = ajv.compile(SCHEMAS[name]);
    compiled.set(name, v);
  }
  return v;
}

/** Problems (with positions) of `parsed.value` against one of hopper's own schemas. */
export function schemaProblems(name: SchemaName, parsed: ParsedFile): Problem[] {
  const v = validator(name);
  if (v(parsed.value)) return [];
  return parsed.place(problemsFromAjv(v.errors ?? []));
}

/** Throws every problem found, in file order, or returns when there are none. */
export function assertNoProblems(problems: Problem[]): void {
  if (problems.length === 0) return;
  const sorted = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  throw new InvalidFileError(sorted);
}

/** A validator for a recipe's params schema, or the reason it is not a usable JSON Schema. */
export function compileParamsSchema(schema: object): { validate: ValidateFunction } | { error: string } {
  try {
    return { validate: ajv.compile({ ...schema, $id: undefined }) };
  } catch (err) {
    return { error: `is not a usable JSON Schema: ${(err as Error).message}` };
  }
}

export function paramsProblems(validate: ValidateFunction, params: unknown, parsed?: ParsedFile): Problem[] {
  if (validate(params)) return [];
  const problems: LocatedProblem[] = problemsFromAjv(validate.errors ?? [], ['params']);
  return parsed ? parsed.place(problems) : problems.map(({ path, message }) => ({ path, message }));
}

const KINDS = ['request', 'cancel', 'recipe'] as const;
export type FileKind = (typeof KINDS)[number];

/** What a dropped file says it is; a missing or unknown `kind` is a problem. */
export function fileKind(parsed: ParsedFile, allowed: readonly string[] = KINDS): FileKind {
  const v = parsed.value;
  const where = parsed.locate(['kind']);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new InvalidFileError([{ path: '', message: `must be a mapping with a "kind" (one of ${allowed.join(', ')})`, ...where }]);
  }
  const kind = (v as Record<string, unknown>).kind;
  if (kind === undefined) {
    throw new InvalidFileError([{ path: 'kind', message: `is required (one of ${allowed.join(', ')})`, ...where }]);
  }
  if (typeof kind !== 'string' || !allowed.includes(kind)) {
    throw new InvalidFileError([
      { path: 'kind', message: `unknown kind ${JSON.stringify(kind)} (expected one of ${allowed.join(', ')})`, ...where },
    ]);
  }
  return kind as FileKind;
}
