import { isMap, isNode, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { InvalidFileError, type Problem } from '../errors.js';
import type { LocatedProblem } from './messages.js';

/** A parsed YAML (or JSON) file that can say where a field stands in the text. */
export interface ParsedFile {
  value: unknown;
  locate(segments: readonly string[], atKey?: boolean): { line: number; col: number } | undefined;
  /** Attaches line and column to problems found by a later validation. */
  place(problems: readonly LocatedProblem[]): Problem[];
}

const MAX_ALIASES = 100;
const MAX_DEPTH = 64;

function depth(value: unknown, limit: number): number {
  if (value === null || typeof value !== 'object') return 0;
  if (limit <= 0) return Infinity;
  let max = 0;
  for (const v of Object.values(value)) max = Math.max(max, depth(v, limit - 1));
  return max + 1;
}

const MAX_INDENT = 512;

/** A quote starts a quoted scalar only where a value can start (not the apostrophe in "it's"). */
function opensScalar(text: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && (text[j] === ' ' || text[j] === '\t')) j--;
  return j < 0 || '\n:-[{,?'.includes(text[j]);
}

/**
 * How deeply the text nests, judged before the YAML parser sees it: a parser
 * fed tens of thousands of `[` can exhaust the stack or abort the process. Flow
 * brackets are counted outside quotes and comments; block nesting is bounded
 * by indentation.
 */
function nestingProblem(text: string): Problem | null {
  let depth = 0;
  let line = 1;
  let quote: string | null = null;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === ' ') {
        if (++indent > MAX_INDENT) return { path: '', message: `is indented deeper than ${MAX_INDENT} columns`, line, col: indent };
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      const end = text.indexOf('\n', i);
      i = (end === -1 ? text.length : end) - 1;
    } else if ((c === '"' || c === "'") && opensScalar(text, i)) quote = c;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) return { path: '', message: `nests deeper than ${MAX_DEPTH} levels`, line };
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return null;
}

/** Parses one YAML document; every syntax problem is reported with its line and column. */
export function parseYaml(text: string): ParsedFile {
  if (text.includes('\u0000')) {
    throw new InvalidFileError([{ path: '', message: 'this is a binary file, not YAML text' }]);
  }
  const tooDeep = nestingProblem(text);
  if (tooDeep) throw new InvalidFileError([tooDeep]);
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true, version: '1.2' });
  if (!Array.isArray(docs)) {
    throw new InvalidFileError([{ path: '', message: 'the file is empty' }]);
  }
  if (docs.length === 0) throw new InvalidFileError([{ path: '', message: 'the file is empty' }]);
  if (docs.length > 1) {
    const pos = docs[1].range ? lineCounter.linePos(docs[1].range[0]) : undefined;
    throw new InvalidFileError([
      { path: '', message: 'holds more than one YAML document; put one request per file', ...pos },
    ]);
  }
  const doc: Document = docs[0];
  if (doc.errors.length > 0) {
    throw new InvalidFileError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        return { path: '', message: `YAML syntax: ${message}`, line: pos?.line, col: pos?.col };
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    throw new InvalidFileError([{ path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  if (depth(value, MAX_DEPTH) > MAX_DEPTH) {
    throw new InvalidFileError([{ path: '', message: `nests deeper than ${MAX_DEPTH} levels` }]);
  }

  const locate = (segments: readonly string[], atKey = false): { line: number; col: number } | undefined => {
    for (let n = segments.length; n >= 0; n--) {
      const path = segments.slice(0, n);
      if (atKey && n === segments.length && n > 0) {
        const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isNode(p.key) && String((p.key as { value?: unknown }).value) === path[path.length - 1]);
          const keyNode = pair?.key as Node | undefined;
          if (keyNode?.range) return lineCounter.linePos(keyNode.range[0]);
        }
        continue;
      }
      const node = n === 0 ? doc.contents : doc.getIn(path.map((s) => (/^\d+$/.test(s) ? Number(s) : s)), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]);
    }
    return undefined;
  };

  return {
    value,
    locate,
    place: (problems) =>
      problems.map(({ path, message, segments, atKey }) => ({ path, message, ...locate(segments, atKey) })),
  };
}
