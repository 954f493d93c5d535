import { isMap, isNode, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type ErrorCode, type Node, type Pair, type YAMLError, type YAMLMap } from 'yaml';
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
/**
 * Lines and flow items a file may have. The YAML parser costs a few
 * microseconds per node on the main thread: a 1 MiB file of 300,000 list
 * items took 2.5 s, time in which the daemon answered nothing; 10,000 take
 * about 100 ms. Real requests and recipes have a few hundred.
 */
export const MAX_ITEMS = 10_000;

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
function shapeProblem(text: string): Problem | null {
  let depth = 0;
  let line = 1;
  let items = 0;
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
      if (++items > MAX_ITEMS) return tooMany(line);
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
    else if (c === ',' && depth > 0 && ++items > MAX_ITEMS) return tooMany(line);
  }
  return null;
}

function tooMany(line: number): Problem {
  return { path: '', message: `has more than ${MAX_ITEMS} lines and list items; hopper takes smaller files (a request names its data, it does not carry it)`, line };
}

/** What a person reads for the parser's first complaint; the parser's own words follow it. */
const SYNTAX_WORDS: Partial<Record<ErrorCode, string>> = {
  BLOCK_AS_IMPLICIT_KEY: 'a value runs on into the next line: the keys of one mapping start at the same column (check the indentation of the next line)',
  MULTILINE_IMPLICIT_KEY: 'a key runs over two lines: the keys of one mapping start at the same column (check the indentation of the next line)',
  BAD_INDENT: 'this line is indented differently from the lines beside it: the keys of one mapping, and the items of one list, start at the same column',
  TAB_AS_INDENT: 'a tab indents this line: YAML indents with spaces only',
  UNEXPECTED_TOKEN: 'this line does not fit the ones before it (list items "- x" and keys "k: v" cannot mix at one level)',
};

/**
 * One problem for a file the YAML parser refuses: its first complaint, in a
 * sentence a person can act on, with the parser's words after it. (One slip
 * of indentation makes the parser complain several times, each pointing
 * elsewhere; only the first is where to look.)
 */
function syntaxProblem(e: YAMLError): Problem {
  const pos = e.linePos?.[0];
  const detail = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const unclosed = /end with an? ([\]}])/.exec(detail)?.[1];
  const words = unclosed ? `a ${unclosed === ']' ? '[' : '{'} is not closed with ${unclosed} (or the line after it is not indented under it)` : SYNTAX_WORDS[e.code];
  return { path: '', message: `YAML syntax: ${words ? `${words} (the parser says: ${detail})` : detail}`, line: pos?.line, col: pos?.col };
}

/** The text of a scalar key, or undefined for a complex key (a map or list as a key). */
function keyText(pair: Pair): string | undefined {
  const k = pair.key;
  if (isScalar(k)) return String(k.value);
  return k === null || typeof k !== 'object' ? String(k) : undefined;
}

/**
 * Keys repeated within one mapping, each with its place: one pass with a set
 * per mapping. (The parser's own `uniqueKeys` compares every key with every
 * earlier one: 181,325 keys in one mapping held the daemon for 9 minutes.)
 */
function duplicateKeys(doc: Document, lineCounter: LineCounter): Problem[] {
  const problems: Problem[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, Node>();
      for (const pair of map.items) {
        const text = keyText(pair);
        if (text === undefined) continue;
        const first = seen.get(text);
        if (!first) {
          seen.set(text, pair.key as Node);
          continue;
        }
        const at = (pair.key as Node | null)?.range ? lineCounter.linePos((pair.key as Node).range![0]) : undefined;
        const firstLine = first.range ? ` (first on line ${lineCounter.linePos(first.range[0]).line})` : '';
        problems.push({ path: '', message: `YAML syntax: Map keys must be unique; "${text.slice(0, 100)}" is repeated${firstLine}`, ...at });
      }
    },
  });
  return problems;
}

/** One index per mapping from key to pair, made on first use: placing many problems stays linear. */
function keyIndex(cache: WeakMap<YAMLMap, Map<string, Pair>>, map: YAMLMap): Map<string, Pair> {
  let index = cache.get(map);
  if (!index) {
    index = new Map();
    for (const pair of map.items) {
      const text = keyText(pair as Pair);
      if (text !== undefined && !index.has(text)) index.set(text, pair as Pair);
    }
    cache.set(map, index);
  }
  return index;
}

/** Parses one YAML document; every syntax problem is reported with its line and column. */
export function parseYaml(text: string): ParsedFile {
  if (text.includes('\u0000')) {
    throw new InvalidFileError([{ path: '', message: 'this is a binary file, not YAML text' }]);
  }
  const tooBig = shapeProblem(text);
  if (tooBig) throw new InvalidFileError([tooBig]);
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: false, version: '1.2' });
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
  if (doc.errors.length > 0) throw new InvalidFileError([syntaxProblem(doc.errors[0])]);
  const repeated = duplicateKeys(doc, lineCounter);
  if (repeated.length > 0) throw new InvalidFileError(repeated);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    throw new InvalidFileError([{ path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  if (depth(value, MAX_DEPTH) > MAX_DEPTH) {
    throw new InvalidFileError([{ path: '', message: `nests deeper than ${MAX_DEPTH} levels` }]);
  }

  const index = new WeakMap<YAMLMap, Map<string, Pair>>();
  /** The pair or item at `path`, through the per-mapping index (doc.getIn scans each mapping). */
  const pairAt = (path: readonly string[]): { node: unknown; pair?: Pair } => {
    let node: unknown = doc.contents;
    let pair: Pair | undefined;
    for (const seg of path) {
      if (isMap(node)) {
        pair = keyIndex(index, node).get(seg);
        node = pair?.value;
      } else if (isSeq(node) && /^\d+$/.test(seg)) {
        pair = undefined;
        node = node.items[Number(seg)];
      } else return { node: undefined };
      if (node === undefined && pair === undefined) return { node: undefined };
    }
    return { node, pair };
  };

  const locate = (segments: readonly string[], atKey = false): { line: number; col: number } | undefined => {
    for (let n = segments.length; n >= 0; n--) {
      const at = pairAt(segments.slice(0, n));
      const node = atKey && n === segments.length && n > 0 ? at.pair?.key : at.node;
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]);
      if (atKey && n === segments.length && n > 0) continue;
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
