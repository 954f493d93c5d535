import PQueue from 'p-queue';
import type { Config } from '../config/config.js';
import type { Lane } from '../recipes/recipe.js';


/**
 * The two lanes: each a p-queue bounding how many jobs run at once. Admission
 * (priority, recipe concurrency, rate limits, retry times) is the dispatcher's;
 * a job reaches a lane only when it may start, so the lane never holds a backlog.
 */
export class Lanes {
  private readonly queues: Record<Lane, PQueue>;

  constructor(config: Config['lanes']) {
    this.queues = {
      fast: new PQueue({ concurrency: config.fast.concurrency }),
      slow: new PQueue({ concurrency: config.slow.concurrency }),
    };
  }

  concurrency(lane: Lane): number {
    return this.queues[lane].concurrency;
  }

  /** Jobs in the lane now: running plus handed over and about to run. */
  busy(lane: Lane): number {
    return this.queues[lane].pending + this.queues[lane].size;
  }

  free(lane: Lane): number {
    return Math.max(this.concurrency(lane) - this.busy(lane), 0);
  }

  run(lane: Lane, work: () => Promise<void>, priority: number): void {
    // `work` handles its own failures; nothing may reject unhandled here.
    this.queues[lane].add(work, { priority }).catch(() => {});
  }

  resize(config: Config['lanes']): void {
    this.queues.fast.concurrency = config.fast.concurrency;
    this.queues.slow.concurrency = config.slow.concurrency;
  }
}
