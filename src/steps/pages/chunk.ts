import { HopperError } from '../../errors.js';

// A page's records as CSV or JSONL bytes. This runs in the page worker
// (worker.ts): nothing here touches the step's state, files or the network.

/** One CSV field, quoted as RFC 4180 says when it must be. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The CSV columns: the first record's fields, in its order. */
export function csvHeader(first: unknown): string[] {
  return typeof first === 'object' && first !== null ? Object.keys(first) : [];
}

/** Rows as CSV lines into `out` (`offset` is the first record's number, for messages). */
export function csvRows(records: unknown[], header: string[], withHeader: boolean, offset: number, out: ChunkBuilder): void {
  if (withHeader) out.add(`${header.map(csvField).join(',')}\r\n`);
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as Record<string, unknown>;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new HopperError('E_PAGES_SHAPE', `record ${offset + i} is not an object with fields, so it has no CSV row (ask for format: jsonl)`);
    }
    let line = '';
    for (let h = 0; h < header.length; h++) line += (h === 0 ? '' : ',') + csvField(record[header[h]]);
    out.add(`${line}\r\n`);
  }
}

/** Rows as JSON Lines into `out`. */
export function jsonlRows(records: unknown[], out: ChunkBuilder): void {
  for (let i = 0; i < records.length; i++) out.add(`${JSON.stringify(records[i])}\n`);
}

// Rows are gathered as text and encoded a block at a time: the page's rows end
// up as one run of bytes (written with one call) while the heap holds at most
// a block of row strings, not a page of them (a line's fields joined with +=
// are a tree of string pieces until encoded: ~40 bytes a field).
const BLOCK_CHARS = 256 * 1024;
// encode() gives bytes in an ArrayBuffer of their own, which can be handed to
// the main thread; Buffer.from would put a short one in Node's shared pool.
const encoder = new TextEncoder();

/** A page's rows as UTF-8, failing with `tooLarge()` past `maxBytes` (a page of 5,000 rows with a million columns). */
export class ChunkBuilder {
  readonly #maxBytes: number;
  readonly #tooLarge: () => Error;
  readonly #blocks: Uint8Array[] = [];
  #bytes = 0;
  #text = '';

  constructor(maxBytes: number, tooLarge: () => Error) {
    this.#maxBytes = maxBytes;
    this.#tooLarge = tooLarge;
  }

  add(line: string): void {
    this.#text += line;
    // UTF-8 takes at least a byte a character: over the limit in characters is over it in bytes.
    if (this.#bytes + this.#text.length > this.#maxBytes) throw this.#tooLarge();
    if (this.#text.length >= BLOCK_CHARS) this.#encode();
  }

  /** The rows, in one buffer of their own. */
  finish(): Uint8Array {
    this.#encode();
    if (this.#blocks.length === 1) return this.#blocks[0];
    const all = new Uint8Array(this.#bytes);
    let at = 0;
    for (const block of this.#blocks) {
      all.set(block, at);
      at += block.length;
    }
    return all;
  }

  #encode(): void {
    if (this.#text === '') return;
    const block = encoder.encode(this.#text);
    this.#text = '';
    this.#bytes += block.length;
    if (this.#bytes > this.#maxBytes) throw this.#tooLarge();
    this.#blocks.push(block);
  }
}
