import { freeDiskBytes } from '../fs/disk.js';
import { createRequire } from 'node:module';
import type PromClient from 'prom-client';
import type { Context } from '../context.js';
import { failedDeliveries, lastEventId, notificationCounts, timingsAfter } from '../store/metrics.js';
import { LANE_NAMES } from '../recipes/recipe.js';
import { jobCountRows, laneCounts } from '../store/views.js';
import { VERSION } from '../version.js';
import { noQuery } from './query.js';
import type { Route } from './router.js';

/** Events turned into timings per scrape at most; a backlog beyond that is taken at the next scrapes. */
const EVENTS_PER_SCRAPE = 5000;

const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];
const RUN_BUCKETS = [0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600];

/**
 * The metrics of one daemon, in their own registry (never prom-client's global
 * one: tests run several daemons in one process). Counts are read from the
 * store at each scrape; the wait and run time histograms are fed from the
 * events since the daemon started, so they count like any process's histogram.
 */
// prom-client's own index also loads its push gateway (http and https), its
// cluster aggregator and the default process metrics: about 17 MiB of memory
// for classes hopper does not use. The four it uses are loaded alone.
const load = createRequire(import.meta.url);
const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
type Registry = PromClient.Registry;

export function createMetrics(ctx: Context): { registry: Registry; collect(): void } {
  const registry = new Registry();
  const registers = [registry];
  const startedAt = ctx.clock.now();

  new Gauge({ name: 'hopper_info', help: 'hopper version (always 1)', labelNames: ['version'], registers }).set({ version: VERSION }, 1);
  new Gauge({ name: 'hopper_start_time_seconds', help: 'When this daemon started, seconds since the epoch', registers }).set(startedAt / 1000);
  const concurrency = new Gauge({ name: 'hopper_lane_concurrency', help: 'Jobs a lane runs at once', labelNames: ['lane'], registers });
  const queued = new Gauge({ name: 'hopper_queue_depth', help: 'Queued and retrying jobs per lane', labelNames: ['lane'], registers });
  const running = new Gauge({ name: 'hopper_running_jobs', help: 'Running jobs per lane', labelNames: ['lane'], registers });
  const jobs = new Gauge({ name: 'hopper_jobs', help: 'Jobs in the store per recipe and state (outcomes: succeeded, failed, canceled)', labelNames: ['recipe', 'state'], registers });
  const notifications = new Gauge({ name: 'hopper_notifications', help: 'Notifications per channel and state (dead: given up after retries)', labelNames: ['channel', 'state'], registers });
  const deliveryFailures = new Counter({ name: 'hopper_notification_delivery_failures_total', help: 'Tries to send a notification that failed, per channel', labelNames: ['channel'], registers });
  const freeDisk = new Gauge({ name: 'hopper_state_free_bytes', help: 'Free disk space of the file system holding state/', registers });
  const wait = new Histogram({
    name: 'hopper_job_wait_seconds',
    help: 'Time from a request being accepted to its job first starting (jobs started since this daemon started)',
    labelNames: ['recipe', 'lane'],
    buckets: WAIT_BUCKETS,
    registers,
  });
  const run = new Histogram({
    name: 'hopper_job_run_seconds',
    help: 'Run time of each attempt, by how it ended (attempts ended since this daemon started)',
    labelNames: ['recipe', 'lane', 'outcome'],
    buckets: RUN_BUCKETS,
    registers,
  });

  const dockerUp = new Gauge({ name: 'hopper_docker_up', help: 'Whether container steps can run: the engine answers (and, on Swarm, is a manager)', registers });
  const swarmNodes = ctx.config.docker.swarm
    ? new Gauge({ name: 'hopper_swarm_nodes', help: 'Swarm nodes the manager knows, by whether they are ready', labelNames: ['ready'], registers })
    : undefined;

  let cursor = lastEventId(ctx.store);

  /** Reads the store into the metrics; synchronous, so a scrape never sees a half-set metric. */
  const collect = (): void => {
    const counts = jobCountRows(ctx.store);
    const lanes = laneCounts(ctx.store, counts);
    for (const lane of LANE_NAMES) {
      concurrency.set({ lane }, ctx.config.lanes[lane].concurrency);
      queued.set({ lane }, lanes[lane].queued);
      running.set({ lane }, lanes[lane].running);
    }
    jobs.reset();
    // One row per lane: the two lanes of a recipe add up.
    for (const r of counts) jobs.inc({ recipe: r.recipe, state: r.state }, r.n);
    notifications.reset();
    for (const r of notificationCounts(ctx.store)) notifications.set({ channel: r.channel, state: r.state }, r.n);
    // Counted in the store, so a restart does not lose them (a drop, after retention, reads as a reset).
    deliveryFailures.reset();
    for (const channel of ['email', 'webhook'] as const) deliveryFailures.inc({ channel }, 0);
    for (const r of failedDeliveries(ctx.store)) deliveryFailures.inc({ channel: r.channel }, r.n);
    try {
      freeDisk.set(freeDiskBytes(ctx.paths.state));
    } catch {
      freeDisk.reset();
    }
    dockerUp.set(ctx.docker?.up ? 1 : 0);
    if (swarmNodes) {
      const nodes = ctx.docker?.swarm?.nodes ?? [];
      swarmNodes.set({ ready: 'true' }, nodes.filter((n) => n.ready).length);
      swarmNodes.set({ ready: 'false' }, nodes.filter((n) => !n.ready).length);
    }
    const t = timingsAfter(ctx.store, cursor, EVENTS_PER_SCRAPE);
    cursor = t.lastId;
    for (const x of t.timings) {
      if (x.kind === 'wait') wait.observe({ recipe: x.recipe, lane: x.lane }, x.seconds);
      else run.observe({ recipe: x.recipe, lane: x.lane, outcome: x.outcome }, x.seconds);
    }
  };
  return { registry, collect };
}

/** `GET /metrics`: Prometheus text format. */
export function metricsRoute(ctx: Context): Route {
  const metrics = createMetrics(ctx);
  return {
    methods: ['GET', 'HEAD'],
    path: '/metrics',
    async handler({ res, url }) {
      noQuery(url);
      metrics.collect();
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    },
  };
}
