/**
 * The one place secrets are masked. A secret is a request parameter whose
 * schema says `writeOnly: true`, wherever the schema puts it: under
 * `properties`, `patternProperties`, `additionalProperties`, `items`, behind a
 * local `$ref`, or in an `allOf`/`anyOf`/`oneOf` branch. Stored params keep the
 * value (the job needs it); every view, log line, email and webhook goes
 * through here first.
 */
export const MASK = '***';

type Schema = Record<string, unknown>;
const MAX_DEPTH = 32;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const MAX_BRANCHES = 256;
/** Stands for a schema too tangled to follow: what it covers is treated as secret. */
const TOO_COMPLEX: Schema = { writeOnly: true };

/** The target of a local `$ref` (`#/$defs/x`), or undefined. */
function refTarget(ref: string, root: unknown): unknown {
  if (!ref.startsWith('#')) return undefined;
  let target: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    target = isObject(target) && Object.hasOwn(target, key) ? target[key] : undefined;
  }
  return target;
}

/**
 * The schema and every schema that applies beside it: its `$ref` target and
 * its allOf/anyOf/oneOf branches, each visited once (a schema can be small and
 * still branch exponentially), at most MAX_BRANCHES of them.
 */
function branches(schema: unknown, root: unknown): Schema[] {
  const out: Schema[] = [];
  const seen = new Set<unknown>();
  const stack = [schema];
  while (stack.length > 0) {
    const s = stack.pop();
    if (!isObject(s) || seen.has(s)) continue;
    if (out.length >= MAX_BRANCHES) return [...out, TOO_COMPLEX];
    seen.add(s);
    out.push(s);
    if (typeof s.$ref === 'string') stack.push(refTarget(s.$ref, root));
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = s[key];
      if (Array.isArray(list)) stack.push(...list);
    }
  }
  return out;
}

function isSecret(schema: unknown, root: unknown): boolean {
  return branches(schema, root).some((b) => b.writeOnly === true);
}

/** The schemas that apply to `value[key]` under `schema`. */
function childSchemas(schema: unknown, key: string, root: unknown): unknown[] {
  const out: unknown[] = [];
  for (const b of branches(schema, root)) {
    const props = isObject(b.properties) ? b.properties : {};
    let named = false;
    if (Object.hasOwn(props, key)) {
      out.push(props[key]);
      named = true;
    }
    if (isObject(b.patternProperties)) {
      for (const [pattern, sub] of Object.entries(b.patternProperties)) {
        try {
          if (new RegExp(pattern, 'u').test(key)) {
            out.push(sub);
            named = true;
          }
        } catch {
          /* a pattern ajv would have refused */
        }
      }
    }
    if (!named && isObject(b.additionalProperties)) out.push(b.additionalProperties);
  }
  return out;
}

function itemSchemas(schema: unknown, index: number, root: unknown): unknown[] {
  const out: unknown[] = [];
  for (const b of branches(schema, root)) {
    if (Array.isArray(b.prefixItems) && index < b.prefixItems.length) out.push(b.prefixItems[index]);
    else if (isObject(b.items)) out.push(b.items);
  }
  return out;
}

function maskValue(value: unknown, schemas: unknown[], root: unknown, depth: number): unknown {
  if (schemas.length === 0) return value;
  // Deeper than we look, a secret could hide: show nothing rather than too much.
  if (depth > MAX_DEPTH) return MASK;
  if (schemas.some((s) => isSecret(s, root))) return MASK;
  if (Array.isArray(value)) {
    return value.map((v, i) => maskValue(v, schemas.flatMap((s) => itemSchemas(s, i, root)), root, depth + 1));
  }
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, maskValue(v, schemas.flatMap((s) => childSchemas(s, k, root)), root, depth + 1)]),
  );
}

/** A copy of `params` with every writeOnly value replaced by the mask. */
export function maskParams(params: Record<string, unknown>, schema: unknown): Record<string, unknown> {
  return maskValue(params, [schema], schema, 0) as Record<string, unknown>;
}

function leaves(value: unknown, depth = 0): string[] {
  if (typeof value === 'string' || typeof value === 'number') return [String(value)];
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return [];
  return Object.values(value).flatMap((v) => leaves(v, depth + 1));
}

/** The secret values themselves, so text (command output, error messages) can be scrubbed. */
export function secretValues(params: unknown, schema: unknown): string[] {
  const found: string[] = [];
  const walk = (value: unknown, schemas: unknown[], depth: number): void => {
    if (value === undefined || value === null || schemas.length === 0) return;
    if (depth > MAX_DEPTH || schemas.some((s) => isSecret(s, schema))) {
      // The whole value as text, and each string or number inside it: a template may use any of them.
      for (const text of [typeof value === 'string' ? value : JSON.stringify(value), ...leaves(value)]) {
        // Very short secrets would mask ordinary words; they still never reach a view as params.
        if (text.length >= 4) found.push(text);
      }
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, schemas.flatMap((s) => itemSchemas(s, i, schema)), depth + 1));
    else if (isObject(value)) for (const [k, v] of Object.entries(value)) walk(v, schemas.flatMap((s) => childSchemas(s, k, schema)), depth + 1);
  };
  walk(params, [schema], 0);
  return [...new Set(found)];
}

/**
 * Replaces every occurrence of each secret in `text` with the mask: as it is,
 * and percent-encoded as it appears inside a URL. Longest first, since one
 * secret may contain another.
 */
export function scrub(text: string, secrets: readonly string[]): string {
  return scrubber(secrets)(text);
}

/**
 * Masks secrets in text. `cutPoint(text)`: where text that goes on later may be
 * cut so that no secret is cut in two (and so missed): short of the end by the
 * longest secret, and before any secret that would straddle the cut.
 */
export type Scrubber = ((text: string) => string) & { cutPoint(text: string): number };

/** `scrub` with the secrets' forms worked out once, for text scrubbed line by line (job logs). */
export function scrubber(secrets: readonly string[]): Scrubber {
  const forms = new Set<string>();
  for (const s of secrets) for (const f of formsOf(s)) if (f.length >= 4 || f === s) forms.add(f);
  const sorted = [...forms].filter(Boolean).sort((a, b) => b.length - a.length);
  const scrubText = (text: string): string => {
    let out = text;
    for (const f of sorted) out = out.split(f).join(MASK);
    return out;
  };
  const cutPoint = (text: string): number => {
    let cut = text.length - Math.max(0, (sorted[0]?.length ?? 0) - 1);
    for (let moved = cut > 0; moved && cut > 0; ) {
      moved = false;
      for (const f of sorted) {
        const at = text.lastIndexOf(f, cut - 1);
        if (at >= 0 && at + f.length > cut) {
          cut = at;
          moved = true;
        }
      }
    }
    return Math.max(0, cut);
  };
  return Object.assign(scrubText, { cutPoint });
}

/**
 * How a secret can show up in text: as it is, percent-encoded the ways URLs
 * encode it (a path, a query, a form), and line by line (logs are written
 * line by line, so a multi-line key never appears whole).
 */
function formsOf(secret: string): string[] {
  const forms = [secret];
  try {
    const component = encodeURIComponent(secret);
    forms.push(component, encodeURI(secret), component.replace(/'/g, '%27'), new URLSearchParams({ s: secret }).toString().slice(2));
  } catch {
    /* a lone surrogate cannot be encoded, so it cannot appear encoded either */
  }
  if (secret.includes('\n')) forms.push(...secret.split(/\r?\n/).filter((l) => l.trim().length >= 4));
  return forms;
}
