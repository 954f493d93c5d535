/**
 * The one place secrets are masked. A secret is a request parameter whose
 * schema says `writeOnly: true` (at any depth of `properties`). Stored params
 * keep the value (the job needs it); every view, log line, email and webhook
 * goes through here first.
 */
export const MASK = '***';

type Schema = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A copy of `params` with every writeOnly value replaced by the mask. */
export function maskParams(params: Record<string, unknown>, schema: unknown): Record<string, unknown> {
  return maskValue(params, schema) as Record<string, unknown>;
}

function maskValue(value: unknown, schema: unknown): unknown {
  if (!isObject(schema)) return value;
  if (schema.writeOnly === true) return MASK;
  if (Array.isArray(value) && isObject(schema.items)) return value.map((v) => maskValue(v, schema.items));
  if (!isObject(value)) return value;
  const props = isObject(schema.properties) ? (schema.properties as Record<string, Schema>) : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = Object.hasOwn(props, k) ? maskValue(v, props[k]) : v;
  return out;
}

/** The secret values themselves, so text (command output, error messages) can be scrubbed. */
export function secretValues(params: unknown, schema: unknown): string[] {
  const found: string[] = [];
  const walk = (value: unknown, s: unknown): void => {
    if (!isObject(s) || value === undefined || value === null) return;
    if (s.writeOnly === true) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      // Very short secrets would mask ordinary words; they still never reach a view as params.
      if (text.length >= 4) found.push(text);
      return;
    }
    if (Array.isArray(value) && isObject(s.items)) value.forEach((v) => walk(v, s.items));
    if (isObject(value) && isObject(s.properties)) {
      const props = s.properties as Record<string, Schema>;
      for (const [k, v] of Object.entries(value)) if (Object.hasOwn(props, k)) walk(v, props[k]);
    }
  };
  walk(params, schema);
  return found;
}

/** Replaces every occurrence of each secret in `text` with the mask. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}
