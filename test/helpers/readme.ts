// Finds the examples in README.md and sorts them into kinds, mechanically (test/readme.test.ts runs them).
import { parse } from 'yaml';
import { configSchema } from '../../src/schemas/config.js';
import { recipeSchema } from '../../src/schemas/recipe.js';
import { cancelSchema, requestSchema } from '../../src/schemas/request.js';

/** Where an example is: README line, and the text as written there. */
export interface Place {
  line: number;
  source: string;
}

export type Example = Place &
  (
    | { kind: 'cli'; command: string; fenced: boolean } // `npm run hopper -- ...`, run as a shell line
    | { kind: 'file'; text: string; fileKind: 'request' | 'cancel' | 'recipe' } // a file for the inbox
    | { kind: 'config'; text: string } // a hopper.yaml snippet with real values: parseConfig takes it
    | { kind: 'shape'; value: Record<string, unknown>; roots: RootName[] } // a schematic snippet (`http: { host, port }`): each key must exist
    | { kind: 'problems'; lines: string[] } // a sample of FILE:LINE:COL: message output
    | { kind: 'shell'; lines: string[] } // a block of other shell lines (installation, images)
    | { kind: 'mention'; words: string[]; options: string[] } // `hopper CMD ...` named in the text, a CLI table row
    | { kind: 'unknown'; why: string } // a fenced block no rule recognises: the test fails on it
  );

/** The fenced blocks: language, body, line of the opening fence. */
export function fences(md: string): Array<{ lang: string; body: string; line: number }> {
  const out: Array<{ lang: string; body: string; line: number }> = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    // Indented too: a fence inside a list item (its body loses the fence's indentation).
    const open = /^( *)```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^ *```\s*$/.test(l));
    if (end < 0) throw new Error(`line ${i + 1}: a fence that is never closed`);
    const indent = open[1].length;
    out.push({ lang: open[2], body: lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n'), line: i + 1 });
    i = end;
  }
  return out;
}

/** The text outside fences, fences blanked line for line (so line numbers stay). */
function prose(md: string): string {
  let inFence = false;
  return md
    .split('\n')
    .map((l) => {
      if (/^ *```/.test(l)) {
        inFence = !inFence;
        return '';
      }
      return inFence ? '' : l;
    })
    .join('\n');
}

/** Inline code spans outside fences (a span may wrap across lines: whitespace collapsed), with their line. */
export function codeSpans(md: string): Array<{ text: string; line: number; before: string }> {
  const text = prose(md);
  const out: Array<{ text: string; line: number; before: string }> = [];
  for (const m of text.matchAll(/`([^`]+)`/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    const lineStart = text.lastIndexOf('\n', m.index) + 1;
    out.push({ text: m[1].replace(/\s+/g, ' ').replace(/\\\|/g, '|').trim(), line, before: text.slice(lineStart, m.index) });
  }
  return out;
}

/** The rows (cells as text) of every markdown table whose header row is exactly `header`. */
export function tableRows(md: string, header: string[]): Array<{ cells: string[]; line: number }> {
  const lines = md.split('\n');
  const out: Array<{ cells: string[]; line: number }> = [];
  const cellsOf = (l: string): string[] =>
    l
      .replace(/\\\|/g, '\u0000')
      .split('|')
      .slice(1, -1)
      .map((c) => c.replace(/\u0000/g, '|').trim());
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('|') || cellsOf(lines[i]).join('|') !== header.join('|')) continue;
    for (let j = i + 2; j < lines.length && lines[j].startsWith('|'); j++) out.push({ cells: cellsOf(lines[j]), line: j + 1 });
  }
  return out;
}

// ---- schemas: which file or snippet a key belongs to ----

type Schema = { type?: unknown; properties?: Record<string, Schema>; additionalProperties?: boolean | Schema; items?: Schema };
const stepSchema = (recipeSchema.properties.steps as unknown as { items: Schema }).items;
export const ROOTS = {
  config: configSchema as unknown as Schema,
  recipe: recipeSchema as unknown as Schema,
  step: stepSchema,
  request: requestSchema as unknown as Schema,
  cancel: cancelSchema as unknown as Schema,
};
export type RootName = keyof typeof ROOTS;

function typeFits(schema: Schema, value: unknown): boolean {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  if (types.length === 0) return true;
  const t = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;
  return t === 'null' || types.includes(t) || (t === 'number' && types.includes('integer')) || (t === 'string' && !types.includes('object') && !types.includes('array'));
}

/** The keys of `value` the schema does not know (a renamed setting), as dotted paths. */
export function unknownKeys(value: unknown, schema: Schema, at = ''): string[] {
  if (Array.isArray(value)) return schema.items ? value.flatMap((v, i) => unknownKeys(v, schema.items!, `${at}[${i}]`)) : [];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const p = at ? `${at}.${k}` : k;
    const sub = schema.properties?.[k] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
    if (sub) return unknownKeys(v, sub, p);
    return schema.properties && schema.additionalProperties === false ? [p] : [];
  });
}

/** `a.b: v` as `{a: {b: v}}`. */
function expandDotted(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const parts = k.split('.');
    let at = out;
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
    at[parts[parts.length - 1]] = v;
  }
  return out;
}

/** A placeholder the reader fills in: URL, ID, FILE..., [RECIPE]. */
export const PLACEHOLDER = /^\[?[A-Z][A-Z0-9_]+(\.\.\.)?\]?(\.\.\.)?$/;

/** A snippet that shows a shape rather than values: `{ host, port }`, `a | b`, `...`, NAME. */
function schematic(value: unknown): boolean {
  if (value === null) return true;
  if (Array.isArray(value)) return value.some(schematic);
  if (typeof value === 'object') return Object.entries(value).some(([k, v]) => PLACEHOLDER.test(k) || schematic(v));
  return typeof value === 'string' && (/\.\.\.|…| \| /.test(value) || PLACEHOLDER.test(value));
}

/** The roots (file kinds) whose top level has this mapping's first key, with a value of the right type. */
function rootsOf(value: Record<string, unknown>): RootName[] {
  const [first] = Object.keys(value);
  if (!first) return [];
  const [key, ...rest] = first.split('.');
  return (Object.keys(ROOTS) as RootName[]).filter((r) => {
    const sub = ROOTS[r].properties?.[key];
    return sub && (rest.length > 0 || typeFits(sub, value[first]));
  });
}

// ---- shell lines ----

/** A block's shell lines: continuations joined, trailing comments dropped, blanks gone. */
export function shellLines(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s+)#(\s.*)?$/, '').trim())
    .filter(Boolean);
}

const NPM_HOPPER = /^npm run hopper -- /;

/** A shell line split into commands at `&&` and `;` outside quotes and $(...). */
export function commandsOf(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && (line.startsWith('&&', i) || c === ';')) {
      out.push(cur.trim());
      cur = '';
      if (c === '&') i++;
      continue;
    }
    cur += c;
  }
  out.push(cur.trim());
  return out.filter(Boolean);
}

/** Words of a command line, with shell quotes removed (enough for README examples: no expansions); `<a placeholder>` is one word. */
export function words(command: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let quote = '';
  for (const c of command) {
    if (quote) {
      if (c !== quote || quote === '>') cur = (cur ?? '') + c;
      if (c === quote) quote = '';
    } else if (c === '<' && cur === undefined) {
      quote = '>';
      cur = c;
    } else if (c === '"' || c === "'") {
      quote = c;
      cur ??= '';
    } else if (/\s/.test(c)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

/** The subcommand words and the options of a hopper command line's arguments (after `hopper`). */
export function cliSurface(args: string[]): { words: string[]; options: string[] } {
  const lead: string[] = [];
  for (const a of args) {
    if (!/^[a-z][a-z-]*$/.test(a)) break;
    lead.push(a);
  }
  const options = [...new Set(args.filter((a) => /^\[?-/.test(a)).map((a) => a.replace(/^\[+/, '').replace(/[\]=].*$/, '').replace(/\.\.\.$/, '')))];
  return { words: lead, options };
}

// ---- the examples ----

function classifyYaml(text: string, place: Place): Example {
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    return { ...place, kind: 'unknown', why: `not YAML: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ...place, kind: 'unknown', why: 'YAML that is not a mapping' };
  const kind = (value as { kind?: unknown }).kind;
  if (kind === 'request' || kind === 'cancel' || kind === 'recipe') return { ...place, kind: 'file', text, fileKind: kind };
  const keys = Object.keys(value);
  if (keys.length && keys.every((k) => k in ROOTS.config.properties!)) return { ...place, kind: 'config', text };
  return { ...place, kind: 'unknown', why: `a YAML block that is neither a hopper file (kind:) nor hopper.yaml settings (keys ${keys.join(', ')})` };
}

/** Every example in the README, in order. */
export function readmeExamples(md: string): Example[] {
  const out: Example[] = [];
  for (const f of fences(md)) {
    const place = { line: f.line, source: f.body };
    if (/^ya?ml$/.test(f.lang)) out.push(classifyYaml(f.body, place));
    else if (/^(sh|bash|shell|console)$/.test(f.lang)) {
      const lines = shellLines(f.body);
      const rest = lines.filter((l) => !NPM_HOPPER.test(l));
      for (const l of lines.filter((l) => NPM_HOPPER.test(l))) out.push({ line: f.line, source: l, kind: 'cli', command: l, fenced: true });
      if (rest.length) out.push({ line: f.line, source: rest.join('\n'), kind: 'shell', lines: rest });
    } else if (f.lang === '' && f.body.trim() && f.body.trim().split('\n').every((l) => /^\S+:\d+:\d+: \S/.test(l))) {
      out.push({ ...place, kind: 'problems', lines: f.body.trim().split('\n') });
    } else out.push({ ...place, kind: 'unknown', why: `a fenced block (language "${f.lang}") no rule knows how to run` });
  }
  for (const s of codeSpans(md)) {
    const place = { line: s.line, source: s.text };
    if (NPM_HOPPER.test(s.text)) {
      out.push({ ...place, kind: 'cli', command: s.text, fenced: false });
      continue;
    }
    const hopperCommand = /^(?:sudo -u \S+ )?hopper( .*)$/.exec(s.text);
    if (hopperCommand) {
      out.push({ ...place, kind: 'mention', ...cliSurface(words(hopperCommand[1])) });
      continue;
    }
    if ((s.text.startsWith('{') && !s.text.startsWith('{{')) || /^[A-Za-z][\w.]*: \S/.test(s.text)) {
      let value: unknown;
      try {
        value = parse(s.text);
      } catch {
        continue; // prose in code style, not a snippet
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      const kind = (value as { kind?: unknown }).kind;
      if (kind === 'request' || kind === 'cancel' || kind === 'recipe') {
        out.push({ ...place, kind: 'file', text: s.text, fileKind: kind });
        continue;
      }
      const expanded = expandDotted(value as Record<string, unknown>);
      const roots = rootsOf(value as Record<string, unknown>);
      if (!roots.length) continue; // not a hopper setting: an HTTP answer, a header
      if (roots.includes('config') && !schematic(value) && roots.length === 1) out.push({ ...place, kind: 'config', text: s.text });
      else out.push({ ...place, kind: 'shape', value: expanded, roots });
    }
  }
  // The CLI reference: each row's command, its subcommands and options.
  for (const row of tableRows(md, ['command', 'does'])) {
    const span = /^`([^`]+)`/.exec(row.cells[0]);
    if (span) out.push({ line: row.line, source: span[1], kind: 'mention', ...cliSurface(words(span[1].replace(/\\\|/g, '|'))) });
  }
  return out.sort((a, b) => a.line - b.line);
}
