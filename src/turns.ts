import { setImmediate as nextTurn } from 'node:timers/promises';

// Work on the main thread in slices of time, so what waits for the event loop
// (an HTTP answer, a timer) waits for one slice, not for all of the work.

/**
 * `fn` of each item in order, one after another; after each `sliceMs` of
 * them the event loop gets a turn, and once more at the end if the last
 * slice ran that long (so what the caller does next starts a slice of its own).
 */
export async function mapInTurns<T, R>(items: readonly T[], fn: (item: T) => R | Promise<R>, o: { sliceMs: number; now?: () => number }): Promise<R[]> {
  const now = o.now ?? (() => performance.now());
  const out: R[] = [];
  let sliceStart = now();
  for (const item of items) {
    if (now() - sliceStart >= o.sliceMs) {
      await nextTurn();
      sliceStart = now();
    }
    out.push(await fn(item));
  }
  if (now() - sliceStart >= o.sliceMs) await nextTurn();
  return out;
}
