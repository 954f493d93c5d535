import { chmodSync, lstatSync, type Stats } from 'node:fs';
import { chmod, rename } from 'node:fs/promises';
import path from 'node:path';
import { HopperError, type Problem } from '../errors.js';
import { moveFile } from '../fs/move.js';
import { writeFileAtomic } from '../fs/write.js';
import { holdOwnFolder, inOwnFolder, PRIVATE_FOLDER, UnsafeFolderError, type HeldFolder } from '../fs/owndir.js';
import type { Logger } from '../log.js';

/** Names a writer uses while a file is incomplete; they are picked up only once renamed. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.part') || name.endsWith('~');
}

/**
 * Which file was read under a name: another one renamed over it, or the same
 * one written again, differs. Intake reads a file, stores what it said, and
 * only then moves it away; a writer may drop a new file of the same name in
 * between (the wait for the disk, a checkpoint's hold), and that one must not
 * be moved away as if it had been read.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export function identityOf(st: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/** The file under that name is no longer the one read: it stays for the next look, which takes it as a new file. */
export class ReplacedError extends HopperError {
  constructor(file: string) {
    super('E_REPLACED', `${path.basename(file)} was replaced after it was read; the new file is taken as a new one`);
  }
}

/**
 * Throws ReplacedError when `file` is not the file `read` describes (nothing
 * there counts as the same: the move says so). A replacement in the
 * microseconds between this look and the move is not caught; the milliseconds
 * to seconds before it are.
 */
function assertSameFile(file: string, read: FileIdentity | undefined): void {
  if (!read) return;
  const now = lstatSync(file, { throwIfNoEntry: false });
  if (now && (now.dev !== read.dev || now.ino !== read.ino || now.size !== read.size || now.mtimeMs !== read.mtimeMs)) throw new ReplacedError(file);
}

/** inbox/rejected/: readable by the inbox's group, so writers can read why (the files in it are not). */
export const REJECTED_FOLDER = 0o750;

// Look-ups and moves here are synchronous: microseconds each, where a round
// trip through libuv's thread pool cost several times that (see steps/workdir.ts).

function taken(folder: HeldFolder, name: string): boolean {
  try {
    // Free is the usual answer: no Error (and its stack) made for it.
    return lstatSync(folder.at(name), { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/**
 * A name in the folder not taken yet: `NAME`, else `NAME` with a counter
 * before its extension. In rejected/, `NAME.error.txt` must be free as well.
 */
function freeName(folder: HeldFolder, name: string, withError: boolean): string {
  const free = (n: string): boolean => !taken(folder, n) && !(withError && taken(folder, `${n}.error.txt`));
  if (free(name)) return name;
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 2; i < 10_000; i++) {
    const candidate = `${stem}-${i}${ext}`;
    if (free(candidate)) return candidate;
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
 * inbox/rejected/, held open. Whoever can write to the inbox can put anything
 * in its place (a symlink to recipes/, say): that is moved aside, logged, and
 * a real folder made instead.
 */
async function holdRejected(rejectedDir: string, log: Logger): Promise<HeldFolder> {
  try {
    return await holdOwnFolder(rejectedDir, REJECTED_FOLDER);
  } catch (err) {
    if (!(err instanceof UnsafeFolderError)) throw err;
    const aside = path.join(path.dirname(rejectedDir), `.${path.basename(rejectedDir)}.unsafe-${Date.now()}`);
    await rename(rejectedDir, aside);
    log.warn({ folder: rejectedDir, movedTo: aside, why: err.message }, 'the rejected folder was not hopper\'s own; moved it aside and made a new one');
    return holdOwnFolder(rejectedDir, REJECTED_FOLDER);
  }
}

/** The text of NAME.error.txt: every problem with its place. */
function rejectionText(fileName: string, problems: readonly Problem[], now: Date): string {
  return [
    `hopper could not accept ${fileName} (${now.toISOString()}):`,
    '',
    ...problemLines(fileName, problems),
    '',
    'Fix the file and drop it into the inbox again.',
    '',
  ].join('\n');
}

/**
 * Moves a bad file to inbox/rejected/ with NAME.error.txt beside it. The
 * explanation is in place (whole) first: a crash in between leaves the file in
 * the inbox, to be rejected again, never a rejected file without its reason.
 */
export async function reject(file: string, rejectedDir: string, problems: readonly Problem[], now: Date, log: Logger, read?: FileIdentity): Promise<string> {
  const folder = await holdRejected(rejectedDir, log);
  try {
    assertSameFile(file, read);
    const name = freeName(folder, path.basename(file), true);
    await writeFileAtomic(folder.at(`${name}.error.txt`), rejectionText(path.basename(file), problems, now), 0o640);
    await rename(file, folder.at(name));
    // It may hold secrets (writeOnly params); a writer who is not its owner keeps their own copy.
    await chmod(folder.at(name), 0o600).catch(() => {});
    return path.join(rejectedDir, name);
  } finally {
    await folder.close();
  }
}

/**
 * Moves accepted files out of the inbox into state/archive/, each under a
 * unique name (prefixed, e.g. with its job id), readable by hopper alone.
 * The archive folder is checked and held once for the whole batch. Returns,
 * per file, the error that kept it in the inbox (undefined: moved).
 */
export async function archiveAll(moves: ReadonlyArray<{ file: string; prefix: string; read?: FileIdentity }>, archiveDir: string): Promise<Array<Error | undefined>> {
  return inOwnFolder(archiveDir, PRIVATE_FOLDER, async (folder) => {
    const outcomes: Array<Error | undefined> = [];
    for (const { file, prefix, read } of moves) {
      try {
        assertSameFile(file, read);
        const name = freeName(folder, `${prefix}-${path.basename(file)}`, false);
        const to = folder.at(name);
        await moveFile(file, to);
        try {
          chmodSync(to, 0o600);
        } catch {
          /* a file it cannot chmod is still archived */
        }
        outcomes.push(undefined);
      } catch (err) {
        outcomes.push(err as Error);
      }
    }
    return outcomes;
  });
}
