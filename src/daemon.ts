import { mkdirSync } from 'node:fs';
import { ensureOwnFolder, makeFolder, PRIVATE_FOLDER } from './fs/owndir.js';
import { REJECTED_FOLDER } from './inbox/files.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { systemClock, type Clock, type Context } from './context.js';
import type { S3Delivery } from './delivery/s3.js';
import { loadOrMakeKey, webhookKeyFor } from './keys/key.js';
import { DockerEngine } from './docker/engine.js';
import { createOffload } from './workers/offload.js';
import { removeOrphans, removeOrphanServices } from './docker/orphans.js';
import { privilegesWarning } from './docker/swarm.js';
import { downloadRoute } from './http/downloads.js';
import { dashboardRoute, jobLogRoute } from './http/dashboard.js';
import { healthRoute } from './http/health.js';
import { jobRoute, jobsRoute } from './http/jobs.js';
import { metricsRoute } from './http/metrics.js';
import { errorsRoute, requestsRoute, statisticsRoute } from './http/statistics.js';
import { statusRoute } from './http/status.js';
import { uiRoutes } from './http/ui.js';
import { cancelRoute, submitRoute, type HttpIntake } from './http/submit.js';
import { ckanpackagerRoutes } from './compat/ckanpackager.js';
import { submitCancel, submitRequest } from './inbox/submit.js';
import type { Job } from './store/jobs.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { InboxArrivals } from './inbox/arrivals.js';
import { takeBatch } from './inbox/intake.js';
import { FolderWatcher } from './inbox/watcher.js';
import { acquireLock } from './lock.js';
import { createLogger, type Logger } from './log.js';
import { Notifier } from './notify/notifier.js';
import { pathsFor } from './paths.js';
import { DeliveryStage } from './queue/delivering.js';
import { Dispatcher } from './queue/dispatcher.js';
import { NOTHING, type Need } from './queue/resources.js';
import { scheduleRetention } from './maintenance/retention.js';
import { RECIPE_FILE, RecipeRegistry } from './recipes/registry.js';
import { Scheduler } from './schedule/scheduler.js';
import { openStore } from './store/store.js';
import { Checkpoints } from './store/checkpoints.js';


/** How often Swarm services no running job owns are looked for. */
const SWEEP_MS = 60_000;
export interface DaemonOptions {
  root: string;
  configFile?: string;
  /** Use this config instead of reading hopper.yaml (tests). */
  config?: Config;
  log?: Logger;
  clock?: Clock;
  /** How long an inbox file must sit unchanged before it is taken. @default 250 */
  settleMs?: number;
  /** Safety-net rescan of the inbox. @default 10000 */
  rescanMs?: number;
  /** How often the Docker engine is asked whether it answers. @default 5000 */
  dockerPingMs?: number;
  /** See DispatcherOptions. */
  resourceHoldMs?: number;
  diskCheckMs?: number;
  /** See NotifierOptions. */
  notifyRetryBaseMs?: number;
  /** The wait after a first failed delivery try (it doubles); tests shorten it. @default 15000 */
  deliveryRetryBaseMs?: number;
  /** See SchedulerOptions.pollMs. */
  schedulePollMs?: number;
  /** How often the retention sweep runs (the first a minute after start). @default 3600000 */
  retentionEveryMs?: number;
}

export interface Daemon {
  ctx: Context;
  recipes: RecipeRegistry;
  dispatcher: Dispatcher;
  delivery: DeliveryStage;
  notifier: Notifier;
  scheduler: Scheduler;
  inbox: InboxArrivals;
  http: HttpServer;
  /** Settles once the step threads have started and loaded what the recipes' steps use (never rejects). */
  warm: Promise<void>;
  /** Logs "hopper started" once `warm` settles: every part runs, the first jobs run at speed. */
  ready(): Promise<void>;
  /** The WAL's checkpoints on a step thread (none with `threads: 0`). */
  checkpoints: Checkpoints | undefined;
  /**
   * SIGHUP: reads hopper.yaml and recipes again without dropping a job. A bad
   * config is refused (logged) and the old one stays; returns whether it took.
   */
  reload(): boolean;
  /** Graceful stop: no new work, running jobs get the grace period, the rest is requeued. */
  stop(graceMs?: number): Promise<void>;
}

/** The AWS SDK is loaded only where S3 is configured: it holds about 11 MB. */
async function s3For(config: NonNullable<Config['s3']>): Promise<S3Delivery> {
  return (await import('./delivery/s3.js')).createS3(config);
}

/** Builds the Context and starts every part, in the order data flows. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const paths = pathsFor(options.root);
  for (const dir of [paths.recipes, paths.inbox]) mkdirSync(dir, { recursive: true });
  // What hopper keeps may hold secrets (writeOnly params in the database, its
  // WAL and archived requests; links in emails): its user's alone, whatever the umask.
  for (const dir of [paths.state, paths.outputs, paths.outbox]) makeFolder(dir, PRIVATE_FOLDER);
  for (const dir of [paths.jobs, paths.archive]) ensureOwnFolder(dir, PRIVATE_FOLDER);
  makeFolder(paths.rejected, REJECTED_FOLDER);
  const config = options.config ?? loadConfig(paths.root, options.configFile);
  const log = options.log ?? createLogger();
  const releaseLock = acquireLock(path.join(paths.state, 'daemon.lock'));
  const store = openStore(paths.db, { durability: 'deferred' });
  let publicUrl = config.http.publicUrl ?? '';
  let onDockerChange = (): void => {};
  let onRecipesChange = (): void => {};
  // What running jobs hold: nothing until the dispatcher is there (the HTTP server starts first).
  let reserved = (): Need => NOTHING;
  const docker = new DockerEngine(config.docker.socketPath, log, () => onDockerChange(), { swarm: config.docker.swarm !== undefined });
  const ctx: Context = {
    paths,
    config,
    store,
    log,
    clock: options.clock ?? systemClock,
    linkKey: loadOrMakeKey(paths.linkKey),
    webhookKey: webhookKeyFor(config.webhooks.secret, paths.state),
    docker,
    s3: config.s3 ? await s3For(config.s3) : undefined,
    offload: createOffload(config.threads),
    publicUrl: () => publicUrl,
  };
  // The WAL is copied back into the database on a step thread, not in the main thread's commits.
  const checkpoints =
    config.threads > 0
      ? new Checkpoints(store.db, () => ctx.offload.checkpoint(paths.db), {
          onFailure: (err) => log.warn({ err: (err as Error).message }, 'a checkpoint on a step thread failed; the main thread checkpoints until one works again'),
          onRecovery: () => log.info('checkpoints run on a step thread again'),
          hold: () => store.hold(),
        })
      : undefined;
  checkpoints?.start();
  // What has started so far, undone in reverse if a later part fails to start.
  const undo: Array<() => Promise<void> | void> = [releaseLock, () => store.close(), () => docker.stop(), () => ctx.s3?.client.destroy(), () => ctx.offload.close(), () => checkpoints?.stop()];
  // The HTTP door of the intake, open once the lanes are there and closed when hopper stops.
  let httpIntake: HttpIntake | undefined;
  try {
    const http = await startHttpServer(ctx, [
      healthRoute(ctx),
      downloadRoute(ctx),
      statusRoute(ctx),
      jobsRoute(ctx),
      jobRoute(ctx),
      jobLogRoute(ctx),
      dashboardRoute(ctx, () => reserved()),
      ...uiRoutes(ctx),
      statisticsRoute(ctx),
      requestsRoute(ctx),
      errorsRoute(ctx),
      metricsRoute(ctx),
      submitRoute(ctx, () => httpIntake),
      cancelRoute(ctx, () => httpIntake),
      ...(config.compat.ckanpackager ? ckanpackagerRoutes(ctx, config.compat.ckanpackager, () => httpIntake) : []),
    ]);
    undo.push(() => http.close());
    // A wildcard or loopback bind is no address for a link in an email: say localhost.
    if (!publicUrl) publicUrl = http.address().replace(/\/\/(127\.0\.0\.1|0\.0\.0\.0|\[::\]|\[::1\])/, '//localhost');

    const recipes = new RecipeRegistry(paths.recipes, log);
    recipes.loadAll();
    const recipeWatcher = new FolderWatcher({
      dir: paths.recipes,
      settleMs: options.settleMs ?? 250,
      ignoreInitial: true,
      accept: (name) => RECIPE_FILE.test(name),
      onFile: (file) => {
        recipes.loadFile(file);
        onRecipesChange();
      },
      onRemove: (file) => {
        recipes.remove(file);
        onRecipesChange();
      },
      log,
    });
    await recipeWatcher.start();
    undo.push(() => recipeWatcher.stop());

    await docker.watch(options.dockerPingMs ?? 5000);
    // An engine that answers but cannot run services is a bad config, like any other: stop now (exit 2).
    if (docker.swarm?.refused) throw new ConfigError(options.configFile ?? path.join(paths.root, 'hopper.yaml'), [{ path: 'docker.swarm', message: docker.swarm.problem ?? 'the Docker engine is no swarm manager' }]);
    await removeOrphans(docker, paths.root, log);
    await removeOrphanServices(docker, paths.root, log);
    if (config.docker.swarm && docker.up) {
      const warning = await privilegesWarning(config.docker.socketPath).catch(() => undefined);
      if (warning) log.warn({ socket: config.docker.socketPath }, warning);
    }
    // Now and then too: a service whose stop could not be confirmed (the manager away) goes once it can.
    const sweep = config.docker.swarm
      ? setInterval(() => void (docker.up && removeOrphanServices(docker, paths.root, log, (jobId, attempt) => dispatcher.runningAttempt(jobId) === attempt)), SWEEP_MS)
      : undefined;
    sweep?.unref();
    undo.push(() => clearInterval(sweep));
    const notifier = new Notifier(ctx, { retryBaseMs: options.notifyRetryBaseMs });
    const delivery = new DeliveryStage(ctx, () => notifier.kick(), (job) => dispatcher.add(job), { retryBaseMs: options.deliveryRetryBaseMs });
    const dispatcher = new Dispatcher(ctx, () => notifier.kick(), { resourceHoldMs: options.resourceHoldMs, diskCheckMs: options.diskCheckMs }, (jobId) => delivery.add(jobId));
    reserved = () => dispatcher.reserved();
    let wasUp = docker.up;
    onDockerChange = () => {
      // Back after an outage: what hopper left running in the meantime is no job's any more.
      if (docker.up && !wasUp) {
        void removeOrphans(docker, paths.root, log, (jobId) => dispatcher.isRunning(jobId));
        void removeOrphanServices(docker, paths.root, log, (jobId, attempt) => dispatcher.runningAttempt(jobId) === attempt);
      }
      wasUp = docker.up;
      dispatcher.tick();
    };
    // The step threads start now and load what the recipes' steps use (and MailComposer when
    // mail goes to outbox/), while the first jobs are taken: not with each first job.
    const kinds = recipes.all().flatMap((r) => r.steps.map((s) => s.kind));
    const warm = ctx.offload.preload({ steps: kinds, outbox: !config.smtp }).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not load the steps ahead of the first jobs; they load with them'));
    dispatcher.start();
    delivery.start();
    notifier.kick();
    const scheduler = new Scheduler(
      ctx,
      recipes,
      (job) => {
        dispatcher.add(job);
        notifier.kick();
      },
      { pollMs: options.schedulePollMs },
    );
    onRecipesChange = () => scheduler.tick();

    const intakeDeps = {
      ctx,
      recipes,
      onJob: (job: Job) => {
        dispatcher.add(job);
        notifier.kick();
      },
      onCancel: (job: Job) => {
        if (!dispatcher.cancel(job.id)) delivery.cancel(job.id);
        notifier.kick();
      },
    };
    // Calls under way, so a stop lets each finish (stored, on disk, answered) before the store closes.
    const intakeCalls = new Set<Promise<unknown>>();
    const tracked = <T>(call: Promise<T>): Promise<T> => {
      intakeCalls.add(call);
      void call.catch(() => {}).finally(() => intakeCalls.delete(call));
      return call;
    };
    httpIntake = {
      request: (text, source) => tracked(submitRequest(intakeDeps, text, source)),
      cancel: (target, source) => tracked(submitCancel(intakeDeps, target, source)),
    };
    const inbox = new InboxArrivals({
      dir: paths.inbox,
      settleMs: options.settleMs ?? 250,
      rescanMs: options.rescanMs ?? 10_000,
      onBatch: async (files, stored) => {
        const results = await takeBatch({ ctx, recipes, onJob: (job) => dispatcher.add(job), onCancel: (job) => dispatcher.cancel(job.id) || delivery.cancel(job.id) }, files, stored);
        if (results.some((r) => r.outcome !== 'skipped')) notifier.kick();
      },
      log,
    });
    const stopRetention = scheduleRetention(ctx, options.retentionEveryMs ?? 3_600_000, Math.min(60_000, options.retentionEveryMs ?? 60_000));
    undo.push(() => dispatcher.stop(0), () => delivery.stop(), () => notifier.stop(), stopRetention, () => scheduler.stop());
    await inbox.start();
    scheduler.start();
    // "hopper started" is said once the step threads have loaded too (see Daemon.ready), by whoever
    // waits for that: `hopper start` does; a daemon built in a test need not wait for its threads.

    let stopping: Promise<void> | undefined;
    return {
      ctx,
      recipes,
      dispatcher,
      delivery,
      notifier,
      scheduler,
      inbox,
      http,
      warm,
      checkpoints,
      ready: async () => {
        await warm;
        // A stop that came first has said what happened.
        if (stopping) return;
        log.info({ root: paths.root, http: http.address(), recipes: recipes.all().map((r) => r.name) }, 'hopper started');
      },
      reload: () => {
        recipes.loadAll();
        scheduler.tick();
        let next: Config;
        try {
          next = loadConfig(paths.root, options.configFile);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'new config refused; the old one stays in force');
          return false;
        }
        for (const key of ['http', 'docker', 'threads', 'compat'] as const) {
          if (JSON.stringify(next[key]) !== JSON.stringify(ctx.config[key])) log.warn({ key }, `a change of ${key} takes effect at the next start`);
        }
        next = { ...next, http: ctx.config.http, docker: ctx.config.docker, threads: ctx.config.threads, compat: ctx.config.compat };
        const s3Changed = JSON.stringify(next.s3) !== JSON.stringify(ctx.config.s3);
        ctx.config = next;
        ctx.webhookKey = webhookKeyFor(next.webhooks.secret, paths.state);
        if (s3Changed) {
          // The old client delivers until the new one is ready, so no job sees "no S3"
          // (E_S3_UNAVAILABLE means only that: hopper.yaml has no s3 section; not retried).
          const old = ctx.s3;
          const swap = (s3: S3Delivery | undefined): void => {
            ctx.s3 = s3;
            old?.client.destroy();
          };
          if (next.s3) void s3For(next.s3).then(swap, (err: unknown) => log.error({ err: (err as Error).message }, 'the new s3 settings could not be used; the old ones stay'));
          else swap(undefined);
        }
        notifier.reconfigured();
        dispatcher.reconfigured();
        log.info('config and recipes reloaded');
        return true;
      },
      stop: (graceMs = ctx.config.shutdown.graceMs) =>
        (stopping ??= (async () => {
          log.info({ graceMs }, 'hopper stopping');
          httpIntake = undefined;
          await Promise.race([Promise.allSettled(intakeCalls), sleep(5000, undefined, { ref: false })]);
          stopRetention();
          scheduler.stop();
          await inbox.stop();
          await recipeWatcher.stop();
          await dispatcher.stop(graceMs);
          await delivery.stop();
          await notifier.stop();
          checkpoints?.stop();
          await ctx.offload.close();
          docker.stop();
          ctx.s3?.client.destroy();
          await http.close();
          store.close();
          releaseLock();
          log.info('hopper stopped');
        })()),
    };
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => {});
    throw err;
  }
}
