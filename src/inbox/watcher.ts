import { watch, type FSWatcher } from 'chokidar';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { isIgnoredName } from './files.js';

export interface FolderWatchOptions {
  dir: string;
  /** A file may be taken once its size has not changed for this long (in-place writers). */
  settleMs: number;
  /** Skip the files present at start (the caller loaded them already). */
  ignoreInitial?: boolean;
  accept?: (name: string) => boolean;
  onFile(file: string): Promise<void> | void;
  onRemove?(file: string): void;
  log: Logger;
}

/**
 * Watches the top level of one folder (recipes/) and hands each settled file to
 * `onFile`, one at a time and at most once while it is being handled.
 */
export class FolderWatcher {
  private readonly o: FolderWatchOptions;
  private watcher: FSWatcher | undefined;
  private readonly queued = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: FolderWatchOptions) {
    this.o = options;
  }

  private wanted(file: string): boolean {
    const name = path.basename(file);
    return path.dirname(file) === this.o.dir && !isIgnoredName(name) && (this.o.accept?.(name) ?? true);
  }

  private enqueue(file: string): void {
    if (this.stopped || this.queued.has(file) || !this.wanted(file)) return;
    this.queued.add(file);
    this.chain = this.chain
      .then(() => (this.stopped ? undefined : this.o.onFile(file)))
      .catch((err: unknown) => this.o.log.error({ file: path.basename(file), err: (err as Error).message }, 'file handler failed'))
      .finally(() => this.queued.delete(file));
  }

  /** Starts watching; resolves once files already in the folder have been queued. */
  async start(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true });
    const watcher = watch(this.o.dir, {
      depth: 0,
      ignoreInitial: this.o.ignoreInitial ?? false,
      awaitWriteFinish: { stabilityThreshold: this.o.settleMs, pollInterval: Math.max(10, Math.min(50, this.o.settleMs / 4)) },
      ignored: (p: string) => p !== this.o.dir && isIgnoredName(path.basename(p)),
    });
    this.watcher = watcher;
    watcher.on('add', (p) => this.enqueue(p));
    watcher.on('change', (p) => this.enqueue(p));
    watcher.on('unlink', (p) => this.o.onRemove?.(p));
    watcher.on('error', (err) => this.o.log.error({ dir: this.o.dir, err: (err as Error).message }, 'watch error'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher?.close();
    await this.chain;
  }
}
