// What a page may cost the page worker, decided before JSON.parse runs.
//
// The worker's heap is capped (resourceLimits), but on Node 20 reaching that
// cap is not a clean failure: V8 raises the limit by 16 MiB at a time while
// the worker is being stopped, thrashes for seconds, and now and then aborts
// the whole process ("FATAL ERROR: Reached heap limit", seen with 12 and 16
// MiB of `{}` under a 160 MiB cap). So the cap is only a backstop: a page
// whose parse could come near it is refused from a count of its tokens, and
// the cap sits above that.
//
// The heap JSON.parse builds per byte of text depends on the shape, not the
// size: a CKAN row takes ~1.3 times its JSON, `[{},{},...]` ~19 times, nested
// `[[[...]]]` ~29 times, objects with keys never seen before ~14 times (a new
// hidden class each). Measured on Node 20 (64-bit, no pointer compression),
// per token: an object or array ~56 bytes plus its slot in its parent (more
// for keys like "123", which go to a dictionary), a key never seen before ~100
// bytes more, a number or string a slot and a box of 16 bytes or more; and the
// text itself, as a string, up to 2 bytes a character. The weights below put
// the estimate at or above the heap taken by each of 27 shapes measured
// (estimate/heap 1.0 to 7.9): an upper bound; for real rows it comes to 5 to
// 17 times the JSON's size.

const MiB = 1024 * 1024;

/** Estimated heap bytes per `{` or `[`, per `:` (a key), per `,` (a value), and per byte (the text as a string, string values). */
const PER_CONTAINER = 72;
const PER_KEY = 96;
const PER_VALUE = 32;
const PER_BYTE = 2;

/** A page of real rows up to maxPageBytes estimates at most ~17 times its size: such pages must pass. */
const BUDGET_PER_PAGE_BYTE = 16;
/** The rows made from one page (CSV or JSONL text) may be this many times maxPageBytes, up to 1 GiB. */
const CHUNK_PER_PAGE_BYTE = 4;
const CHUNK_CEILING = 1024 * MiB;
// The heap cap over the parse budget: a quarter more (the estimate came within
// a few percent of two shapes), and room for the worker's own code and a block
// of rows being built.
const HEAP_MARGIN = 1.25;
const HEAP_ROOM_MB = 48;
const HEAP_FLOOR_MB = 96;
/** Whatever a recipe sets, one step's worker takes no more heap than this. */
const HEAP_CEILING_MB = 2048;

export interface PageLimits {
  /** The largest parse estimate (parseCost) a page may have. */
  parseBudget: number;
  /** The worker's old-space cap (resourceLimits), in MiB: above parseBudget, never reached by a page that passed. */
  heapMb: number;
  /** The largest CSV or JSONL chunk one page may make, in bytes. */
  chunkBytes: number;
}

export function pageLimits(maxPageBytes: number): PageLimits {
  const parseBudget = Math.min(BUDGET_PER_PAGE_BYTE * maxPageBytes, Math.floor(((HEAP_CEILING_MB - HEAP_ROOM_MB) / HEAP_MARGIN) * MiB));
  return {
    parseBudget,
    heapMb: Math.max(HEAP_FLOOR_MB, Math.ceil((parseBudget * HEAP_MARGIN) / MiB) + HEAP_ROOM_MB),
    chunkBytes: Math.min(CHUNK_PER_PAGE_BYTE * maxPageBytes, CHUNK_CEILING),
  };
}

/** The most one byte of JSON can add to parseCost (a `:`, a key). */
const MOST_PER_BYTE = Math.max(PER_CONTAINER, PER_KEY, PER_VALUE) + PER_BYTE;

/**
 * Whether a page of `size` bytes could cost more than `budget` to parse: if
 * not, whatever its shape, it need not be counted (pages of up to 2.6 MiB
 * with the default maxPageBytes: most real ones).
 */
export function mayCostMore(size: number, budget: number): boolean {
  return size * MOST_PER_BYTE > budget;
}

/**
 * An upper bound of the heap JSON.parse needs for `bytes` (UTF-8 JSON), from
 * one pass over them: objects, arrays, keys and values outside strings.
 * 1 to 6 ms a MiB, a fraction of what the parse it may spare takes.
 */
export function parseCost(bytes: Uint8Array): number {
  let containers = 0;
  let keys = 0;
  let values = 0;
  for (let i = 0, n = bytes.length; i < n; i++) {
    const c = bytes[i];
    if (c === 0x22) {
      // a string: to its closing quote, stepping over escapes (`\"`, `\\`)
      for (i++; i < n; i++) {
        const d = bytes[i];
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) containers++;
    else if (c === 0x3a) keys++;
    else if (c === 0x2c) values++;
  }
  return containers * PER_CONTAINER + keys * PER_KEY + values * PER_VALUE + bytes.length * PER_BYTE;
}
