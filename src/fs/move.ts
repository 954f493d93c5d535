import { copyFile, rename, rm } from 'node:fs/promises';

/**
 * Renames a file, or copies and then removes it when the two places are on
 * different file systems (an inbox on a share, outputs on their own disk).
 * The copy lands under a temporary name first, so `to` is never half written.
 */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, `${to}.part`);
    await rename(`${to}.part`, to);
    await rm(from, { force: true });
  }
}
