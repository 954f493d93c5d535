import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `target` whole or not at all: under a hidden temporary name in the
 * same folder, then renamed. A watcher of that folder ignores the temporary
 * name (a leading dot) and sees only the finished file. The temporary name is
 * random and created exclusively: in a folder others can write to (the inbox),
 * a symlink planted under a guessable name would otherwise be written through.
 * `target` may be a name in a held folder (fs/owndir.ts).
 */
export async function writeFileAtomic(target: string, text: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
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

