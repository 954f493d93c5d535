import type { ErrorObject } from 'ajv';
import type { Problem } from '../errors.js';

/** Turns ajv's errors into sentences a person can act on, keyed by field path. */

export function pathSegments(instancePath: string): string[] {
  if (!instancePath) return [];
  return instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `['steps', '0', 'fetch']` → `steps[0].fetch`. */
export function dottedPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(s)) out += `[${s}]`;
    else out += out ? `.${s}` : s;
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'empty',
};

const FORMAT_WORDS: Record<string, string> = {
  uri: 'a URI (like https://example.org/file.csv)',
  email: 'an email address',
  'date-time': 'a date and time like 2026-12-01T03:00:00Z',
  size: 'a size like 512MiB, 2GiB or 1000',
  duration: 'a duration like 30s, 10m, 24h or 7d',
};

/** Optimal string alignment distance: a swap of two neighbouring letters counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The name in `names` that `key` most likely misspells (a few edits away), if any. */
export function closestName(key: string, names: readonly string[]): string | undefined {
  if (key.length > 100) return undefined;
  // The distance is at least the difference in length: names far off in length are not measured
  // (a file of 10,000 long unknown keys would otherwise cost seconds).
  const near = (n: string): boolean => Math.abs(n.length - key.length) <= Math.max(1, Math.floor(n.length / 3));
  const best = names
    .filter(near)
    .map((n) => ({ n, d: editDistance(key.toLowerCase(), n.toLowerCase()) }))
    .sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(1, Math.floor(best.n.length / 3)) ? best.n : undefined;
}

function suggestion(key: string, schema: unknown): string {
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  if (!props) return '';
  const names = Object.keys(props);
  const best = closestName(key, names);
  return best ? ` (did you mean "${best}"?)` : ` (known keys: ${names.join(', ')})`;
}

function hint(err: ErrorObject): string | undefined {
  const h = (err.parentSchema as Record<string, unknown> | undefined)?.['x-hint'];
  return typeof h === 'string' ? h : undefined;
}

function sentence(err: ErrorObject): { extra?: string; message: string } {
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'required':
      return { extra: String(p.missingProperty), message: 'is required' };
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      return { extra: key, message: `unknown key${suggestion(key, err.parentSchema)}` };
    }
    case 'type': {
      const types = String(p.type).split(',');
      return { message: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}` };
    }
    case 'format':
      return { message: hint(err) ?? `must be ${FORMAT_WORDS[String(p.format)] ?? `in ${String(p.format)} format`}` };
    case 'enum':
      return { message: `must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'pattern':
      return { message: hint(err) ?? `must match the pattern ${String(p.pattern)}` };
    case 'minimum':
      return { message: `must be at least ${String(p.limit)}` };
    case 'maximum':
      return { message: `must be at most ${String(p.limit)}` };
    case 'exclusiveMinimum':
      return { message: `must be more than ${String(p.limit)}` };
    case 'exclusiveMaximum':
      return { message: `must be less than ${String(p.limit)}` };
    case 'minItems':
      return { message: `must have at least ${String(p.limit)} item${p.limit === 1 ? '' : 's'}` };
    case 'maxItems':
      return { message: `must have at most ${String(p.limit)} items` };
    case 'minLength':
      return { message: p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters` };
    case 'maxLength':
      return { message: `must be at most ${String(p.limit)} characters` };
    case 'minProperties':
    case 'maxProperties':
      return { message: hint(err) ?? (err.message ?? 'has the wrong number of keys') };
    case 'uniqueItems':
      return { message: 'must not list the same item twice' };
    case 'propertyNames':
      return { message: 'has a key that is not allowed' };
    default:
      return { message: err.message ?? `fails ${err.keyword}` };
  }
}

export interface LocatedProblem extends Problem {
  segments: string[];
  /** Point at the key itself (unknown keys) rather than its value. */
  atKey: boolean;
}

/** ajv errors → problems, without the noise ajv adds for the same place. */
export function problemsFromAjv(errors: readonly ErrorObject[], prefix: string[] = []): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  const seen = new Set<string>();
  for (const err of errors) {
    if (err.keyword === 'if' || err.keyword === 'propertyNames' && errors.length > 1) continue;
    const { extra, message } = sentence(err);
    const segments = [...prefix, ...pathSegments(err.instancePath), ...(extra !== undefined ? [extra] : [])];
    const path = dottedPath(segments);
    // One problem per field: a value that is no URL fails both `format` and `pattern`,
    // and the first sentence says enough.
    const key = err.keyword === 'required' || err.keyword === 'additionalProperties' ? `${path}\u0000${message}` : path;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path, message, segments, atKey: err.keyword === 'additionalProperties' });
  }
  return out;
}
