import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { moveFile } from '../fs/move.js';
import path from 'node:path';
import type { Problem } from '../errors.js';

/** Names a writer uses while a file is incomplete; they are picked up only once renamed. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part') || name.endsWith('~');
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** A name in `dir` not taken yet: `NAME`, else `NAME` with a counter before its extension. */
async function freeName(dir: string, name: string): Promise<string> {
  if (!(await exists(path.join(dir, name))) && !(await exists(path.join(dir, `${name}.error.txt`)))) return name;
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 2; i < 10_000; i++) {
    const candidate = `${stem}-${i}${ext}`;
    if (!(await exists(path.join(dir, candidate))) && !(await exists(path.join(dir, `${candidate}.error.txt`)))) return candidate;
  }
  return `${stem}-${Date.now()}${ext}`;
}

/** `FILE:LINE:COL: message` lines, as `hopper validate` prints them. */
export function problemLines(file: string, problems: readonly Problem[]): string[] {
  return problems.map((p) => {
    const where = p.line !== undefined ? `${file}:${p.line}:${p.col ?? 1}` : file;
    return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
  });
}

/**
 * Moves a bad file to inbox/rejected/ with NAME.error.txt beside it. The
 * explanation is written first: a crash in between leaves the file in the
 * inbox, to be rejected again, never a rejected file without its reason.
 */
export async function reject(file: string, rejectedDir: string, problems: readonly Problem[], now: Date): Promise<string> {
  await mkdir(rejectedDir, { recursive: true });
  const name = await freeName(rejectedDir, path.basename(file));
  const text = [
    `hopper could not accept ${path.basename(file)} (${now.toISOString()}):`,
    '',
    ...problemLines(path.basename(file), problems),
    '',
    'Fix the file and drop it into the inbox again.',
    '',
  ].join('\n');
  await writeFile(path.join(rejectedDir, `${name}.error.txt`), text);
  await rename(file, path.join(rejectedDir, name));
  return path.join(rejectedDir, name);
}

/** Moves an accepted file out of the inbox into state/archive/, under a unique name. */
export async function archive(file: string, archiveDir: string, prefix: string): Promise<string> {
  await mkdir(archiveDir, { recursive: true });
  const target = path.join(archiveDir, await freeName(archiveDir, `${prefix}-${path.basename(file)}`));
  await moveFile(file, target);
  return target;
}

