import type { Context } from '../context.js';
import { linksFor } from '../delivery/deliver.js';
import { HopperError, toHopperError } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import { isRetryable } from '../outcomes.js';
import { scrub, secretValues } from '../redact.js';
import { snapshotRecipes, type Recipe } from '../recipes/recipe.js';
import { stepSettings } from '../steps/services.js';
import type { Job } from '../store/jobs.js';
import type { Output } from '../store/outputs.js';
import { formatDuration } from '../units.js';
import { backoffMs } from './retry.js';
import { endJob, succeed } from './settle.js';

// The delivery stage. A job whose steps succeeded but whose outputs could not
// be put in place at once (an upload to S3, a copy to another disk) waits here,
// in the store as `delivering` with what its steps produced, and holds no lane
// slot. It is tried again with backoff while the failure may pass (S3 down, a
// full disk) for `s3.retryFor` / `outputs.retryFor`; a refusal no try can
// change (a wrong bucket, refused credentials) fails it at once. Only when
// delivery has given up is the recipe's retry policy asked, so finished work
// is never done again because an upload failed. A restart resumes from the
// store: each try skips what is in place already (delivery/local.ts, s3.ts).

/** Codes of failures that may pass: delivery tries again (within retryFor). */
// E_INTERNAL too: an unforeseen failure of a delivery is no reason to run the steps again.
const PASSING = new Set(['E_S3', 'E_S3_VERIFY', 'E_OUTPUTS_DISK', 'E_DELIVERY', 'E_WORKER', 'E_INTERNAL']);

type AfterFailure = { kind: 'wait'; at: number } | { kind: 'requeue'; job: Job } | { kind: 'ended' };

export interface DeliveryStageOptions {
  /** The wait after the first failed try; it doubles with each. @default 15000 */
  retryBaseMs?: number;
  /** The longest wait between two tries. @default 300000 */
  maxDelayMs?: number;
  /** Deliveries under way at once. @default 4 */
  concurrency?: number;
  /** How often the store is looked at for deliveries asked from outside (`hopper retry`). @default 5000 */
  syncMs?: number;
}

export class DeliveryStage {
  private readonly options: Required<DeliveryStageOptions>;
  /** Jobs waiting in delivery, and when each is tried next. */
  private readonly due = new Map<string, number>();
  private readonly active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly recipeOf = snapshotRecipes();
  /** Jobs taken up at start: a try of theirs may have been cut short by hopper dying. */
  private readonly takenUp = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private seenVersion: number | undefined;
  private stopping = false;

  constructor(
    private readonly ctx: Context,
    /** Called when a job ended or changed (the notifier looks for new rows). */
    private readonly afterSettle: () => void,
    /** A job that delivery gave up on, and whose recipe retries it: back to the queue. */
    private readonly requeue: (job: Job) => void,
    options: DeliveryStageOptions = {},
  ) {
    this.options = {
      retryBaseMs: options.retryBaseMs ?? 15_000,
      maxDelayMs: options.maxDelayMs ?? 300_000,
      concurrency: options.concurrency ?? 4,
      syncMs: options.syncMs ?? 5000,
    };
  }

  /** Takes up the jobs that waited in delivery when hopper stopped: tried at once (what failed may have been fixed meanwhile). */
  start(): void {
    this.seenVersion = this.ctx.store.outsideVersion();
    for (const job of this.ctx.store.jobs.delivering()) {
      this.due.set(job.id, this.ctx.clock.now());
      this.takenUp.add(job.id);
    }
    if (this.due.size > 0) this.ctx.log.info({ jobs: this.due.size }, 'jobs waiting in delivery taken up again');
    this.syncTimer = setInterval(() => this.sync(), this.options.syncMs);
    this.syncTimer.unref();
    this.tick();
  }

  /** A job that now waits in delivery: its first try is now. */
  add(jobId: string): void {
    if (this.stopping || this.active.has(jobId)) return;
    this.due.set(jobId, this.ctx.clock.now());
    this.tick();
  }

  /** Whether the job is this stage's (waiting or being delivered). */
  private has(jobId: string): boolean {
    return this.due.has(jobId) || this.active.has(jobId);
  }

  /** Cancels a job waiting in delivery (a try under way is stopped); false when it is not here. */
  cancel(jobId: string): boolean {
    const run = this.active.get(jobId);
    if (run) {
      run.controller.abort(new HopperError('E_CANCELED', 'canceled by request'));
      return true;
    }
    this.due.delete(jobId);
    const job = this.ctx.store.jobs.get(jobId);
    if (job?.state !== 'delivering') return false;
    endJob(this.ctx, job, this.recipeOf(job), 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
    this.afterSettle();
    return true;
  }

  /** Jobs set to delivering by another process (`hopper retry`), read when SQLite says one committed. */
  private sync(): void {
    if (this.stopping) return;
    try {
      const version = this.ctx.store.outsideVersion();
      if (version === this.seenVersion) return;
      for (const job of this.ctx.store.jobs.delivering()) if (!this.has(job.id)) this.due.set(job.id, job.nextAttemptAt ?? this.ctx.clock.now());
      this.seenVersion = version; // only once read: a failed read is read again next time
      this.tick();
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'could not look for deliveries asked from outside; looking again in a moment');
    }
  }

  /** Starts the tries that are due (as many as may run), and sets a timer for the next. */
  private tick(): void {
    if (this.stopping) return;
    clearTimeout(this.timer);
    const now = this.ctx.clock.now();
    let next = Infinity;
    for (const [jobId, at] of [...this.due].sort((a, b) => a[1] - b[1])) {
      if (at > now) {
        next = Math.min(next, at);
        continue;
      }
      if (this.active.size >= this.options.concurrency) break;
      this.due.delete(jobId);
      const controller = new AbortController();
      const done = this.deliver(jobId, controller.signal).finally(() => {
        this.active.delete(jobId);
        this.tick();
      });
      this.active.set(jobId, { controller, done });
    }
    if (next !== Infinity) {
      this.timer = setTimeout(() => this.tick(), Math.min(next - now, 60_000));
      this.timer.unref();
    }
  }

  /** One try: on a worker thread; its end (success, a wait, a failure) is one group commit. Never throws. */
  private async deliver(jobId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.tryOnce(jobId, signal);
    } catch (err) {
      // Whatever went wrong here (the store busy, say), the job is not left behind: it is tried again.
      if (this.stopping) return;
      this.ctx.log.error({ job: jobId, err: (err as Error).message }, 'a delivery try could not be run or recorded; trying again later');
      this.due.set(jobId, this.ctx.clock.now() + this.options.retryBaseMs);
    }
    this.afterSettle();
  }

  private async tryOnce(jobId: string, signal: AbortSignal): Promise<void> {
    const job = this.ctx.store.jobs.get(jobId);
    if (!job || job.state !== 'delivering') return;
    const recipe = this.recipeOf(job);
    if (job.cancelRequested) {
      endJob(this.ctx, job, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
      return;
    }
    const secrets = secretValues(job.params, recipe.paramsSchema);
    const produced = this.ctx.store.outputs.produced(jobId);
    const { jobs, outputs } = this.ctx.paths;
    let delivered: Output[];
    try {
      delivered = await this.ctx.offload.deliver(
        {
          input: { jobId, attempt: job.deliveryTries + 1, resumed: job.deliveryTries > 0 || this.takenUp.delete(jobId), produced, secrets, paths: { jobs, outputs } },
          settings: stepSettings(this.ctx.config),
        },
        signal,
      );
    } catch (err) {
      const error = toHopperError(signal.aborted ? signal.reason : err);
      if (error.code === 'E_SHUTDOWN') return; // stays delivering; taken up at the next start
      const toS3 = produced.some((p) => p.location === 's3');
      const next = await this.ctx.store.later(() => this.failed(jobId, recipe, toS3, new HopperError(error.code, scrub(error.message, secrets))));
      // What follows from the failure, once it is committed.
      if (next.kind === 'wait') this.due.set(jobId, next.at);
      if (next.kind === 'requeue') this.requeue(next.job);
      return;
    }
    // Delivered: should the links or the commit fail now, the next try finds the outputs in place.
    const links = await linksFor(this.ctx, delivered, this.ctx.clock.now());
    const ended = await this.ctx.store.later(() => {
      // Read again in the commit: a cancel may have come while the outputs were delivered.
      const now = this.ctx.store.jobs.get(jobId);
      if (now?.state !== 'delivering') return 'gone';
      if (now.cancelRequested) {
        endJob(this.ctx, now, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
        return 'canceled';
      }
      succeed(this.ctx, now, recipe, delivered, links);
      return 'succeeded';
    });
    if (ended === 'succeeded') this.ctx.log.info({ job: jobId, recipe: recipe.name, tries: job.deliveryTries + 1 }, 'job succeeded (outputs delivered)');
  }

  /** Records a failed try: the next one, or the end of delivery (then the recipe's retries decide). A unit of a group commit. */
  private failed(jobId: string, recipe: Recipe, toS3: boolean, error: HopperError): AfterFailure {
    const job = this.ctx.store.jobs.get(jobId);
    if (!job || job.state !== 'delivering') return { kind: 'ended' };
    if (error.code === 'E_CANCELED' || job.cancelRequested) {
      endJob(this.ctx, job, recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
      return { kind: 'ended' };
    }
    const now = this.ctx.clock.now();
    const tries = job.deliveryTries + 1;
    const nextAt = now + Math.min(this.options.retryBaseMs * 2 ** (tries - 1), this.options.maxDelayMs);
    const retryForMs = toS3 ? (this.ctx.config.s3?.retryForMs ?? 86_400_000) : this.ctx.config.outputs.retryForMs;
    const since = job.deliverySince ?? now;
    if (PASSING.has(error.code) && nextAt <= since + retryForMs) {
      this.ctx.store.jobs.deliveryWaits(jobId, tries, nextAt, `delivering: ${error.message}`);
      this.ctx.log.warn({ job: jobId, tries, code: error.code, err: error.message, nextTryAt: new Date(nextAt).toISOString() }, 'delivery failed; will try again');
      return { kind: 'wait', at: nextAt };
    }
    const final = PASSING.has(error.code)
      ? { code: error.code, message: `the outputs could not be delivered for ${formatDuration(now - since)} (${tries} tries): ${error.message}` }
      : { code: error.code, message: error.message };
    if (isRetryable(final.code) && job.attempts < recipe.retries.attempts) {
      const retryAt = now + backoffMs(recipe.retries, job.attempts);
      this.ctx.store.jobs.retryLater(jobId, now, retryAt, final, planNotifications(job, recipe, { event: 'retrying', error: final }, now));
      this.ctx.log.warn({ job: jobId, code: final.code, err: final.message }, 'delivery gave up; the job runs again, as its recipe retries');
      const again = this.ctx.store.jobs.get(jobId);
      return again ? { kind: 'requeue', job: again } : { kind: 'ended' };
    }
    endJob(this.ctx, job, recipe, 'failed', final);
    this.ctx.log.warn({ job: jobId, code: final.code, err: final.message }, 'job failed: its outputs could not be delivered');
    return { kind: 'ended' };
  }

  /** Stops: tries under way end as interrupted (the jobs stay delivering, and resume at the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    clearInterval(this.syncTimer);
    for (const run of this.active.values()) run.controller.abort(new HopperError('E_SHUTDOWN', 'hopper is stopping'));
    await Promise.all([...this.active.values()].map((r) => r.done));
  }
}
