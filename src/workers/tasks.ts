import { preloadComposer, writeOutboxMail, type OutboxMail } from '../notify/outbox.js';
import type { Step } from '../recipes/recipe.js';
import { preloadSteps } from '../steps/index.js';
import { runDelivery } from '../delivery/task.js';
import { runSteps, type StepsOutcome } from '../steps/attempt.js';
import { servicesCache, type AttemptTask, type DeliveryTask } from '../steps/services.js';
import { passiveCheckpointer, type CheckpointResult } from '../store/checkpoints.js';
import type { Output } from '../store/outputs.js';

// The work hopper hands to its threads: plain data in, plain data out, so the
// same function runs it on a worker thread or, with `threads: 0`, on the main one.

/** What a thread loads before its first job: the kinds of step the recipes use, and MailComposer when mail goes to outbox/. */
export interface Preload {
  steps: Array<Step['kind']>;
  outbox: boolean;
}

export type Task =
  | { kind: 'attempt'; attempt: AttemptTask }
  | { kind: 'deliver'; deliver: DeliveryTask }
  | { kind: 'outbox'; mail: OutboxMail }
  | { kind: 'preload'; preload: Preload }
  /** A PASSIVE checkpoint of the database file `db` (store/checkpoints.ts). */
  | { kind: 'checkpoint'; db: string };

export interface TaskResults {
  attempt: StepsOutcome;
  deliver: Output[];
  outbox: undefined;
  preload: undefined;
  checkpoint: CheckpointResult;
}

/** Runs tasks in one thread; keeps that thread's clients (S3, Docker, a database connection for checkpoints) between tasks. */
export function taskRunner(): (task: Task, signal: AbortSignal) => Promise<TaskResults[Task['kind']]> {
  const services = servicesCache();
  const checkpoint = passiveCheckpointer();
  return async (task, signal) => {
    switch (task.kind) {
      case 'checkpoint':
        return checkpoint(task.db);
      case 'attempt':
        return runSteps(task.attempt.input, await services(task.attempt), signal);
      case 'deliver':
        return runDelivery(task.deliver.input, await services(task.deliver), signal);
      case 'outbox':
        await writeOutboxMail(task.mail);
        return undefined;
      case 'preload':
        await preloadSteps(task.preload.steps);
        if (task.preload.outbox) await preloadComposer();
        return undefined;
    }
  };
}
