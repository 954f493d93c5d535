import type { Context } from '../context.js';
import { HopperError, toHopperError } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import { LANE_NAMES, snapshotRecipes, usesDocker, type Lane, type Recipe } from '../recipes/recipe.js';
import type { Job } from '../store/jobs.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { freeDiskBytes } from '../fs/disk.js';
import { add, localNeed, needOf, NOTHING, overBudget, resourceBlocker, watchDisk, type Need } from './resources.js';
import { runAttempt, workDirOf } from './attempt.js';
import { Lanes } from './lanes.js';
import { endJob, settleAttempt, type AttemptResult } from './settle.js';
import { admissionBlocker, type Snapshot } from './admission.js';
import { claim } from '../docker/swarm.js';
import { cacheHit, serveFromCache } from './cache.js';
import { isolated, recentStarts, recoverFromStore } from './recovery.js';

interface Entry {
  job: Job;
  recipe: Recipe;
  /** Since when the job has waited for resources only: after the hold time they are promised to it. */
  resourceWaitSince?: number;
  /** Since when the job has waited for the Docker engine (it fails after its timeout of that). */
  dockerWaitSince?: number;
  /** The dispatch that last looked at it. */
  round?: number;
}

export interface DispatcherOptions {
  /**
   * How long a job that does not fit lets smaller jobs pass it; after that,
   * resources are kept free for it, so it is never starved. @default 120000
   */
  resourceHoldMs?: number;
  /** How often a running job's work dir is measured against its disk reservation. @default 2000 */
  diskCheckMs?: number;
  /** How often the store is looked at for jobs queued from outside (`hopper retry`). @default 5000 */
  syncMs?: number;
}

interface Running extends Entry {
  controller: AbortController;
  done: Promise<void>;
  /** Known once the start is recorded. */
  attempt?: number;
}

const MAX_TIMER_MS = 60_000;

function countRunning(byRecipe: Map<string, number>, byGroup: Map<string, number>, recipe: Recipe): void {
  byRecipe.set(recipe.name, (byRecipe.get(recipe.name) ?? 0) + 1);
  if (recipe.group) byGroup.set(recipe.group, (byGroup.get(recipe.group) ?? 0) + 1);
}

function byTurn(a: Entry, b: Entry): number {
  return b.job.priority - a.job.priority || a.job.createdAt - b.job.createdAt || (a.job.id < b.job.id ? -1 : 1);
}

/**
 * Decides which waiting job starts next. Jobs wait in memory (rebuilt from the
 * store at start); a job is handed to its lane only when nothing holds it back:
 * its time has come, its recipe and group have room, its rate limit allows,
 * and the lane has a free slot. Each waiting job's reason is kept in the store.
 */
export class Dispatcher {
  private readonly ctx: Context;
  private readonly lanes: Lanes;
  private readonly afterSettle: () => void;
  private readonly options: Required<DispatcherOptions>;
  private readonly pending = new Map<string, Entry>();
  private readonly running = new Map<string, Running>();
  /** Jobs being served from the cache right now: neither pending nor running, not to be picked up again. */
  private readonly settling = new Map<string, Promise<void>>();
  /** Start times of rate-limited recipes' jobs, oldest first, and how long each recipe's window is. */
  private readonly starts = new Map<string, number[]>();
  private readonly rateWindow = new Map<string, number>();
  private readonly recipeOf = snapshotRecipes();
  private timer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private stopping = false;
  /** The store's outsideVersion() when sync() last read the waiting jobs. */
  private seenVersion: number | undefined;
  /**
   * Waiting jobs to look at even when every lane is full: those not looked at
   * yet (they get their reason), those that may be served from the cache, and
   * those waiting out the Docker engine. The others keep their reason until a
   * lane frees, so a full lane costs no walk through thousands of waiting jobs.
   */
  private readonly special = new Set<Entry>();
  /** Waiting jobs per lane. */
  private readonly waitingIn: Record<Lane, number> = { fast: 0, slow: 0 };
  private round = 0;
  /** `pending` in its turn (see inTurn); entries that left `pending` since are skipped. */
  private order: Entry[] | null = null;

  constructor(
    ctx: Context,
    afterSettle: () => void = () => {},
    options: DispatcherOptions = {},
    /** A job whose steps succeeded and whose outputs wait to be delivered (queue/delivering.ts). */
    private readonly toDelivery: (jobId: string) => void = () => {},
  ) {
    this.ctx = ctx;
    this.options = { resourceHoldMs: options.resourceHoldMs ?? 120_000, diskCheckMs: options.diskCheckMs ?? 2000, syncMs: options.syncMs ?? 5000 };
    this.lanes = new Lanes(ctx.config.lanes);
    this.afterSettle = afterSettle;
  }

  /**
   * Rebuilds the queue from the store (recovery.ts): jobs that were running
   * when hopper died are settled or queued again, and the waiting jobs queued.
   */
  start(): void {
    const now = this.ctx.clock.now();
    // What other processes commit from here on, sync() picks up; what came before is read now.
    this.seenVersion = this.ctx.store.outsideVersion();
    const waiting = recoverFromStore(this.ctx, this.recipeOf, now);
    for (const e of waiting) this.enqueue(e);
    for (const s of recentStarts(this.ctx.store, waiting, now)) this.noteStart(s.recipe, s.perMs, s.at);
    this.syncTimer = setInterval(() => this.sync(), this.options.syncMs);
    this.syncTimer.unref();
    this.tick();
  }

  /** Picks up jobs put back in the queue by another process (`hopper retry` while hopper runs). */
  private sync(): void {
    try {
      // Only another process's commit can queue a job this dispatcher has not seen: no
      // read of 10,000 waiting ids every few seconds (it held the HTTP endpoint ~10 ms).
      const version = this.ctx.store.outsideVersion();
      if (version === this.seenVersion) return;
      this.seenVersion = version;
      for (const id of this.ctx.store.jobs.pendingIds()) {
        if (this.pending.has(id) || this.running.has(id) || this.settling.has(id)) continue;
        const job = this.ctx.store.jobs.get(id);
        if (job) isolated(this.ctx, job, () => this.add(job));
      }
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'could not look for jobs queued from outside');
    }
  }

  /** A newly accepted job. */
  add(job: Job): void {
    if (this.stopping || this.pending.has(job.id) || this.running.has(job.id)) return;
    this.enqueue({ job, recipe: this.recipeOf(job) });
    this.tick();
  }

  /** Cancels a waiting job at once, or stops a running one; false when the job is neither. */
  cancel(jobId: string): boolean {
    const waiting = this.pending.get(jobId);
    if (waiting) {
      this.dequeue(waiting);
      endJob(this.ctx, waiting.job, waiting.recipe, 'canceled', { code: 'E_CANCELED', message: 'canceled by request' });
      this.afterSettle();
      this.tick();
      return true;
    }
    const run = this.running.get(jobId);
    if (run) {
      run.controller.abort(new HopperError('E_CANCELED', 'canceled by request'));
      return true;
    }
    return false;
  }

  tick(): void {
    if (this.scheduled || this.stopping) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  /** Puts a job in the queue (again), in its turn, and among the jobs to look at. */
  private enqueue(e: Entry): void {
    const old = this.pending.get(e.job.id);
    if (old) this.dequeue(old);
    this.pending.set(e.job.id, e);
    this.waitingIn[e.job.lane] += 1;
    this.special.add(e);
    if (this.order === null) return;
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byTurn(this.order[mid], e) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.order.splice(lo, 0, e);
  }

  private dequeue(e: Entry): void {
    if (this.pending.get(e.job.id) !== e) return;
    this.pending.delete(e.job.id);
    this.waitingIn[e.job.lane] -= 1;
  }

  /** Whether no waiting job can get a lane now: every lane that has jobs waiting is full. */
  private lanesFull(): boolean {
    // Called once per job looked at: a loop over the two lanes, no Map iterator (each made garbage).
    for (const lane of LANE_NAMES) if (this.waitingIn[lane] > 0 && this.lanes.free(lane) > 0) return false;
    return true;
  }

  /** The waiting jobs in their turn: kept sorted as jobs come; sorted anew only when it has more left-overs than jobs. */
  private inTurn(): Entry[] {
    if (this.order === null || this.order.length > 2 * this.pending.size + 64) this.order = [...this.pending.values()].sort(byTurn);
    // The jobs at the head that started are dropped: each dispatch walked past them again, which
    // with thousands waiting made the dispatch O(waiting) per job started (measured: a quarter of
    // the main thread's allocations in a 10,000-file burst).
    let started = 0;
    while (started < this.order.length && this.pending.get(this.order[started].job.id) !== this.order[started]) started++;
    if (started > 0) this.order.splice(0, started);
    return this.order;
  }

  /** A job looked at keeps its place in `special` only while it needs looking at with every lane full. */
  private forgetIfSettled(e: Entry): void {
    if (this.pending.get(e.job.id) !== e || (e.job.waitReason !== null && e.recipe.cacheMs === undefined && e.dockerWaitSince === undefined)) this.special.delete(e);
  }

  /** Keeps a start of a rate-limited recipe for as long as its window (`perMs`) reads it. */
  private noteStart(recipe: string, perMs: number, at: number): void {
    this.rateWindow.set(recipe, Math.max(this.rateWindow.get(recipe) ?? 0, perMs));
    const list = this.starts.get(recipe) ?? [];
    list.push(at);
    this.starts.set(recipe, list);
  }

  /** What admission reads, taken once per dispatch (counts kept up to date as jobs begin in it). */
  private snapshot(now: number): Snapshot & { runningByRecipe: Map<string, number>; runningByGroup: Map<string, number> } {
    const runningByRecipe = new Map<string, number>();
    const runningByGroup = new Map<string, number>();
    for (const r of this.running.values()) countRunning(runningByRecipe, runningByGroup, r.recipe);
    for (const [name, list] of this.starts) {
      // Starts older than the longest window any pending job of the recipe uses are of no more use.
      const keep = list.filter((t) => t > now - (this.rateWindow.get(name) ?? 0));
      if (keep.length === 0) this.starts.delete(name);
      else if (keep.length < list.length) this.starts.set(name, keep);
    }
    return {
      now,
      docker: { up: this.ctx.docker?.up ?? false, socketPath: this.ctx.config.docker.socketPath, problem: this.ctx.docker?.problem },
      swarm: this.ctx.config.docker.swarm ? this.ctx.docker?.swarm : undefined,
      runningByRecipe,
      runningByGroup,
      groups: this.ctx.config.groups,
      starts: this.starts,
      sameRequestOnItsWay: (job) => (job.cacheKey === null ? undefined : this.ctx.store.jobs.inFlight(job.cacheKey, job)),
    };
  }

  /** Serves `e` from the cache when it has a hit (cache.ts); true when it was taken for that. */
  private fromCache(e: Entry, now: number): boolean {
    const hit = cacheHit(this.ctx.store, this.ctx.paths.outputs, e.job, e.recipe, now);
    if (!hit) return false;
    this.dequeue(e);
    const served = serveFromCache(this.ctx, e.job, e.recipe, hit).then((ok) => {
      // Could not be served: it runs instead.
      if (!ok && !this.stopping) this.enqueue({ ...e, job: { ...e.job, cacheKey: null } });
      this.afterSettle();
      this.tick();
    });
    this.settling.set(e.job.id, served.finally(() => this.settling.delete(e.job.id)));
    return true;
  }

  private setReason(e: Entry, reason: string | null): void {
    if (e.job.waitReason === reason) return;
    e.job.waitReason = reason;
    // Shown to people, not depended on: written with the next group commit.
    this.ctx.store.soon(() => this.ctx.store.jobs.setWaitReason(e.job.id, reason)).catch((err: unknown) =>
      this.ctx.log.error({ job: e.job.id, err: (err as Error).message }, 'could not record why a job waits'),
    );
  }

  private dispatch(): void {
    try {
      this.dispatchNow();
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'dispatch failed; trying again in a second');
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.tick(), 1000);
      this.timer.unref();
    }
  }

  private dispatchNow(): void {
    if (this.stopping) return;
    const now = this.ctx.clock.now();
    let wakeAt = Infinity;
    let inUse = this.reserved();
    const onSwarm = this.ctx.config.docker.swarm !== undefined;
    let promised = NOTHING;
    let free: number | undefined;
    const freeDisk = (): number => (free ??= freeDiskBytes(this.ctx.paths.state));
    const snap = this.snapshot(now);
    const full = (): boolean => this.lanesFull();
    const round = ++this.round;
    const visit = (e: Entry): void => {
      e.round = round;
      if (this.pending.get(e.job.id) !== e) return; // started, ended or replaced since it was queued
      if (this.fromCache(e, now)) return;
      const b = admissionBlocker(e.job, e.recipe, snap, (e.dockerWaitSince ??= now));
      if (!b?.docker) e.dockerWaitSince = undefined;
      if (b?.docker && b.until !== undefined && b.until <= now) {
        this.giveUp(e, 'E_DOCKER_DOWN', `the Docker engine did not answer for the job's whole timeout (${formatDuration(e.recipe.timeoutMs)})`);
        return;
      }
      if (b) {
        if (b.until !== undefined) wakeAt = Math.min(wakeAt, b.until);
        this.setReason(e, b.reason);
        return;
      }
      if (this.lanes.free(e.job.lane) === 0) {
        this.setReason(e, `the ${e.job.lane} lane is full (${this.lanes.busy(e.job.lane)} running)`);
        return;
      }
      const need = localNeed(e.recipe, onSwarm);
      const impossible = overBudget(this.ctx.config.resources, need);
      if (impossible) {
        this.giveUp(e, 'E_RESOURCES', `the recipe ${impossible}`);
        return;
      }
      const short = resourceBlocker(this.ctx.config.resources, inUse, promised, need, freeDisk);
      if (short) {
        e.resourceWaitSince ??= now;
        const held = now - e.resourceWaitSince >= this.options.resourceHoldMs;
        if (held) promised = add(promised, need);
        else wakeAt = Math.min(wakeAt, e.resourceWaitSince + this.options.resourceHoldMs);
        this.setReason(e, held ? `${short}; resources are kept for it` : short);
        return;
      }
      inUse = add(inUse, need);
      if (snap.swarm && usesDocker(e.recipe)) claim(snap.swarm, needOf(e.recipe));
      countRunning(snap.runningByRecipe, snap.runningByGroup, e.recipe);
      this.begin(e, now);
    };
    // In turn while a lane has room; once every lane is full, only the jobs that need a look.
    if (!full()) {
      for (const e of this.inTurn()) {
        if (full()) break;
        visit(e);
        this.forgetIfSettled(e);
      }
    }
    for (const e of [...this.special].sort(byTurn)) {
      if (e.round !== round) visit(e);
      this.forgetIfSettled(e);
    }
    clearTimeout(this.timer);
    if (wakeAt !== Infinity) {
      this.timer = setTimeout(() => this.tick(), Math.min(Math.max(wakeAt - this.ctx.clock.now(), 0), MAX_TIMER_MS));
      this.timer.unref();
    }
  }

  /** Fails a waiting job that can never start. */
  private giveUp(e: Entry, code: string, message: string): void {
    this.dequeue(e);
    endJob(this.ctx, e.job, e.recipe, 'failed', { code, message });
    this.ctx.log.warn({ job: e.job.id, recipe: e.recipe.name, code, err: message }, 'job failed before it started');
    this.afterSettle();
  }

  private begin(e: Entry, now: number): void {
    const { job, recipe } = e;
    this.dequeue(e);
    // Only a rate limit reads past starts: other recipes' would pile up for nothing.
    if (recipe.rateLimit) this.noteStart(recipe.name, recipe.rateLimit.perMs, now);
    const controller = new AbortController();
    const timeout = setTimeout(
      () => controller.abort(new HopperError('E_TIMEOUT', `the job ran longer than its timeout (${formatDuration(recipe.timeoutMs)})`)),
      timerMs(recipe.timeoutMs),
    );
    const need = needOf(recipe);
    const stopWatch =
      need.disk > 0
        ? watchDisk(workDirOf(this.ctx, job.id), need.disk, this.options.diskCheckMs, (bytes) =>
            controller.abort(new HopperError('E_DISK', `the job wrote ${formatBytes(bytes)}, more than its disk reservation (${formatBytes(need.disk)}), and was stopped`)),
          )
        : () => {};
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    this.running.set(job.id, { job, recipe, controller, done });
    this.lanes.run(
      job.lane,
      async () => {
        let result: AttemptResult;
        // The start (with its `started` notification) joins the next commit while the
        // steps run: nothing they do leaves hopper before the job's end is committed,
        // and that commit comes after it. A crash before it leaves the job queued.
        try {
          const numbers = this.ctx.store.jobs.nextRun(job.id);
          const started = this.ctx.store.soon(() => this.ctx.store.jobs.markStarted(job.id, now, numbers, planNotifications(job, recipe, { event: 'started' }, now)));
          started.catch((err: unknown) => controller.abort(toHopperError(err)));
          this.afterSettle();
          const entry = this.running.get(job.id);
          if (entry) entry.attempt = numbers.attempt;
          this.ctx.log.info({ job: job.id, recipe: recipe.name, lane: job.lane, attempt: numbers.attempt }, 'job started');
          result = { ok: true, ...(await runAttempt(this.ctx, job, recipe, numbers, controller.signal)) };
          await started;
        } catch (err) {
          result = { ok: false, error: toHopperError(err) };
        } finally {
          clearTimeout(timeout);
          stopWatch();
        }
        try {
          await this.afterAttempt(job.id, recipe, result);
        } catch (err) {
          // The store could not record the end (disk full, database locked): the job
          // stays `running` in the store and a restart settles it by its retry policy.
          this.ctx.log.error({ job: job.id, err: (err as Error).message }, 'could not record the end of a job');
        } finally {
          this.running.delete(job.id);
          finished();
          this.afterSettle();
          this.tick();
        }
      },
      job.priority,
    );
  }

  private async afterAttempt(jobId: string, recipe: Recipe, result: AttemptResult): Promise<void> {
    // Committed before the lane slot goes to the next job and before anyone is told.
    const settled = await this.ctx.store.later(() => settleAttempt(this.ctx, jobId, recipe, result));
    const fields = { job: jobId, recipe: recipe.name, outcome: settled, ...(result.ok ? {} : { code: result.error.code, err: result.error.message }) };
    if (settled === 'failed') this.ctx.log.warn(fields, 'job failed');
    else this.ctx.log.info(fields, `job ${settled}`);
    if (settled === 'delivering') this.toDelivery(jobId);
    if (settled === 'retrying' && !this.stopping) {
      const job = this.ctx.store.jobs.get(jobId);
      if (job) this.enqueue({ job, recipe });
    }
  }

  /** The config was reloaded: lane sizes change now, the rest is read at the next dispatch. */
  reconfigured(): void {
    this.lanes.resize(this.ctx.config.lanes);
    this.tick();
  }

  /** What the running jobs hold of this host's resources budget (config `resources`), as admission counts it. */
  reserved(): Need {
    const onSwarm = this.ctx.config.docker.swarm !== undefined;
    let inUse = NOTHING;
    for (const r of this.running.values()) inUse = add(inUse, localNeed(r.recipe, onSwarm));
    return inUse;
  }

  isRunning(jobId: string): boolean {
    return this.running.has(jobId);
  }

  /** The attempt a running job is on (undefined before its start is recorded, or when it is not running). */
  runningAttempt(jobId: string): number | undefined {
    return this.running.get(jobId)?.attempt;
  }

  /**
   * Stops starting jobs, lets running ones finish within `graceMs`, then stops
   * the rest; those go back to `queued` and run again at the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    clearInterval(this.syncTimer);
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, timerMs(graceMs))));
    await Promise.race([all, graceOver]);
    clearTimeout(graceTimer);
    for (const r of this.running.values()) r.controller.abort(new HopperError('E_SHUTDOWN', 'hopper is stopping'));
    await all;
    // Jobs being served from the cache write to the store: it must not close under them.
    await Promise.all(this.settling.values());
  }
}
