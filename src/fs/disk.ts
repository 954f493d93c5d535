import { statfsSync } from 'node:fs';

/** Free bytes for an unprivileged writer on the file system holding `dir`. */
export function freeDiskBytes(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}
