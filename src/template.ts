import { HopperError } from './errors.js';

/**
 * The one place `{{ ... }}` placeholders are filled. Values are substituted as
 * text into a single string (an argv element, an env value, a URL, a path): no
 * shell ever reads them, so no quoting is needed or attempted.
 */
export const TEMPLATE_ROOTS = ['params', 'request', 'recipe', 'job', 'output'] as const;
export type TemplateRoot = (typeof TEMPLATE_ROOTS)[number];
export type TemplateScope = Partial<Record<TemplateRoot, unknown>>;

// No nested quantifiers: linear on any input (an unclosed "{{" cannot make it backtrack).
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/** Every placeholder path in a template string, e.g. `params.url`. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1].trim());
}

/** Why a placeholder cannot work, or null when it can. */
export function placeholderProblem(path: string): string | null {
  if (!PATH.test(path)) return `"{{${path}}}" is not a placeholder (write {{params.name}})`;
  const root = path.split('.')[0];
  if (!(TEMPLATE_ROOTS as readonly string[]).includes(root)) {
    return `"{{${path}}}" reads "${root}", which is not one of ${TEMPLATE_ROOTS.join(', ')}`;
  }
  return null;
}

export function lookup(scope: unknown, path: string): unknown {
  let value: unknown = scope;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(asText).join('\n');
  return JSON.stringify(value);
}

export interface RenderOptions {
  /** Throw E_TEMPLATE on a placeholder with no value (steps); else it becomes '' (messages). */
  strict?: boolean;
}

export function render(template: string, scope: TemplateScope, options: RenderOptions = {}): string {
  return template.replace(PLACEHOLDER, (_all, raw: string) => {
    const path = raw.trim();
    const value = lookup(scope, path);
    if (value === undefined || value === null) {
      if (options.strict) throw new HopperError('E_TEMPLATE', `{{${path}}} has no value`);
      return '';
    }
    return asText(value);
  });
}

/** Renders every string inside a JSON-like value, keeping its shape. */
export function renderDeep<T>(value: T, scope: TemplateScope, options: RenderOptions = {}): T {
  if (typeof value === 'string') return render(value, scope, options) as T;
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, scope, options)) as T;
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a "__proto__" key stays data.
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, scope, options)])) as T;
  }
  return value;
}

/** Every template string inside a JSON-like value, with its dotted location. */
export function templateStrings(value: unknown, at = ''): Array<{ at: string; text: string }> {
  if (typeof value === 'string') return value.includes('{{') ? [{ at, text: value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => templateStrings(v, `${at}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => templateStrings(v, at ? `${at}.${k}` : k));
  }
  return [];
}
