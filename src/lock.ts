import Database from 'better-sqlite3';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HopperError } from './errors.js';

// One daemon per root: two would race for the same inbox files. The lock is the
// kernel's: an exclusive SQLite (fcntl) lock on state/daemon.lock, held by an open
// connection. It ends with the process however that ends (kill -9, power loss),
// so there is no stale lock to take over and no race between two starts taking
// one over; and no recorded pid that a reboot may have given to another program.
// hopper.pid beside it only tells people which process holds the lock.

const pidFileOf = (lockFile: string): string => path.join(path.dirname(lockFile), 'hopper.pid');

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function notADatabase(err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_NOTADB';
}

function recordedPid(lockFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFileOf(lockFile), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid of the process that just beat us to the lock: it writes hopper.pid
 * right after taking it, so wait for that a moment (two starts at once fail
 * the loser at once, before the winner has written it; a file left by a dead
 * daemon names no live process).
 */
function holderPid(lockFile: string): number | undefined {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 40; i++) {
    const pid = recordedPid(lockFile);
    if (pid !== undefined && alive(pid)) return pid;
    Atomics.wait(pause, 0, 0, 50);
  }
  return undefined;
}

/**
 * One try at the lock. SQLite's own wait (the busy timeout) is not enough:
 * two connections that reach for the lock of a new file at the same moment
 * can each be refused at once (SQLite's way out of a deadlock), and two
 * `hopper start` at once then both stopped, about 1 in 10 here.
 */
function tryLock(file: string, waitMs: number): Database.Database | 'busy' {
  const db = new Database(file, { timeout: waitMs });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    return db;
  } catch (err) {
    db.close();
    if (notADatabase(err)) throw new HopperError('E_LOCKED', `${file} is not a lock hopper made; if no hopper runs on this root, remove it`);
    if (!isBusy(err)) throw err;
    return 'busy';
  }
}

/** Takes the root's lock for this process, or fails with E_LOCKED naming the holder. Returns the release. */
export function acquireLock(file: string, waitMs = 2000): () => void {
  const deadline = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let db = tryLock(file, 100);
  // Tried again after a random pause until the time is up: of two that both lost, one wins.
  while (db === 'busy' && Date.now() < deadline) {
    Atomics.wait(pause, 0, 0, 10 + Math.floor(Math.random() * 60));
    db = tryLock(file, 100);
  }
  if (db === 'busy') {
    const pid = holderPid(file);
    throw new HopperError('E_LOCKED', `another hopper${pid ? ` (pid ${pid})` : ''} is running on this root; stop it first (lock: ${file})`);
  }
  const held = db;
  writeFileSync(pidFileOf(file), `${process.pid}\n`);
  return () => {
    rmSync(pidFileOf(file), { force: true });
    held.close();
  };
}

/** Whether a daemon holds the root's lock, and its pid when recorded; undefined when none does. */
export function lockHolder(file: string): { pid: number | undefined } | undefined {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
  } catch {
    return undefined; // never started here
  }
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return undefined;
  } catch (err) {
    if (!isBusy(err) && !notADatabase(err)) throw err;
    if (notADatabase(err)) return undefined;
    return { pid: recordedPid(file) };
  } finally {
    db.close();
  }
}
