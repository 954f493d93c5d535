import { readdirSync, readFileSync } from 'node:fs';

/**
 * The variable a run step's command gets with its work dir (src/steps/run.ts).
 * Set after the step's own env, so a recipe cannot change it: it is how a
 * hopper started after a crash finds the commands the dead one left running.
 */
export const WORK_VAR = 'HOPPER_WORK';

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

/** Live processes (of this user: others' environments are unreadable) started for `workDir`. */
export function processesOf(workDir: string): Proc[] {
  const needle = `${WORK_VAR}=${workDir}`;
  let names: string[];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return []; // no /proc: not Linux
  }
  const found: Proc[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(needle)) continue;
      const proc = statOf(pid);
      if (proc) found.push(proc);
    } catch {
      /* gone meanwhile, or not ours */
    }
  }
  return found;
}

/**
 * Kills what a run step of a hopper that died left running for `workDir`:
 * each such process and its process group, never hopper's own group. Under
 * systemd (KillMode=mixed) there is none; after a `kill -9` by hand there
 * may be, and it must not write into the work dir of the job's next run.
 * Returns how many processes were found.
 */
export function stopLeftovers(workDir: string): number {
  const procs = processesOf(workDir);
  let own: number | undefined;
  try {
    own = statOf('self')?.pgid;
  } catch {
    own = undefined;
  }
  for (const { pid, pgid } of procs) {
    const targets = own !== undefined && pgid > 1 && pgid !== own ? [-pgid, pid] : [pid];
    for (const target of targets) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  return procs.length;
}
