import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { moveFile } from '../fs/move.js';
import type { Output } from '../store/outputs.js';
import type { Produced } from './collect.js';

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}


/** Moves a job's outputs to outputs/JOB/ and records their size and checksum. */
export async function deliverLocal(outputsDir: string, jobId: string, produced: readonly Produced[]): Promise<Output[]> {
  const dir = path.join(outputsDir, jobId);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const delivered: Output[] = [];
  for (const p of produced) {
    const target = path.join(dir, p.name);
    await moveFile(p.file, target);
    delivered.push({ name: p.name, bytes: p.bytes, sha256: await sha256Of(target), location: 'local', ref: `${jobId}/${p.name}` });
  }
  return delivered;
}
