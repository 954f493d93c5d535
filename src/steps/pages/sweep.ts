import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Why the main thread collects its young generation by hand while pages come in.
//
// Node's HTTP client copies each piece of a response body into a buffer of its
// own, outside V8's heap. V8 frees such a buffer only when it collects the
// small object that points at it, and it collects when its heap fills. With
// pages parsed in the worker, the main thread allocates almost nothing on its
// heap per page, so those collections stopped: the 200,000-row job left ~13 MiB
// of dead body buffers behind (the daemon's peak RSS 135-143 MiB, 118-124 with
// this, 113-117 before the worker), and V8's own limits would let that reach
// 32-64 MiB on a long job. A young-generation collection every 2 MiB of pages
// frees them; it takes well under a millisecond, the young generation being
// nearly empty.
//
// `gc` exists only with --expose-gc; the flag, set now, puts it into contexts
// made from then on, so one is made to fetch it. Setting the flag has no other
// effect on the running process.

const EVERY_BYTES = 2 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;
let collect: Collect | undefined;
let since = 0;

/** Counts `bytes` of page bodies read; after every 2 MiB, collects the young generation. */
export function sweepAfter(bytes: number): void {
  since += bytes;
  if (since < EVERY_BYTES) return;
  since = 0;
  if (!collect) {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    collect = typeof gc === 'function' ? (gc as Collect) : () => {}; // a node without it: as before, no harm
  }
  collect({ type: 'minor' });
}
