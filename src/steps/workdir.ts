import { lstat, mkdir, realpath } from 'node:fs/promises';
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

async function realOrNull(p: string): Promise<string | null> {
  try {
    return await realpath(p);
  } catch {
    return null;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The absolute path for `rel` inside `workDir`, after checking that no existing
 * part of it is a symlink leading out. With `forWrite`, parent folders are
 * created and an existing symlink at the target itself is refused.
 */
export async function resolveInside(workDir: string, rel: string, forWrite = false): Promise<string> {
  const problem = pathProblem(rel);
  if (problem) throw new HopperError('E_PATH', `path ${problem}`);
  const root = await realpath(workDir);
  const target = path.resolve(root, rel);
  if (forWrite) await mkdir(path.dirname(target), { recursive: true });
  // The deepest existing ancestor decides: a symlink anywhere above resolves outside.
  let probe = forWrite ? path.dirname(target) : target;
  let real = await realOrNull(probe);
  while (real === null && probe !== root) {
    probe = path.dirname(probe);
    real = await realOrNull(probe);
  }
  if (real === null || !inside(root, real)) {
    throw new HopperError('E_PATH', `path "${rel}" leads out of the job's work dir (through a symlink)`);
  }
  if (forWrite) {
    const st = await lstat(target).catch(() => null);
    if (st?.isSymbolicLink()) throw new HopperError('E_PATH', `path "${rel}" is a symlink; hopper does not write through links`);
  }
  return target;
}
