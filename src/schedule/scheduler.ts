import type { Context } from '../context.js';
import { whyNever } from '../inbox/intake.js';
import { jobInput, type RecipeLookup } from '../inbox/request.js';
import { planNotifications } from '../notify/plan.js';
import type { Recipe } from '../recipes/recipe.js';
import { atomically } from '../store/atomic.js';
import type { Job } from '../store/jobs.js';
import type { ScheduleRow } from '../store/schedules.js';

export interface SchedulerOptions {
  /**
   * The longest real time between two looks at the clock. The timer sleeps
   * until the next slot but never longer than this, so a clock that jumps
   * (a test's clock, a suspended host) is noticed.
   * @default 60_000
   */
  readonly pollMs?: number;
}

/** `2026-11-30T03:00:00.000Z` → `20261130T030000Z`: a slot as part of a request id. */
const slotStamp = (at: number): string => new Date(at).toISOString().replace(/[-:]|\.\d+/g, '');

/**
 * Requests scheduled recipes at their cron slots. The last slot handled per
 * recipe is stored with the job it made, in one transaction: a slot missed
 * while hopper was down runs once at the next start, several missed slots
 * run once together, and no slot runs twice.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly pollMs: number;

  constructor(
    private readonly ctx: Context,
    private readonly recipes: RecipeLookup,
    private readonly onJob: (job: Job) => void,
    options: SchedulerOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 60_000;
  }

  /** The first look is at once: that is when a run missed while down happens. */
  start(): void {
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Requests what is due, records the next slots, and sets the timer for the nearest. */
  tick(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const now = this.ctx.clock.now();
    let nearest = Infinity;
    const rows = new Map(this.ctx.store.schedules.all().map((r) => [r.recipe, r]));
    for (const recipe of this.recipes.all()) {
      if (!recipe.schedule) continue;
      const row = rows.get(recipe.name);
      rows.delete(recipe.name);
      try {
        const next = this.look(recipe, row, now);
        if (next !== null) nearest = Math.min(nearest, next);
      } catch (err) {
        this.ctx.log.error({ recipe: recipe.name, err: (err as Error).message }, 'scheduled run not requested');
      }
    }
    // A recipe removed, or its schedule dropped: it no longer shows as coming.
    for (const gone of rows.keys()) this.ctx.store.schedules.remove(gone);
    const wait = Math.max(10, Math.min(this.pollMs, nearest - now));
    // Not while a checkpoint holds the commits (store/checkpoints.ts): the WAL would not start over.
    this.timer = setTimeout(() => void this.ctx.store.writable().then(() => this.tick()), wait);
    this.timer.unref();
  }

  /** One recipe's schedule at `now`; returns its next slot. */
  private look(recipe: Recipe, row: ScheduleRow | undefined, now: number): number | null {
    const { cron } = recipe.schedule!;
    const store = this.ctx.store.schedules;
    const next = cron.next(now);
    if (!row || row.pattern !== cron.pattern) {
      // New or changed: slots from now on count, none before.
      store.put({ recipe: recipe.name, pattern: cron.pattern, lastSlot: now, nextAt: next, lastRunAt: row?.lastRunAt ?? null, lastJobId: row?.lastJobId ?? null });
      return next;
    }
    const due = cron.latest(now);
    if (due !== null && due > row.lastSlot) {
      this.request(recipe, due, now, (jobId) => store.put({ ...row, lastSlot: due, nextAt: next, lastRunAt: due, lastJobId: jobId ?? row.lastJobId }));
    } else if (row.nextAt !== next) {
      store.put({ ...row, nextAt: next });
    }
    return next;
  }

  /** Stores the job for slot `slot` together with `advance`, so the slot is taken exactly once. */
  private request(recipe: Recipe, slot: number, now: number, advance: (jobId: string | null) => void): void {
    const refused = whyNever(this.ctx.config, recipe);
    if (refused) {
      advance(null);
      this.ctx.log.error({ recipe: recipe.name, slot: new Date(slot).toISOString() }, `scheduled run skipped: ${refused}`);
      return;
    }
    const params = structuredClone(recipe.schedule!.params);
    // Fills the schema's defaults, as for a dropped request; the recipe's load checked the rest.
    recipe.validateParams(params);
    const requestId = `schedule-${recipe.name}-${slotStamp(slot)}`;
    const input = jobInput(recipe, { requestId, params, notify: {}, notBefore: null, sourceFile: `schedule "${recipe.schedule!.cron.pattern}"` });
    const outcome = atomically(this.ctx.store.db, () => {
      const o = this.ctx.store.jobs.accept(input, `schedule:${recipe.name}:${slot}`, now, (job) => planNotifications(job, recipe, { event: 'requested' }, now));
      advance(o.job.id);
      return o;
    });
    if (outcome.kind !== 'created') return;
    this.ctx.log.info({ job: outcome.job.id, recipe: recipe.name, slot: new Date(slot).toISOString() }, 'scheduled run requested');
    this.onJob(outcome.job);
  }
}
