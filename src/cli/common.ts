import type { Command } from 'commander';
import { loadConfig, type Config, ConfigError } from '../config/config.js';
import { existsSync } from 'node:fs';
import { pathsFor, rootFrom, type Paths } from '../paths.js';
import { openStore, type Store } from '../store/store.js';
import { printable } from '../text.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A failure the CLI reports in one line and exits with `code`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.failure) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface GlobalOptions {
  root?: string;
  config?: string;
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function rootPaths(cmd: Command): Paths {
  return pathsFor(rootFrom(globals(cmd).root));
}

/** The config for a command; a bad one is a usage error (exit 2), as SPEC says. */
export function configFor(cmd: Command): Config {
  const g = globals(cmd);
  try {
    return loadConfig(rootFrom(g.root), g.config);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`bad config:\n${err.message}`, EXIT.usage);
    throw err;
  }
}

/** The root's database, or a CliError when hopper never started there. */
export function openRootStore(db: string, o: { readonly?: boolean } = {}): Store {
  if (!existsSync(db)) throw new CliError(`no hopper database at ${db} (has hopper started on this root?)`, EXIT.failure);
  return openStore(db, o);
}

/** Runs `fn` on the root's database (config checked first); closes it whatever happens. */
export function withRootStore<T>(cmd: Command, fn: (store: Store) => T): T {
  configFor(cmd);
  const store = openRootStore(rootPaths(cmd).db);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** Prints text for a person: control characters from stored data (a server's answer, a param) shown, not obeyed. */
export function say(text: string): void {
  process.stdout.write(printable(text));
}
