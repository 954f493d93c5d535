import type { Logger } from '../log.js';
import { LABEL_JOB, LABEL_ROOT } from '../steps/container.js';
import { engineProblem, engineRequest } from './api.js';
import type { DockerEngine } from './engine.js';

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
