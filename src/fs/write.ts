import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `target` whole or not at all: under a hidden temporary name in the
 * same folder, then renamed. A watcher of that folder ignores the temporary
 * name (a leading dot) and sees only the finished file.
 */
export async function writeFileAtomic(target: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, target);
}
