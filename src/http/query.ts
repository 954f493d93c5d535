import { NAME_PATTERN } from '../schemas/common.js';
import { JOB_STATES, MAX_LIMIT, DEFAULT_LIMIT } from '../store/views.js';
import type { JobState } from '../store/jobs.js';
import { HttpError } from './router.js';

/** Longest offset accepted: far beyond any table, small enough to stay exact. */
export const MAX_OFFSET = 1_000_000_000;
const MAX_EMAIL = 254;

/** A name as it may be quoted back in an error: short, and without control characters. */
function shown(name: string): string {
  const clean = name.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}

/**
 * The query string of a request, checked: every parameter is known and given
 * at most once, and each read names the parameter in its 400 when the value
 * is bad. Unknown parameters are a 400 too, so a typo (`?limt=5`) never passes
 * silently.
 */
export class Query {
  private readonly params: URLSearchParams;

  constructor(url: URL, known: readonly string[]) {
    this.params = url.searchParams;
    const seen = new Set<string>();
    for (const name of this.params.keys()) {
      if (!known.includes(name)) {
        throw new HttpError(400, `unknown query parameter "${shown(name)}"${known.length ? ` (this route takes ${known.join(', ')})` : ' (this route takes none)'}`);
      }
      if (seen.has(name)) throw new HttpError(400, `${name}: give it at most once`);
      seen.add(name);
    }
  }

  private raw(name: string): string | undefined {
    return this.params.get(name) ?? undefined;
  }

  /** An integer from `min` to `max` in plain decimal digits; `fallback` when absent. */
  int(name: string, min: number, max: number, fallback: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, `${name}: must be an integer from ${min} to ${max}`);
    return n;
  }

  /** One of `values`, or undefined when absent. */
  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) throw new HttpError(400, `${name}: must be one of ${values.join(', ')}`);
    return v as T;
  }

  /** A string matching `pattern` (checked after a length bound), or undefined when absent. */
  text(name: string, pattern: RegExp, maxLength: number, hint: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (v.length === 0 || v.length > maxLength || !pattern.test(v)) throw new HttpError(400, `${name}: ${hint}`);
    return v;
  }

  paging(): { limit: number; offset: number } {
    return { limit: this.int('limit', 1, MAX_LIMIT, DEFAULT_LIMIT), offset: this.int('offset', 0, MAX_OFFSET, 0) };
  }

  recipe(): string | undefined {
    return this.text('recipe', new RegExp(NAME_PATTERN), 63, 'must be a recipe name (lowercase letters, digits and dashes, up to 63)');
  }

  /** An address to match (without regard to case); anything printable up to 254 characters, without spaces. */
  email(): string | undefined {
    return this.text('email', /^[^\s\u0000-\u001f\u007f]+$/u, MAX_EMAIL, `must be an email address (up to ${MAX_EMAIL} characters, no spaces)`);
  }

  state(): JobState | undefined {
    return this.oneOf('state', JOB_STATES);
  }
}

/** For routes that take no query parameters: each given one is a 400. */
export function noQuery(url: URL): void {
  new Query(url, []);
}
