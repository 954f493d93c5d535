import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { HopperError } from '../errors.js';
import { moveFile } from '../fs/move.js';
import { lstatOrNull } from '../steps/workdir.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import { pump } from '../fs/pump.js';

/** Files up to this size are read whole to be hashed, at once (as the steps' path work, see steps/workdir.ts): not a stream's open, reads and close. */
const WHOLE_BELOW = 1024 * 1024;

export async function sha256Of(file: string, bytes = Infinity): Promise<string> {
  const hash = createHash('sha256');
  if (bytes < WHOLE_BELOW) hash.update(readFileSync(file));
  else await pump([createReadStream(file), hash]);
  return hash.digest('hex');
}

/** Where an output goes in outputs/, its folder (outputs/JOB/, and outputs/ itself if it was removed) made. */
function placeFor(outputsDir: string, ref: string): string {
  const target = path.join(outputsDir, ref);
  mkdirSync(path.dirname(target), { recursive: true });
  return target;
}

const output = (p: ProducedOutput): Output => ({ name: p.name, bytes: p.bytes, sha256: p.sha256, location: 'local', ref: p.ref });

/**
 * Delivers outputs to outputs/JOB/ by rename only, where that is all it
 * takes (the work dir and outputs/ on one file system): microseconds, done at
 * the end of the steps. Returns undefined when a file would have to be copied
 * (a slow copy, or a full disk, is the delivery stage's: queue/delivering.ts).
 */
export function deliverLocalByRename(outputsDir: string, workDir: string, produced: readonly ProducedOutput[]): Output[] | undefined {
  const delivered: Output[] = [];
  for (const p of produced) {
    try {
      renameSync(path.join(workDir, p.file), placeFor(outputsDir, p.ref));
    } catch (err) {
      // A copy, or a folder that a full disk would not let be made: the delivery stage's, which waits for space.
      if (['EXDEV', 'ENOSPC', 'EDQUOT'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
    delivered.push(output(p));
  }
  return delivered;
}

/**
 * Delivers outputs to outputs/JOB/, moving them from the work dir. A try that
 * comes again (after a full disk, or a restart) finds some already there: an
 * output gone from the work dir counts when outputs/ holds it with its size
 * and checksum. A full disk is E_OUTPUTS_DISK: the delivery stage waits for space.
 */
export async function deliverLocal(outputsDir: string, workDir: string, produced: readonly ProducedOutput[]): Promise<Output[]> {
  const delivered: Output[] = [];
  for (const p of produced) {
    const target = path.join(outputsDir, p.ref);
    const from = path.join(workDir, p.file);
    if (lstatOrNull(from)?.isFile()) {
      try {
        await moveFile(from, placeFor(outputsDir, p.ref));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') throw new HopperError('E_OUTPUTS_DISK', `the disk of ${outputsDir} is full (${code}): ${p.name} needs ${p.bytes} bytes`);
        throw new HopperError('E_DELIVERY', `could not move ${p.name} to ${outputsDir}: ${(err as Error).message}`);
      }
    } else {
      const there = lstatOrNull(target);
      if (!there?.isFile() || there.size !== p.bytes || (await sha256Of(target, p.bytes)) !== p.sha256) {
        throw new HopperError('E_OUTPUT_LOST', `${p.name} is gone from the job's work dir and is not in ${outputsDir}`);
      }
    }
    delivered.push(output(p));
  }
  return delivered;
}
