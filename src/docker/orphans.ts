import type { Logger } from '../log.js';
import { LABEL_JOB, LABEL_ROOT } from '../steps/container.js';
import { engineJson } from './api.js';
import type { DockerEngine } from './engine.js';
import { stopService } from './swarm.js';

/** Docker's `filters` for what is labelled with this root. */
const byRoot = (root: string): string => encodeURIComponent(JSON.stringify({ label: [`${LABEL_ROOT}=${root}`] }));

/**
 * A container labelled with this root whose job this hopper is not running is
 * left over from a hopper that died: remove it. (At start that is every one.)
 * Their jobs are still `running` in the store and are recovered by the dispatcher.
 */
export async function removeOrphans(engine: DockerEngine, root: string, log: Logger, isRunning: (jobId: string) => boolean = () => false): Promise<string[]> {
  if (!engine.up) return [];
  let found: Array<{ Id: string; Names?: string[]; Labels?: Record<string, string> }>;
  try {
    found = (await engineJson<typeof found>(engine.socketPath, 'GET', `/containers/json?all=1&filters=${byRoot(root)}`)) ?? [];
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not list containers to remove left-overs');
    return [];
  }
  const removed: string[] = [];
  for (const c of found.filter((x) => !isRunning(x.Labels?.[LABEL_JOB] ?? ''))) {
    try {
      await engineJson(engine.socketPath, 'DELETE', `/containers/${encodeURIComponent(c.Id)}?force=1`, { missingOk: true });
      removed.push(c.Id);
      log.warn({ container: c.Names?.[0] ?? c.Id.slice(0, 12), job: c.Labels?.[LABEL_JOB] }, 'removed a container left by a hopper that stopped unexpectedly');
    } catch (err) {
      log.error({ container: c.Id.slice(0, 12), err: (err as Error).message }, 'could not remove a left-over container');
    }
  }
  return removed;
}

interface ServiceDoc {
  ID: string;
  Spec: { Name?: string; Labels?: Record<string, string> };
}

/**
 * The Swarm side of removeOrphans: services of this root whose job this hopper
 * is not running, and then the jobs' networks no service uses (stopService
 * waits for a task to stop, so its network goes after it).
 */
export async function removeOrphanServices(engine: DockerEngine, root: string, log: Logger, isRunning: (jobId: string, attempt: number) => boolean = () => false): Promise<string[]> {
  if (!engine.up || !engine.swarm) return [];
  const removed: string[] = [];
  try {
    const services = (await engineJson<ServiceDoc[]>(engine.socketPath, 'GET', `/services?filters=${byRoot(root)}`)) ?? [];
    // A service of an earlier attempt of a job running again is an orphan too.
    const ours = (labels: Record<string, string> | undefined): boolean => isRunning(labels?.[LABEL_JOB] ?? '', Number(labels?.['hopper.attempt']));
    for (const s of services.filter((x) => !ours(x.Spec.Labels))) {
      await stopService(engine.socketPath, s.ID);
      removed.push(s.ID);
      log.warn({ service: s.Spec.Name ?? s.ID, job: s.Spec.Labels?.[LABEL_JOB] }, 'removed a Swarm service left by a hopper that stopped unexpectedly');
    }
    const inUse = new Set(services.filter((x) => !removed.includes(x.ID)).map((x) => x.Spec.Labels?.[LABEL_JOB]));
    const networks = (await engineJson<Array<{ Id: string; Name: string; Labels?: Record<string, string> }>>(engine.socketPath, 'GET', `/networks?filters=${byRoot(root)}`)) ?? [];
    for (const n of networks.filter((x) => !inUse.has(x.Labels?.[LABEL_JOB]) && !ours(x.Labels))) {
      await engineJson(engine.socketPath, 'DELETE', `/networks/${encodeURIComponent(n.Id)}`, { missingOk: true }).catch((err: unknown) => log.error({ network: n.Name, err: (err as Error).message }, 'could not remove a left-over network'));
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not remove Swarm services left over');
  }
  return removed;
}
