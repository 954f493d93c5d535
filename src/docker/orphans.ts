import type { Logger } from '../log.js';
import { LABEL_JOB, LABEL_ROOT } from '../steps/container.js';
import { engineProblem, engineRequest } from './api.js';
import type { DockerEngine } from './engine.js';
import { taskLive } from './swarm.js';

/**
 * A container labelled with this root whose job this hopper is not running is
 * left over from a hopper that died: remove it. (At start that is every one.)
 * Their jobs are still `running` in the store and are recovered by the dispatcher.
 */
export async function removeOrphans(engine: DockerEngine, root: string, log: Logger, isRunning: (jobId: string) => boolean = () => false): Promise<string[]> {
  if (!engine.up) return [];
  let found: Array<{ Id: string; Names?: string[]; Labels?: Record<string, string> }>;
  try {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_ROOT}=${root}`] }));
    const answer = await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`);
    if (answer.status !== 200) throw new Error(engineProblem(answer));
    found = JSON.parse(answer.body) as typeof found;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not list containers to remove left-overs');
    return [];
  }
  const removed: string[] = [];
  for (const c of found.filter((x) => !isRunning(x.Labels?.[LABEL_JOB] ?? ''))) {
    try {
      const answer = await engineRequest(engine.socketPath, 'DELETE', `/containers/${encodeURIComponent(c.Id)}?force=1`);
      if (answer.status !== 204 && answer.status !== 404) throw new Error(engineProblem(answer));
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
  Version: { Index: number };
  Spec: { Name?: string; Labels?: Record<string, string>; Mode?: unknown };
}

async function engineJson<T>(engine: DockerEngine, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T | undefined> {
  const answer = await engineRequest(engine.socketPath, method, path, 10_000, body);
  if (answer.status === 404) return undefined;
  if (answer.status >= 300) throw new Error(engineProblem(answer));
  return answer.body ? (JSON.parse(answer.body) as T) : undefined;
}

const byRoot = (root: string): string => encodeURIComponent(JSON.stringify({ label: [`${LABEL_ROOT}=${root}`] }));

/** Whether any task of the service may still have a container on its node. */
async function serviceTaskLive(engine: DockerEngine, id: string): Promise<boolean> {
  const tasks = (await engineJson<Array<{ Status?: { State?: string } }>>(engine, 'GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [id] }))}`)) ?? [];
  return tasks.some((t) => taskLive(t.Status?.State));
}

/**
 * The Swarm side of removeOrphans: services of this root whose job this hopper
 * is not running, and then the jobs' networks no service uses. A service is
 * scaled to nothing and its task waited for (bounded) before it is removed:
 * on Docker 20.10 its network must not go while the container is on it.
 */
export async function removeOrphanServices(engine: DockerEngine, root: string, log: Logger, isRunning: (jobId: string, attempt: number) => boolean = () => false): Promise<string[]> {
  if (!engine.up || !engine.swarm) return [];
  const removed: string[] = [];
  try {
    const services = (await engineJson<ServiceDoc[]>(engine, 'GET', `/services?filters=${byRoot(root)}`)) ?? [];
    // A service of an earlier attempt of a job running again is an orphan too.
    const ours = (labels: Record<string, string> | undefined): boolean => isRunning(labels?.[LABEL_JOB] ?? '', Number(labels?.['hopper.attempt']));
    for (const s of services.filter((x) => !ours(x.Spec.Labels))) {
      if (await serviceTaskLive(engine, s.ID)) {
        await engineJson(engine, 'POST', `/services/${encodeURIComponent(s.ID)}/update?version=${s.Version.Index}`, { ...s.Spec, Mode: { Replicated: { Replicas: 0 } } }).catch(() => undefined);
        for (let i = 0; i < 150 && (await serviceTaskLive(engine, s.ID)); i++) await new Promise((r) => setTimeout(r, 100));
      }
      await engineJson(engine, 'DELETE', `/services/${encodeURIComponent(s.ID)}`);
      removed.push(s.ID);
      log.warn({ service: s.Spec.Name ?? s.ID, job: s.Spec.Labels?.[LABEL_JOB] }, 'removed a Swarm service left by a hopper that stopped unexpectedly');
    }
    const inUse = new Set(services.filter((x) => !removed.includes(x.ID)).map((x) => x.Spec.Labels?.[LABEL_JOB]));
    const networks = (await engineJson<Array<{ Id: string; Name: string; Labels?: Record<string, string> }>>(engine, 'GET', `/networks?filters=${byRoot(root)}`)) ?? [];
    for (const n of networks.filter((x) => !inUse.has(x.Labels?.[LABEL_JOB]) && !ours(x.Labels))) {
      await engineJson(engine, 'DELETE', `/networks/${encodeURIComponent(n.Id)}`).catch((err: unknown) => log.error({ network: n.Name, err: (err as Error).message }, 'could not remove a left-over network'));
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not remove Swarm services left over');
  }
  return removed;
}
