import { ZipArchive } from 'archiver';
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { HopperError } from '../errors.js';
import { pump } from '../fs/pump.js';
import type { Step } from '../recipes/recipe.js';
import { render } from '../template.js';
import { formatBytes } from '../units.js';
import { throwIfJobAborted, type StepRunner } from './step.js';
import { createFresh, resolveInside, writeFresh } from './workdir.js';
import { zipBuffer } from './zipbuffer.js';

type ZipStep = Extract<Step, { kind: 'zip' }>;

interface Entry {
  file: string;
  name: string;
  st: Stats;
}

/**
 * A zip whose inputs are all below READ_WHOLE_BELOW, and READ_WHOLE_TOTAL
 * together, is built in memory (zipbuffer.ts); the rest is streamed.
 */
const READ_WHOLE_BELOW = 1024 * 1024;
const READ_WHOLE_TOTAL = 8 * 1024 * 1024;

/** Regular files under `dir`, named relative to it. Symlinks are skipped: they could point anywhere. */
function filesUnder(dir: string, prefix = ''): Entry[] {
  const out: Entry[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, d.name);
    const name = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(...filesUnder(file, name));
    else if (d.isFile()) out.push({ file, name, st: lstatSync(file) });
  }
  return out;
}

async function entriesFor(from: string, workDir: string): Promise<Entry[]> {
  if (isDynamicPattern(from)) {
    const names = await glob(from, { cwd: workDir, onlyFiles: true, followSymbolicLinks: false, dot: true, expandDirectories: false });
    const entries: Entry[] = [];
    for (const name of names.sort()) {
      const file = await resolveInside(workDir, name);
      const st = lstatSync(file);
      if (st.isFile()) entries.push({ file, name, st });
    }
    return entries;
  }
  const source = await resolveInside(workDir, from);
  let st: Stats | null = null;
  try {
    st = lstatSync(source);
  } catch {
    /* judged below */
  }
  if (!st) throw new HopperError('E_ZIP_SOURCE', `nothing to zip: "${from}" does not exist in the work dir`);
  if (st.isDirectory()) return filesUnder(source);
  if (st.isFile()) return [{ file: source, name: path.basename(source), st }];
  throw new HopperError('E_ZIP_SOURCE', `"${from}" is neither a file nor a folder`);
}

/** Zips a folder or a glob into one file; written in place, as fetch writes (see fetch.ts). */
export const zipStep: StepRunner<ZipStep> = async (step, env) => {
  const from = render(step.from, env.scope, { strict: true });
  const toRel = render(step.to, env.scope, { strict: true });
  const dest = await resolveInside(env.workDir, toRel, true);
  const entries = (await entriesFor(from, env.workDir)).filter((e) => e.file !== dest);
  if (entries.length === 0) throw new HopperError('E_ZIP_EMPTY', `nothing to zip: "${from}" matched no files`);
  const small = entries.every((e) => e.st.size < READ_WHOLE_BELOW) && entries.reduce((n, e) => n + e.st.size, 0) <= READ_WHOLE_TOTAL;
  if (small) throwIfJobAborted(env.signal);
  const bytes = small ? zipSmall(entries, step.level, dest) : await zipStreamed(entries, step.level, dest, toRel, env.signal);
  env.log.note(`zip: ${entries.length} file(s) into ${toRel} (${formatBytes(bytes)})`);
  return { zips: [toRel] };
};

/** Small inputs only: read whole, zipped in memory, written at once. Returns the zip's size. */
function zipSmall(entries: Entry[], level: number, dest: string): number {
  const zip = zipBuffer(entries.map((e) => ({ name: e.name, data: readFileSync(e.file), mtime: e.st.mtime, mode: e.st.mode })), level);
  writeFresh(dest, zip);
  return zip.length;
}

/**
 * Inputs beyond those bounds: streamed through archiver. Small ones among them
 * are still read whole (see FileWriter in workdir.ts), up to READ_WHOLE_TOTAL:
 * archiver holds what it is given until its turn comes. Returns the zip's size.
 */
async function zipStreamed(entries: Entry[], level: number, dest: string, toRel: string, signal: AbortSignal): Promise<number> {
  const zip = new ZipArchive({ zlib: { level }, store: level === 0 });
  let wholeLeft = READ_WHOLE_TOTAL;
  for (const e of entries) {
    // With its stats given, archiver does not look the file up again.
    if (e.st.size < READ_WHOLE_BELOW && e.st.size <= wholeLeft) {
      wholeLeft -= e.st.size;
      zip.append(readFileSync(e.file), { name: e.name, stats: e.st });
    } else zip.file(e.file, { name: e.name, stats: e.st });
  }
  let created = false;
  try {
    const file = createFresh(dest);
    created = true;
    const written = pump([zip, file], signal);
    const finalized = zip.finalize();
    // On abort the pump rejects and finalize() may never settle: wait for whichever ends first badly.
    finalized.catch(() => {});
    await Promise.all([written, finalized]);
  } catch (err) {
    zip.abort();
    if (created) await rm(dest, { force: true });
    throwIfJobAborted(signal);
    throw err instanceof HopperError ? err : new HopperError('E_ZIP', `zip ${toRel} failed: ${(err as Error).message}`);
  }
  return zip.pointer();
}
