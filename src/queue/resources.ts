import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { usesDocker, type Recipe } from '../recipes/recipe.js';
import { formatBytes } from '../units.js';

/** What a job reserves while it runs. */
export interface Need {
  cpus: number;
  memory: number;
  disk: number;
}

export const NOTHING: Need = { cpus: 0, memory: 0, disk: 0 };

export function needOf(recipe: Pick<Recipe, 'resources'>): Need {
  return { cpus: recipe.resources.cpus ?? 0, memory: recipe.resources.memory ?? 0, disk: recipe.resources.disk ?? 0 };
}

/**
 * What a job reserves of this host: on Swarm a container job's cpus and memory
 * are the node's, not this host's; its work dir (disk) stays here.
 */
export function localNeed(recipe: Recipe, onSwarm: boolean): Need {
  const need = needOf(recipe);
  return onSwarm && usesDocker(recipe) ? { cpus: 0, memory: 0, disk: need.disk } : need;
}

export function add(a: Need, b: Need): Need {
  return { cpus: a.cpus + b.cpus, memory: a.memory + b.memory, disk: a.disk + b.disk };
}

/** Why `need` can never fit in the host budget (config `resources`), or null. */
export function overBudget(budget: Config['resources'], need: Need): string | null {
  if (need.cpus > budget.cpus) return `needs ${need.cpus} cpus; this host's budget is ${budget.cpus} (config resources.cpus)`;
  if (need.memory > budget.memory) return `needs ${formatBytes(need.memory)} memory; this host's budget is ${formatBytes(budget.memory)} (config resources.memory)`;
  if (need.disk > budget.disk) return `needs ${formatBytes(need.disk)} disk; this host's budget is ${formatBytes(budget.disk)} (config resources.disk)`;
  return null;
}

/**
 * Why `need` does not fit now, or null when it does: within the host budget
 * beside what running jobs hold and what long-waiting bigger jobs have been
 * promised, and within the real free disk. A job that needs none of a
 * resource is never held back by it.
 */
export function resourceBlocker(budget: Config['resources'], inUse: Need, promised: Need, need: Need, freeDisk: () => number): string | null {
  const total = add(inUse, promised);
  if (need.cpus > 0 && total.cpus + need.cpus > budget.cpus + 1e-9) {
    return `waiting for ${need.cpus} cpus (${Math.max(budget.cpus - total.cpus, 0)} free of ${budget.cpus})`;
  }
  if (need.memory > 0 && total.memory + need.memory > budget.memory) {
    return `waiting for ${formatBytes(need.memory)} memory (${formatBytes(Math.max(budget.memory - total.memory, 0))} free of ${formatBytes(budget.memory)})`;
  }
  if (need.disk > 0) {
    if (total.disk + need.disk > budget.disk) return `waiting for ${formatBytes(need.disk)} disk (budget ${formatBytes(budget.disk)})`;
    const free = freeDisk() - total.disk;
    if (need.disk > free) return `waiting for ${formatBytes(need.disk)} free disk (${formatBytes(Math.max(free, 0))} free for new jobs)`;
  }
  return null;
}

/** Bytes under `dir` (files and folders, links not followed). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await lstat(p).catch(() => null))?.size ?? 0;
    }
  };
  await walk(dir);
  return total;
}

/** Calls `onOver` once when `dir` grows past `limit` bytes; returns a stop function. */
export function watchDisk(dir: string, limit: number, everyMs: number, onOver: (bytes: number) => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    if (stopped) return;
    const bytes = await dirBytes(dir);
    if (stopped) return;
    if (bytes > limit) {
      onOver(bytes);
      return;
    }
    timer = setTimeout(() => void tick(), everyMs);
    timer.unref();
  };
  timer = setTimeout(() => void tick(), everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
