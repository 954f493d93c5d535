import { renameSync } from 'node:fs';
import { copyFile, open, rename, rm } from 'node:fs/promises';

/**
 * Renames a file, or copies and then removes it when the two places are on
 * different file systems (an inbox on a share, outputs on their own disk).
 * The copy lands under a temporary name first, so `to` is never half written.
 * The usual rename is synchronous: microseconds, where a round trip through
 * libuv's thread pool cost several times that (see steps/workdir.ts).
 */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    try {
      await copyFile(from, `${to}.part`);
      // On disk before the original goes: a power cut must not leave neither.
      const copy = await open(`${to}.part`, 'r');
      await copy.sync().finally(() => copy.close());
    } catch (copyErr) {
      // A full disk leaves a part behind: it would hold the space a later try needs.
      await rm(`${to}.part`, { force: true });
      throw copyErr;
    }
    await rename(`${to}.part`, to);
    await rm(from, { force: true });
  }
}
