// Where the bench's folders live (every contender's: hopper, the bare loop, Celery).
//
// This machine's root file system is ext4 without a journal. There, ext4 will not
// reuse an inode freed in the last 12 hours (dirtime_expire_interval) while it can
// find another, and finding out costs a look at each such inode: after the tests had
// deleted a few hundred thousand files under /tmp, creating a file there took
// ~260 µs instead of ~10 (measured with createCostUs), and a bench row depended on
// what had run in the 12 hours before it (1,000 trivial jobs: 115-227 jobs/s for
// the same build). So, when it can (root, mkfs.ext4 and a loop device), the bench
// runs on a fresh ext4 made as mkfs.ext4 makes it by default, with its journal, as
// a server's disk is; HOPPER_BENCH_DIR names a folder to use instead.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface BenchFolder {
  dir: string;
  /** Says in words what the folder is on. */
  what: string;
  close(): void;
}

/** Microseconds to create an empty file in `dir` (mean of `n`, in a folder of their own, removed after). */
export function createCostUs(dir: string, n = 500): number {
  const probe = mkdtempSync(path.join(dir, 'create-cost-'));
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) closeSync(openSync(path.join(probe, `f${i}`), 'wx'));
    return ((performance.now() - t0) * 1000) / n;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** A fresh ext4 (journal on: mkfs.ext4's defaults) of `gib` GiB on a loop device, or undefined when this cannot be done here. */
function freshExt4(gib: number): BenchFolder | undefined {
  if (process.getuid?.() !== 0 || !existsSync('/usr/sbin/mkfs.ext4') || !existsSync('/usr/sbin/losetup')) return undefined;
  const base = mkdtempSync(path.join('/var/tmp', 'hopper-bench-'));
  const image = path.join(base, 'fs.img');
  const dir = path.join(base, 'mnt');
  mkdirSync(dir);
  const ok =
    run('truncate', ['-s', `${gib}G`, image]) && run('/usr/sbin/mkfs.ext4', ['-q', '-F', image]) && run('mount', ['-o', 'loop', image, dir]);
  const close = (): void => {
    run('umount', [dir]);
    rmSync(base, { recursive: true, force: true });
  };
  if (!ok) {
    close();
    return undefined;
  }
  process.once('exit', close);
  return { dir, what: `a fresh ext4 (with journal) of ${gib} GiB on a loop device`, close };
}

/**
 * The folder for this bench run, also made the process's temporary folder
 * (TMPDIR), so every temp root below it lands there.
 */
export function benchFolder(): BenchFolder {
  const chosen: BenchFolder = process.env.HOPPER_BENCH_DIR
    ? { dir: process.env.HOPPER_BENCH_DIR, what: 'HOPPER_BENCH_DIR', close: () => {} }
    : (freshExt4(8) ?? { dir: os.tmpdir(), what: 'the temporary folder (no fresh file system could be made: not root, or no mkfs.ext4)', close: () => {} });
  process.env.TMPDIR = chosen.dir;
  return chosen;
}
