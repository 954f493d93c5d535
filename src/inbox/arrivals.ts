import { watch, type FSWatcher } from 'node:fs';
import { lstatSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { isIgnoredName } from './files.js';

// The inbox is watched as a wake-up signal, not file by file: on a wake-up
// every complete file present is handed over as one batch, so a thousand
// files dropped at once are read, stored in one transaction and moved.
//
// Complete means: renamed in (what writers are asked to do) is complete at
// once; a file written in place waits until it has been left alone for the
// settle time. The kernel tells the two apart: a file renamed in arrives
// with one `rename` event and no `change`, while writing in place makes
// `change` events (IN_MODIFY) for its writes. Timestamps cannot tell: they
// are coarse, and a write and a rename within a few milliseconds look alike.

/** What the watcher knows of one name in the inbox. */
export interface Sighting {
  /** A `change` event came for it: it is (or was) written in place. */
  written: boolean;
  /** When the latest event for it came. */
  lastEventAt: number;
}

export interface FileState {
  size: number;
  mtimeMs: number;
  /** A regular file (a symlink, a FIFO, a device is taken at once, to be rejected). */
  regular: boolean;
}

/**
 * Whether a file may be taken now, or in how many ms to look again. A file
 * seen arriving by rename with content is ready; one written in place, one
 * found without an event (at start, by a rescan) and an empty one are ready
 * once neither an event nor its mtime is younger than `settleMs`.
 */
export function readiness(file: FileState, sighting: Sighting | undefined, now: number, settleMs: number): { ready: true } | { ready: false; recheckInMs: number } {
  if (!file.regular || (sighting && !sighting.written && file.size > 0)) return { ready: true };
  const lastActivity = Math.max(file.mtimeMs, sighting?.lastEventAt ?? 0);
  const quietFor = now - lastActivity;
  return quietFor >= settleMs ? { ready: true } : { ready: false, recheckInMs: Math.max(1, settleMs - quietFor) };
}

export interface InboxArrivalsOptions {
  dir: string;
  /** How long a file written in place must be left alone before it is taken. */
  settleMs: number;
  /** Also look at the folder this often, in case the OS dropped an event (0: never). */
  rescanMs: number;
  /**
   * Takes a batch of complete files (oldest first). It calls `stored` once the
   * batch is committed (the next batch starts then, so batches are stored in
   * order), and resolves once its files are out of the inbox.
   */
  onBatch(files: string[], stored: () => void): Promise<void>;
  log: Logger;
  clock?: () => number;
}

/** Waits a moment, so events the kernel queued before a stat are read before it is judged. */
/**
 * Files taken in one batch (one transaction) at most. Measured on 3,000 files
 * dropped at once: 64 a batch held the HTTP endpoint up to 37 ms (p99 of
 * /status) and peaked at 274-289 MiB; 16: 18-21 ms, 250 MiB; 8: 12-13 ms,
 * 248-258 MiB; the rate the same for all three.
 */
export const BATCH_MAX = 8;

/** Batches under way at once in a pass (each waits for its commit to reach the disk). */
const BATCHES_AT_ONCE = 4;

/** Files looked up (lstat) per turn of the event loop in a pass over the inbox. */
const LOOKUPS_PER_TURN = 256;

function stateOf(file: string): FileState | null {
  try {
    const st = lstatSync(file);
    return st.isDirectory() ? null : { size: st.size, mtimeMs: st.mtimeMs, regular: st.isFile() };
  } catch {
    return null;
  }
}

const settleEvents = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2));

export class InboxArrivals {
  private readonly o: InboxArrivalsOptions;
  private readonly sightings = new Map<string, Sighting>();
  private readonly now: () => number;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private recheckAt = Infinity;
  private passing: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(options: InboxArrivalsOptions) {
    this.o = options;
    this.now = options.clock ?? Date.now;
  }

  /** Starts watching; resolves once the files already there have been looked at (and taken if complete). */
  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    this.watcher = watch(this.o.dir, { persistent: false }, (type, name) => this.onEvent(type, name));
    this.watcher.on('error', (err) => this.o.log.error({ dir: this.o.dir, err: err.message }, 'inbox watch error; looking at the folder instead'));
    if (this.o.rescanMs > 0) {
      this.rescanTimer = setInterval(() => this.wake(), this.o.rescanMs);
      this.rescanTimer.unref();
    }
    this.wake();
    await this.passing;
  }

  private onEvent(type: string, name: string | Buffer | null): void {
    if (this.stopped) return;
    if (typeof name === 'string' && !isIgnoredName(name) && !name.includes('/')) {
      const s = this.sightings.get(name) ?? { written: false, lastEventAt: 0 };
      if (type === 'change') s.written = true;
      s.lastEventAt = this.now();
      this.sightings.set(name, s);
    }
    this.wake();
  }

  /** Looks at the folder soon; wake-ups while a look is under way make one more look after it. */
  wake(): void {
    if (this.stopped) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = (async () => {
      do {
        this.again = false;
        await new Promise((resolve) => setImmediate(resolve));
        await this.pass().catch((err: unknown) => this.o.log.error({ err: (err as Error).message }, 'could not look at the inbox; will look again'));
      } while (this.again && !this.stopped);
    })().finally(() => (this.passing = undefined));
  }

  private async pass(): Promise<void> {
    const startedAt = this.now();
    let names: string[];
    try {
      names = await readdir(this.o.dir);
    } catch {
      return;
    }
    // Forget names that are gone, but not one whose event came while the folder was read.
    const present = new Set(names);
    for (const [name, s] of this.sightings) if (!present.has(name) && s.lastEventAt < startedAt) this.sightings.delete(name);
    const candidates = names.filter((n) => !isIgnoredName(n));
    // Looked up synchronously, a few hundred at a time between turns of the event
    // loop: 10,000 lstat calls sent at once through libuv's pool held the main
    // thread for their 10,000 completions, and HTTP answers waited behind them.
    const states: Array<FileState | null> = [];
    for (let i = 0; i < candidates.length; i++) {
      if (i > 0 && i % LOOKUPS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
      states.push(stateOf(path.join(this.o.dir, candidates[i])));
    }
    await settleEvents();
    const ready: Array<{ file: string; mtimeMs: number; name: string }> = [];
    let recheckIn = Infinity;
    const now = this.now();
    candidates.forEach((name, i) => {
      const st = states[i];
      if (!st) return;
      const r = readiness(st, this.sightings.get(name), now, this.o.settleMs);
      if (r.ready) ready.push({ file: path.join(this.o.dir, name), mtimeMs: st.mtimeMs, name });
      else recheckIn = Math.min(recheckIn, r.recheckInMs);
    });
    if (recheckIn !== Infinity) this.recheckSoon(recheckIn);
    if (ready.length === 0 || this.stopped) return;
    // By code point, not localeCompare: 10,000 names sort in ~4 ms instead of ~12.
    ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const r of ready) this.sightings.delete(r.name);
    // A burst is taken BATCH_MAX files at a time: each batch is read, parsed and
    // held in memory whole, and committed in one transaction that the HTTP
    // endpoint waits behind; between batches it answers. A batch's files leave
    // the inbox only once its commit is on disk (a sync, ~10 ms apart at most):
    // meanwhile the next batches are read and stored (one after another, in
    // order), and share that sync. One at a time, a burst was taken at ~700
    // files a second with the main thread half idle.
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    for (let i = 0; i < ready.length && !this.stopped && failure === undefined; i += BATCH_MAX) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      let stored!: () => void;
      const storedNow = new Promise<void>((resolve) => (stored = resolve));
      const batch: Promise<void> = this.o
        .onBatch(ready.slice(i, i + BATCH_MAX).map((r) => r.file), stored)
        .catch((err: unknown) => {
          this.o.log.error({ err: (err as Error).message }, 'could not take a batch of files; they stay in the inbox');
          failure ??= err;
        })
        .finally(() => inFlight.delete(batch));
      inFlight.add(batch);
      // Stored in order: the next batch may refer to this one's (a request for a recipe file it holds, a cancel of its request).
      await Promise.race([storedNow, batch]);
      if (inFlight.size >= BATCHES_AT_ONCE) await Promise.race(inFlight);
    }
    // The pass ends when its files are out of the inbox: the next one must not find them again.
    // (A failed batch stopped the pass; it was said above, and its files wait for the next.)
    await Promise.all(inFlight);
  }

  private recheckSoon(ms: number): void {
    const at = this.now() + ms;
    if (at >= this.recheckAt) return;
    clearTimeout(this.recheckTimer);
    this.recheckAt = at;
    this.recheckTimer = setTimeout(() => {
      this.recheckAt = Infinity;
      this.wake();
    }, ms);
    this.recheckTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.rescanTimer);
    clearTimeout(this.recheckTimer);
    this.watcher?.close();
    await this.passing;
  }
}
