import { readdirSync, readFileSync, realpathSync } from 'node:fs';

/**
 * The variable a run step's command gets with its work dir (src/steps/run.ts).
 * Set after the step's own env, so a recipe cannot change it: it is how a
 * hopper started after a crash finds the commands the dead one left running.
 */
export const WORK_VAR = 'HOPPER_WORK';

/** The work dir as HOPPER_WORK names it: its real path, so a root reached by another spelling after a restart still matches. */
export function workMark(workDir: string): string {
  try {
    return realpathSync(workDir);
  } catch {
    return workDir;
  }
}

interface Proc {
  pid: number;
  pgid: number;
}

/** pid and process group from /proc/PID/stat (the name in parentheses may hold spaces). */
function statOf(pid: number | 'self'): Proc | undefined {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgid = Number(rest[2]);
  return Number.isInteger(pgid) ? { pid: Number(stat.slice(0, stat.indexOf(' '))), pgid } : undefined;
}

/** Live processes (of this user: others' environments are unreadable) started for each of `workDirs`. */
export function processesOf(workDirs: readonly string[]): Map<string, Proc[]> {
  const found = new Map<string, Proc[]>();
  if (workDirs.length === 0) return found;
  const wanted = new Map(workDirs.map((dir) => [`${WORK_VAR}=${workMark(dir)}`, dir]));
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return found; // no /proc: not Linux
  }
  for (const name of names) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const dir = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').map((v) => wanted.get(v)).find((d) => d !== undefined);
      if (dir === undefined) continue;
      const proc = statOf(pid);
      if (proc) found.set(dir, [...(found.get(dir) ?? []), proc]);
    } catch {
      /* gone meanwhile, or not ours */
    }
  }
  return found;
}

/**
 * Kills what run steps of a hopper that died left running for `workDirs`:
 * each such process and its process group, never hopper's own group. Under
 * systemd (KillMode=mixed) there is none; after a `kill -9` by hand there
 * may be, and it must not write into the work dir of the job's next run.
 * Returns how many processes were found for each work dir that had any.
 */
export function stopLeftovers(workDirs: readonly string[]): Map<string, number> {
  const found = processesOf(workDirs);
  let own: number | undefined;
  try {
    own = statOf('self')?.pgid;
  } catch {
    own = undefined;
  }
  for (const { pid, pgid } of [...found.values()].flat()) {
    const targets = own !== undefined && pgid > 1 && pgid !== own ? [-pgid, pid] : [pid];
    for (const target of targets) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  return new Map([...found].map(([dir, procs]) => [dir, procs.length]));
}
