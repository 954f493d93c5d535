import { closeSync, constants, fchmodSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomHex } from '../random.js';

const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomHex(12)}.tmp`);
}

/**
 * Writes `target` whole or not at all: under a hidden temporary name in the
 * same folder, then renamed. A watcher of that folder ignores the temporary
 * name (a leading dot) and sees only the finished file. The temporary name is
 * random and created exclusively: in a folder others can write to (the inbox),
 * a symlink planted under a guessable name would otherwise be written through.
 * `target` may be a name in a held folder (fs/owndir.ts).
 */
export async function writeFileAtomic(target: string, text: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempNameFor(target);
  const handle = await open(tmp, EXCLUSIVE, mode);
  try {
    await handle.writeFile(text);
    await handle.chmod(mode); // whatever the umask
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, target);
}

/**
 * writeFileAtomic, done synchronously: for a small file on a step thread, four
 * calls of a few microseconds each, where each call sent through libuv's
 * thread pool costs a hand-over between threads of tens (see steps/workdir.ts).
 */
export function writeFileAtomicSync(target: string, text: string | Uint8Array, mode = 0o644): void {
  const tmp = tempNameFor(target);
  const fd = openSync(tmp, EXCLUSIVE, mode);
  try {
    writeFileSync(fd, text);
    fchmodSync(fd, mode); // whatever the umask
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, target);
}

/** Writes all of `data` to `fd`, however many calls it takes. */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done);
}
