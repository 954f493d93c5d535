import type { Logger } from '../log.js';
import { LABEL_JOB, LABEL_ROOT } from '../steps/container.js';
import type { DockerEngine } from './engine.js';

/**
 * At start nothing of this root runs yet, so every container labelled with
 * this root is left over from a hopper that died: remove them. Their jobs are
 * still `running` in the store and go by their retry policy.
 */
export async function removeOrphans(engine: DockerEngine, root: string, log: Logger): Promise<string[]> {
  if (!engine.up) return [];
  const found = await engine.client.listContainers({ all: true, filters: { label: [`${LABEL_ROOT}=${root}`] } });
  const removed: string[] = [];
  for (const c of found) {
    try {
      await engine.client.getContainer(c.Id).remove({ force: true });
      removed.push(c.Id);
      log.warn({ container: c.Names?.[0] ?? c.Id.slice(0, 12), job: c.Labels?.[LABEL_JOB] }, 'removed a container left by a hopper that stopped unexpectedly');
    } catch (err) {
      log.error({ container: c.Id.slice(0, 12), err: (err as Error).message }, 'could not remove a left-over container');
    }
  }
  return removed;
}
