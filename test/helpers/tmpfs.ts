import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/**
 * Mounts a tmpfs of its own at `dir` (`options` as for mount -o, e.g.
 * `size=3m`), so a test can fill a disk for real. Needs root: elsewhere it
 * says why not, for the test to skip with.
 */
export function mountTmpfs(dir: string, options: string): { unmount(): void } | { why: string } {
  mkdirSync(dir, { recursive: true });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) return { why: `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()}): needs root` };
  return { unmount: () => void spawnSync('umount', [dir]) };
}
