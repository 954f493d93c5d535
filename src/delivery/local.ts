import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { moveFile } from '../fs/move.js';
import type { Output } from '../store/outputs.js';
import type { Produced } from './collect.js';

/** Files up to this size are read whole to be hashed, at once (as the steps' path work, see steps/workdir.ts): not a stream's open, reads and close. */
const WHOLE_BELOW = 1024 * 1024;

export async function sha256Of(file: string, bytes = Infinity): Promise<string> {
  const hash = createHash('sha256');
  if (bytes < WHOLE_BELOW) hash.update(readFileSync(file));
  else await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}


/** Moves a job's outputs to outputs/JOB/ and records their size and checksum. */
export async function deliverLocal(outputsDir: string, jobId: string, produced: readonly Produced[]): Promise<Output[]> {
  const dir = path.join(outputsDir, jobId);
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') mkdirSync(dir, { recursive: true }); // outputs/ itself was removed
    else if (code !== 'EEXIST') throw err;
    else {
      // Left by an earlier run that failed after delivering: this run's outputs replace it.
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
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
