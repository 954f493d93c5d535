import { constants, existsSync, lstatSync, mkdirSync, chmodSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { HopperError } from '../errors.js';

// Folders hopper writes into may sit where others can write too (inbox/ is
// shared with the people who drop files). Anyone who can rename entries there
// can swap inbox/rejected for a symlink to recipes/ between a check and a
// rename. Node has no renameat()/openat(), so a checked folder is held open
// and named through /proc/self/fd/N: that name reaches the very folder that
// was checked, whatever its path has become since.

const PROC_FD = '/proc/self/fd';

/** Folders of hopper's state, outputs and outbox, and the files in them that may hold secrets. */
export const PRIVATE_FOLDER = 0o700;
export const PRIVATE_FILE = 0o600;
const HAS_PROC_FD = existsSync(PROC_FD);

export class UnsafeFolderError extends HopperError {
  constructor(readonly dir: string, why: string) {
    super('E_UNSAFE_FOLDER', `${dir} ${why}; hopper writes only into real folders of its own user`);
  }
}

/** Why `st` is not a folder hopper may write into, or undefined when it is one. */
export function folderProblem(st: Stats): string | undefined {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a folder';
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `belongs to user ${st.uid}, not to hopper's user (${uid})`;
  return undefined;
}

/** A file name that stays in its folder (no separators, not `.` or `..`). */
function plainName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new HopperError('E_PATH', `"${name}" is not a plain file name`);
  }
  return name;
}

/** A checked folder, held open while names in it are used. */
export interface HeldFolder {
  readonly dir: string;
  /** A path for `name` inside the held folder, immune to its path being swapped. */
  at(name: string): string;
  close(): Promise<void>;
}

/**
 * Checks that `dir` is a real folder owned by hopper's user (making it with
 * `mode` if missing, whatever the umask) and holds it open. Throws
 * UnsafeFolderError for a symlink, a non-folder, or another user's folder.
 */
export async function holdOwnFolder(dir: string, mode: number): Promise<HeldFolder> {
  let made = false;
  if ((await lstat(dir).catch(() => null)) === null) {
    await mkdir(path.dirname(dir), { recursive: true });
    made = await mkdir(dir, { mode }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
        return false;
      },
    );
  }
  let handle: FileHandle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err;
    const st = await lstat(dir).catch(() => null);
    throw new UnsafeFolderError(dir, (st && folderProblem(st)) ?? 'is not a folder');
  }
  try {
    const problem = folderProblem(await handle.stat());
    if (problem) throw new UnsafeFolderError(dir, problem);
    if (made) await handle.chmod(mode);
  } catch (err) {
    await handle.close();
    throw err;
  }
  const fd = handle.fd;
  return {
    dir,
    at: (name) => (HAS_PROC_FD ? `${PROC_FD}/${fd}/${plainName(name)}` : path.join(dir, plainName(name))),
    close: () => handle.close(),
  };
}

/** Runs `work` with `dir` held (see holdOwnFolder), and lets go of it after. */
export async function inOwnFolder<T>(dir: string, mode: number, work: (folder: HeldFolder) => Promise<T>): Promise<T> {
  const folder = await holdOwnFolder(dir, mode);
  try {
    return await work(folder);
  } finally {
    await folder.close();
  }
}

/**
 * Makes `dir` with `mode` (whatever the umask) when it is missing; an existing
 * one, a symlink the admin made to another disk included, is left as it is.
 */
export function makeFolder(dir: string, mode: number): void {
  if (lstatSync(dir, { throwIfNoEntry: false })) return;
  mkdirSync(path.dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode });
  } catch (err) {
    // Made meanwhile (two starts at once: the loser then meets the lock): not ours to chmod.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  chmodSync(dir, mode);
}

/**
 * For folders made at start inside hopper's own state (state/jobs, state/archive):
 * made with `mode` when missing, else checked to be a real folder of hopper's user.
 */
export function ensureOwnFolder(dir: string, mode: number): void {
  makeFolder(dir, mode);
  checkOwnFolder(dir);
}

/** Throws UnsafeFolderError unless `dir` is a real folder of hopper's user. */
export function checkOwnFolder(dir: string): void {
  const problem = folderProblem(lstatSync(dir));
  if (problem) throw new UnsafeFolderError(dir, problem);
}
