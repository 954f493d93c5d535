import { createRequire } from 'node:module';

// hopper runs its dist/ build, or its TypeScript under tsx (tests, an edit not
// yet built). Code that must run outside the daemon's own loader (a worker
// thread, a recipe's `node` command) needs plain JavaScript in the second
// case: the TypeScript file bundled with what it imports, by esbuild (the
// build's compiler), once per process.

const bundles = new Map<string, string>();

/** `entry` (a .ts file) and what it imports, as the text of one ESM module for this Node. */
export function bundledSource(entry: string): string {
  let text = bundles.get(entry);
  if (text === undefined) {
    // Loaded only here: a daemon running its build never needs esbuild.
    const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    text = buildSync({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', target: 'node24', write: false, logLevel: 'silent' }).outputFiles[0].text;
    bundles.set(entry, text);
  }
  return text;
}
