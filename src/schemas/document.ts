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

/** Parses one YAML document; every syntax problem is reported with its line and column. */
export function parseYaml(text: string): ParsedFile {
  if (text.includes('\u0000')) {
    throw new InvalidFileError([{ path: '', message: 'this is a binary file, not YAML text' }]);
  }
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
