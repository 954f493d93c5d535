import path from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { HopperError } from '../errors.js';
import type { Recipe } from '../recipes/recipe.js';
import { formatBytes } from '../units.js';
import { lstatOrNull, resolveInside } from '../steps/workdir.js';

export interface Produced {
  /** The name it is delivered under (its base name). */
  name: string;
  file: string;
  bytes: number;
}

/**
 * The files a job produced, by the recipe's `output.files` globs or else the
 * last zip a step wrote. A job without them has not succeeded, whatever its
 * commands returned.
 */
export async function collectOutputs(workDir: string, output: Recipe['output'], lastZip: string | undefined): Promise<Produced[]> {
  let names: string[];
  let wanted: string;
  if (output.files) {
    wanted = output.files.join(', ');
    // Names without a wildcard are looked up, not searched for: no walk of the work dir.
    const literal = output.files.every((f) => !isDynamicPattern(f));
    names = literal ? [...new Set(output.files.map((f) => path.posix.normalize(f)))] : await glob(output.files, { cwd: workDir, onlyFiles: true, followSymbolicLinks: false, dot: false, expandDirectories: false });
  } else {
    wanted = 'a zip written by a step (no output.files given)';
    names = lastZip ? [lastZip] : [];
  }
  const produced: Produced[] = [];
  const seen = new Map<string, string>();
  for (const rel of names.sort()) {
    const file = await resolveInside(workDir, rel);
    const st = lstatOrNull(file);
    if (!st?.isFile()) continue;
    const name = path.basename(rel);
    const clash = seen.get(name);
    if (clash) throw new HopperError('E_OUTPUT_NAME', `two outputs would be delivered as "${name}": ${clash} and ${rel}`);
    seen.set(name, rel);
    produced.push({ name, file, bytes: st.size });
  }
  if (produced.length === 0) throw new HopperError('E_NO_OUTPUT', `no output matched ${wanted}`);
  const small = produced.find((p) => p.bytes < output.minBytes);
  if (small) {
    throw new HopperError('E_NO_OUTPUT', `output ${small.name} is ${formatBytes(small.bytes)}, less than output.minBytes (${formatBytes(output.minBytes)})`);
  }
  return produced;
}
