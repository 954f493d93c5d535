import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { moveFile } from '../fs/move.js';
import type { Output } from '../store/outputs.js';
import type { Produced } from './collect.js';

/** Files up to this size are read whole to be hashed: one read instead of a stream's open, reads and close. */
const WHOLE_BELOW = 1024 * 1024;

export async function sha256Of(file: string, bytes = Infinity): Promise<string> {
  const hash = createHash('sha256');
  if (bytes < WHOLE_BELOW) hash.update(await readFile(file));
  else await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}


/** Moves a job's outputs to outputs/JOB/ and records their size and checksum. */
export async function deliverLocal(outputsDir: string, jobId: string, produced: readonly Produced[]): Promise<Output[]> {
  const dir = path.join(outputsDir, jobId);
  try {
    await mkdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') await mkdir(dir, { recursive: true }); // outputs/ itself was removed
    else if (code !== 'EEXIST') throw err;
    else {
      // Left by an earlier run that failed after delivering: this run's outputs replace it.
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
    }
  }
  const delivered: Output[] = [];
  for (const p of produced) {
    const target = path.join(dir, p.name);
    await moveFile(p.file, target);
    delivered.push({ name: p.name, bytes: p.bytes, sha256: await sha256Of(target, p.bytes), location: 'local', ref: `${jobId}/${p.name}` });
  }
  return delivered;
}
