import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { HopperError } from './errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the daemon holding the lock, if one is alive. */
export function lockHolder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One daemon per root: two would race for the same inbox files. A lock left
 * by a killed daemon names a dead process and is taken over.
 */
export function acquireLock(file: string): () => void {
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new HopperError('E_LOCKED', `another hopper (pid ${pid}) is running on this root; stop it first (lock: ${file})`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new HopperError('E_LOCKED', `could not take the lock ${file}`);
}
