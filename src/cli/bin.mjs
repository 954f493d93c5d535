#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4 (here, in npm start and in the systemd unit): a young
// generation of at most 4 MiB per semi-space instead of 16. A daemon streaming rows
// allocates fast, and V8 would grow it to ~48 MiB of RSS for a few percent of speed.
// The `hopper` command. It runs the JavaScript that `npm ci` (prepare) and
// `npm start` build into dist/ when that is newer than every source file: a
// daemon started that way holds about 45 MB less than one compiling its
// TypeScript as it loads. After an edit without a build, or with
// HOPPER_FROM_SOURCE=1, tsx runs the source.
import { existsSync, readdirSync, statSync } from 'node:fs';

// The Node that package.json's engines asks for (npm ci refuses older ones). A unit or a
// shell that finds an older node (Debian 12's own is 18) is told so here, in words,
// rather than by a native module that will not load.
const NODE_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < NODE_MAJOR) {
  process.stderr.write(`hopper needs Node ${NODE_MAJOR} or newer; ${process.execPath} is ${process.version}\n`);
  process.exit(1);
}

const src = new URL('../', import.meta.url);
const built = new URL('../../dist/cli/main.js', import.meta.url);

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.isDirectory() ? `${entry.name}/` : entry.name, dir);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(url));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(url).mtimeMs);
  }
  return newest;
}

if (process.env.HOPPER_FROM_SOURCE !== '1' && existsSync(built) && statSync(built).mtimeMs >= newestSource(src)) {
  await import(built.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
