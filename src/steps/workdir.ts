import { createWriteStream, lstatSync, realpathSync, type Stats, type WriteStream } from 'node:fs';
import { mkdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { HopperError } from '../errors.js';

/**
 * Every path a step touches is relative to the job's work dir and stays in it:
 * no absolute paths, no `..`, no symlink that leads out.
 */
export function pathProblem(rel: string): string | null {
  if (rel.length === 0) return 'is empty';
  if (rel.includes('\u0000')) return 'contains a NUL byte';
  if (rel.length > 1024) return 'is longer than 1024 characters';
  if (path.isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel) || rel.startsWith('\\')) {
    return `must be relative to the job's work dir, not absolute ("${rel}")`;
  }
  if (rel.split(/[\\/]/).includes('..')) return `must not contain ".." (it would leave the job's work dir: "${rel}")`;
  return null;
}

// The checks below only look up names (realpath, lstat), answered from the
// kernel's caches in a few microseconds: made synchronously, they cost a sixth
// of the same calls sent through libuv's thread pool, which at hundreds of
// jobs a second was a tenth of a step thread's time. What creates an entry
// (mkdir, open, rename) stays async: on ext4 it may wait for the journal's
// commit while SQLite syncs, ~0.5 ms, and must not hold the thread meanwhile.

function realOrNull(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The real path of the deepest part of `p` that exists (a symlink anywhere above resolves outside). */
function deepestReal(root: string, p: string): string | null {
  let probe = p;
  let real = realOrNull(probe);
  while (real === null && probe !== root && probe !== path.dirname(probe)) {
    probe = path.dirname(probe);
    real = realOrNull(probe);
  }
  return real;
}

function leadsOut(rel: string): HopperError {
  return new HopperError('E_PATH', `path "${rel}" leads out of the job's work dir (through a symlink)`);
}

/**
 * The absolute path for `rel` inside `workDir` (a real path: runSteps takes
 * it once per attempt, so a work dir swapped for a link later is not followed),
 * after checking that no existing part of it is a symlink leading out. With
 * `forWrite`, parent folders are created (only after that check) and a symlink
 * at the target itself is refused.
 */
export async function resolveInside(workDir: string, rel: string, forWrite = false): Promise<string> {
  const problem = pathProblem(rel);
  if (problem) throw new HopperError('E_PATH', `path ${problem}`);
  const root = workDir;
  const target = path.resolve(root, rel);
  const parent = path.dirname(target);
  // A file right in the work dir (the usual case) has no folder above it to check or make.
  const nested = parent !== root;
  if (!forWrite || nested) {
    const before = deepestReal(root, forWrite ? parent : target);
    if (before === null || !inside(root, before)) throw leadsOut(rel);
  }
  const link = lstatOrNull(target);
  if (link?.isSymbolicLink()) {
    if (forWrite) throw new HopperError('E_PATH', `path "${rel}" is a symlink; hopper does not write through links`);
    // A dangling link is judged by where it points, not taken for a missing file.
    const real = realOrNull(target);
    if (real === null || !inside(root, real)) throw leadsOut(rel);
  }
  if (forWrite && nested) {
    await mkdir(parent, { recursive: true });
    const after = realOrNull(parent);
    if (after === null || !inside(root, after)) throw leadsOut(rel);
  }
  return target;
}

/**
 * A write stream on a new file at `file` (a temp `.part` beside a checked
 * destination): whatever stands there, a planted symlink included, is removed
 * first, and the file is created exclusively, so no link is ever followed.
 */
export async function createFresh(file: string): Promise<WriteStream> {
  try {
    await unlink(file); // usually nothing is there: one call to find out
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'EPERM') await rm(file, { force: true, recursive: true });
    else if (code !== 'ENOENT') throw err;
  }
  return createWriteStream(file, { flags: 'wx' });
}
