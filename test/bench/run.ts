// `npm run bench`: hopper's hot paths against a baseline measured in the same run.
// Not a test: it prints a table; record results in docs/benchmarks.md.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createDeflateRaw } from 'node:zlib';
import { parse } from 'yaml';
import { openStore } from '../../src/store/store.js';
import type { StepEnv } from '../../src/steps/step.js';
import { JobLog } from '../../src/steps/joblog.js';
import { zipStep } from '../../src/steps/zip.js';
import { fetchPagesStep } from '../../src/steps/fetchPages.js';
import { ANYWHERE } from '../../src/net/outbound.js';
import { httpServer } from '../helpers/http.js';
import { containerStep } from '../../src/steps/container.js';
import Docker from 'dockerode';
import { DockerEngine } from '../../src/docker/engine.js';
import { silentLogger } from '../../src/log.js';
import { dockerForTests, SOCKET, TEST_IMAGE } from '../helpers/docker.js';
import { fingerprint } from '../../src/recipes/recipe.js';
import { tempRoot, testDaemon } from '../helpers/daemon.js';
import { echoRecipe } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import os from 'node:os';
import { benchFolder, createCostUs } from './scratchfs.js';
import { celeryAvailable, quantile, runBare, runCelery, runHopper, runLatency, smallFileServer, type TrivialResult } from './trivial.js';

interface Row {
  name: string;
  unit: string;
  hopper: number;
  baseline: number;
  baselineName: string;
  /** Times and memory: lower is better, and the ratio is baseline ÷ hopper. */
  lower?: boolean;
}

const rows: Row[] = [];

function time<T>(fn: () => T): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function writeRequests(dir: string, n: number, prefix: string): void {
  // From a child process: a process writing into a folder it watches slows the watcher down.
  const script = `const fs=require('fs'),p=require('path');const [dir,n,prefix]=process.argv.slice(1);
    for(let i=0;i<+n;i++){const t=p.join(dir,'.'+prefix+i+'.tmp');fs.writeFileSync(t,'kind: request\\nrecipe: parked\\nid: '+prefix+i+'\\nnotBefore: "2999-01-01T00:00:00Z"\\nparams: { text: "n'+i+'" }\\n');fs.renameSync(t,p.join(dir,prefix+i+'.yaml'));}`;
  spawnSync(process.execPath, ['-e', script, dir, String(n), prefix], { stdio: 'inherit' });
}

/** Files in, jobs stored, files archived: the whole intake path, vs parse + rename alone. */
async function benchIntake(n: number): Promise<void> {
  const { root, cleanup } = tempRoot('hopper-bench-');
  const d = await testDaemon({ root, recipes: { parked: echoRecipe('parked') } });
  // A started daemon, its step threads loaded: what is timed is the intake alone.
  await d.warm;
  try {
    const count = (): number => (d.ctx.store.db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n;
    const ms = await timeAsync(async () => {
      writeRequests(d.inboxDir, n, 'b');
      await waitFor('all accepted', () => count() === n, 300_000, 20);
    });
    const plain = path.join(root, 'plain');
    const out = path.join(root, 'plain-out');
    mkdirSync(plain);
    mkdirSync(out);
    writeRequests(plain, n, 'p');
    const base = time(() => {
      for (const name of readdirSync(plain)) {
        parse(readFileSync(path.join(plain, name), 'utf8'));
        renameSync(path.join(plain, name), path.join(out, name));
      }
    });
    rows.push({ name: `intake of ${n} dropped requests`, unit: 'files/s', hopper: (n / ms) * 1000, baseline: (n / base) * 1000, baselineName: 'read + parse + rename, no watcher' });
  } finally {
    await d.cleanup();
    cleanup();
  }
}

/** store.jobs.accept (one transaction with intake record and event) vs a bare autocommit INSERT. */
function benchAccept(n: number): void {
  const { root, cleanup } = tempRoot('hopper-bench-');
  try {
    const store = openStore(path.join(root, 'hopper.db'));
    const source = echoRecipe('parked') as never;
    const ms = time(() => {
      for (let i = 0; i < n; i++) {
        const params = { text: `n${i}` };
        store.jobs.accept(
          { requestId: `r${i}`, requestHash: fingerprint(params), recipe: 'parked', recipeVersion: 'v', recipeSource: source, params, notify: {}, lane: 'fast', priority: 0, notBefore: null, sourceFile: `r${i}.yaml`, cacheKey: null },
          `key${i}`,
          Date.now(),
          () => [],
        );
      }
    });
    store.close();
    const db = new Database(path.join(root, 'plain.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // as durable as the store
    db.exec('CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)');
    const insert = db.prepare('INSERT INTO t VALUES (?, ?)');
    const body = JSON.stringify(source);
    const base = time(() => {
      for (let i = 0; i < n; i++) insert.run(`r${i}`, body);
    });
    db.close();
    rows.push({ name: `store: accept ${n} jobs`, unit: 'jobs/s', hopper: (n / ms) * 1000, baseline: (n / base) * 1000, baselineName: 'one autocommit INSERT each, synchronous=FULL' });
  } finally {
    cleanup();
  }
}

/** The zip step on text vs raw deflate of the same bytes (the floor for any zip writer). */
async function benchZip(mb: number): Promise<void> {
  const { root, cleanup } = tempRoot('hopper-bench-');
  try {
    const work = path.join(root, 'work');
    mkdirSync(path.join(work, 'in'), { recursive: true });
    const line = 'id,name,value,comment\n1,alpha,3.14159,"a line of ordinary CSV text that compresses the way data does"\n';
    const chunk = Buffer.from(line.repeat(Math.ceil((1024 * 1024) / line.length)));
    const file = path.join(work, 'in', 'data.csv');
    const ws = createWriteStream(file);
    for (let i = 0; i < mb; i++) ws.write(chunk);
    await new Promise<void>((r) => ws.end(r));
    const log = new JobLog(path.join(root, 'job.log'), []);
    const env = { workDir: work, scope: {}, signal: new AbortController().signal, log, secrets: [], job: { id: 'bench', attempt: 1, root }, resources: {}, docker: undefined, outbound: ANYWHERE };
    const ms = await timeAsync(() => zipStep({ kind: 'zip', from: 'in', to: 'out.zip', level: 6 }, env));
    await log.close();
    const base = await timeAsync(() => pipeline(Readable.from([readFileSync(file)]), createDeflateRaw({ level: 6 }), createWriteStream(path.join(root, 'raw.deflate'))));
    rows.push({ name: `zip step, ${mb} MiB of CSV, level 6`, unit: 'MiB/s', hopper: (mb / ms) * 1000, baseline: (mb / base) * 1000, baselineName: 'zlib deflateRaw, same level' });
  } finally {
    cleanup();
  }
}

/** `echo hi` as a container step: what the container rows run. */
const ECHO_STEP = { kind: 'container' as const, image: TEST_IMAGE, command: ['echo', 'hi'], entrypoint: undefined, env: {}, network: 'none' as const, capAdd: [], shmBytes: undefined, user: undefined, pull: 'never' as const, idleTimeoutMs: undefined, timeoutMs: undefined };

/**
 * A temp root with a work dir and a job log, and a step env for each run there
 * (a signal per run, as each job has its own: dockerode leaves a listener on it per request).
 */
async function echoBench<T>(fn: (work: string, env: (docker: StepEnv['docker'], id: string) => StepEnv) => Promise<T>): Promise<T> {
  const { root, cleanup } = tempRoot('hopper-bench-');
  const work = path.join(root, 'work');
  mkdirSync(work);
  const log = new JobLog(path.join(root, 'job.log'), []);
  try {
    return await fn(work, (docker, id) => ({ workDir: work, scope: {}, signal: new AbortController().signal, log, secrets: [], job: { id, attempt: 1, root }, resources: {}, docker, outbound: ANYWHERE }));
  } finally {
    await log.close();
    cleanup();
  }
}

/** The container step (prepare, create, attach, start, wait, remove) vs `docker run --rm` of the same. */
async function benchContainer(runs: number): Promise<void> {
  const docker = await dockerForTests();
  if (docker.missing) {
    console.log(`container benchmark skipped: ${docker.missing}`);
    return;
  }
  await echoBench(async (work, env) => {
    const engine = new DockerEngine(SOCKET, silentLogger());
    const access = { up: (await engine.check()) === 'up', client: new Docker({ socketPath: SOCKET }), socketPath: SOCKET };
    const ms = await timeAsync(async () => {
      for (let i = 0; i < runs; i++) await containerStep(ECHO_STEP, env(access, 'bench'));
    });
    const base = time(() => {
      for (let i = 0; i < runs; i++) spawnSync('docker', ['run', '--rm', '--network', 'none', '-v', `${work}:/work`, TEST_IMAGE, 'echo', 'hi']);
    });
    rows.push({ name: `container step, ${runs} runs of echo`, unit: 'runs/s', hopper: (runs / ms) * 1000, baseline: (runs / base) * 1000, baselineName: 'docker run --rm (CLI)' });
  });
}

/** One echo as a Swarm service (create, watch, logs, remove) vs the same step as a local container: medians of `runs` each. */
async function benchSwarm(runs: number): Promise<void> {
  const docker = await dockerForTests();
  if (docker.swarmMissing) {
    console.log(`swarm benchmark skipped: ${docker.swarmMissing}`);
    return;
  }
  await echoBench(async (_work, env) => {
    const client = new Docker({ socketPath: SOCKET });
    const median = async (swarm: { workDir: undefined; constraints: string[] } | undefined): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await timeAsync(() => containerStep(ECHO_STEP, env({ up: true, client, socketPath: SOCKET, swarm }, `bench${i}`))));
      return quantile(times, 0.5);
    };
    const local = await median(undefined);
    const swarm = await median({ workDir: undefined, constraints: [] });
    rows.push({ name: `container step on Swarm, median of ${runs} echo runs`, unit: 'ms', hopper: swarm, baseline: local, baselineName: 'the same step as a local container', lower: true });
  });
}

/** fetchPages to CSV from a local paged API vs GET + JSON.parse of the same pages (no CSV, no file). */
async function benchFetchPages(total: number, pageSize: number): Promise<void> {
  const body = (offset: number, limit: number): string => {
    const records = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, k) => ({ _id: offset + k, city: `City ${k % 97}`, note: k % 1000 === 0 ? 'a "quoted", odd\nvalue' : 'ok', amount: k / 4 }));
    return JSON.stringify({ result: { records, total } });
  };
  const pages = new Map<number, string>();
  for (let offset = 0; offset < total; offset += pageSize) pages.set(offset, body(offset, pageSize));
  const api = await httpServer((req, res) => {
    const offset = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('offset'));
    res.writeHead(200, { 'content-type': 'application/json' }).end(pages.get(offset) ?? body(offset, pageSize));
  });
  const { root, cleanup } = tempRoot('hopper-bench-');
  try {
    const work = path.join(root, 'work');
    mkdirSync(work);
    const log = new JobLog(path.join(root, 'job.log'), []);
    const env = { workDir: work, scope: {}, signal: new AbortController().signal, log, secrets: [], job: { id: 'bench', attempt: 1, root }, resources: {}, docker: undefined, outbound: ANYWHERE };
    const step = { kind: 'fetchPages' as const, url: api.url, query: {}, pageSize, records: 'result.records', total: 'result.total', limit: undefined, offset: undefined, to: 'rows.csv', format: undefined, headers: {}, timeoutMs: 60_000, maxPageBytes: 64 * 1024 * 1024 };
    const ms = await timeAsync(() => fetchPagesStep(step, env));
    await log.close();
    const base = await timeAsync(async () => {
      for (let offset = 0; offset < total; offset += pageSize) {
        const text = await new Promise<string>((resolve, reject) => {
          http.get(`${api.url}/?offset=${offset}&limit=${pageSize}`, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          }).on('error', reject);
        });
        JSON.parse(text);
      }
    });
    rows.push({ name: `fetchPages, ${total} rows in pages of ${pageSize}`, unit: 'rows/s', hopper: (total / ms) * 1000, baseline: (total / base) * 1000, baselineName: 'GET + JSON.parse of each page, no CSV' });
  } finally {
    await api.close();
    cleanup();
  }
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

/** The median of a few runs' figures (of an even count, the lower middle one). */
const median = (values: readonly number[]): number => quantile(values, 0.5);

const range = (values: readonly number[]): string => `${fmt(Math.min(...values))}-${fmt(Math.max(...values))}`;

/**
 * 1,000 trivial jobs from drop to last email: hopper against Celery + Redis
 * on the same work, and against the bare loop (the same work with the same
 * libraries and nothing of hopper), on one thread and on one per core. Both
 * hopper and Celery are measured just started and warm (after `warmup` jobs
 * of the same kind, as a daemon that has run for a while is), in `rounds`
 * rounds whose order alternates (hopper first, then Celery first), and each
 * row shows the medians. One run each swung by a tenth or more with the
 * machine's own speed from minute to minute (Celery alone did 416-534 jobs/s
 * over a day), enough to turn a ratio around; the rounds and the medians keep
 * both sides under the same swings. HOPPER_BENCH_ROUNDS sets `rounds`.
 */
async function benchTrivial(n: number, concurrency: number, warmup = 300, rounds = Number(process.env.HOPPER_BENCH_ROUNDS ?? 3)): Promise<void> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`HOPPER_BENCH_ROUNDS must be a whole number of rounds, at least 1, not ${process.env.HOPPER_BENCH_ROUNDS}`);
  const files = await smallFileServer();
  try {
    // hopper start runs its dist/ build, as `npm start` and the unit do.
    spawnSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
    const missing = celeryAvailable();
    if (missing) console.log(`Celery + Redis peer not run: ${missing}`);
    const hopper = { cold: [] as TrivialResult[], warm: [] as TrivialResult[] };
    const celery = { cold: [] as number[], warm: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const runHopperRound = async (): Promise<void> => {
        // Only the first just-started run is profiled (HOPPER_BENCH_PROFILE): one profile is what is read.
        hopper.cold.push(await runHopper(n, concurrency, files.url, { profileDir: r === 0 ? process.env.HOPPER_BENCH_PROFILE : undefined }));
        hopper.warm.push(await runHopper(n, concurrency, files.url, { warmup }));
      };
      const runCeleryRound = async (): Promise<void> => {
        if (missing) return;
        celery.cold.push((await runCelery(n, concurrency, files.url)).jobsPerSecond);
        celery.warm.push((await runCelery(n, concurrency, files.url, warmup)).jobsPerSecond);
      };
      if (r % 2 === 0) {
        await runHopperRound();
        await runCeleryRound();
      } else {
        await runCeleryRound();
        await runHopperRound();
      }
      const [cold, warm] = [hopper.cold[r], hopper.warm[r]];
      for (const [what, h] of [['just started', cold], [`warm, after ${warmup}`, warm]] as const) {
        console.log(`round ${r + 1}: hopper (${what}): ${n} trivial jobs in ${h.seconds.toFixed(2)} s (${fmt(h.jobsPerSecond)} jobs/s), daemon CPU ${h.cpuMsPerJob?.toFixed(2)} ms per job, wrote ${h.writtenKiBPerJob?.syscalls.toFixed(0)} KiB per job, peak RSS ${h.peakRssMiB?.toFixed(0)} MiB`);
      }
      if (!missing) console.log(`round ${r + 1}: celery: ${fmt(celery.cold[r])} jobs/s just started (hopper ${(cold.jobsPerSecond / celery.cold[r]).toFixed(2)}x), ${fmt(celery.warm[r])} warm (hopper ${(warm.jobsPerSecond / celery.warm[r]).toFixed(2)}x)`);
    }
    const cold = median(hopper.cold.map((h) => h.jobsPerSecond));
    const warm = median(hopper.warm.map((h) => h.jobsPerSecond));
    const warmCpu = median(hopper.warm.map((h) => h.cpuMsPerJob!));
    const of = rounds > 1 ? `, medians of ${rounds} rounds` : '';
    console.log(`hopper: just started ${range(hopper.cold.map((h) => h.jobsPerSecond))} jobs/s, warm ${range(hopper.warm.map((h) => h.jobsPerSecond))} over ${rounds} round(s)`);
    const name = `${n} trivial jobs from drop (lane of ${concurrency})`;
    const warmName = `${name}, warm`;
    const threads = os.availableParallelism();
    let bareCpu = NaN;
    for (const t of [0, threads]) {
      const bare = await runBare(n, concurrency, files.url, t);
      if (t === 0) bareCpu = bare.cpuMsPerJob!;
      console.log(`bare loop, ${t === 0 ? 'main thread' : `${t} threads`}: ${n} jobs in ${bare.seconds.toFixed(2)} s, ${bare.cpuMsPerJob?.toFixed(2)} ms of CPU per job`);
      rows.push({ name, unit: 'jobs/s', hopper: cold, baseline: bare.jobsPerSecond, baselineName: `the bare loop, ${t === 0 ? 'on one thread' : `on ${t} worker threads`} (same work, no hopper)` });
    }
    rows.push({ name: 'daemon CPU per trivial job beyond the work, warm', unit: 'ms', hopper: warmCpu - bareCpu, baseline: 2, baselineName: `target: 2 ms (hopper's ${warmCpu.toFixed(2)} less the bare loop's ${bareCpu.toFixed(2)})`, lower: true });
    if (missing) return;
    console.log(`celery: just started ${range(celery.cold)} jobs/s, warm ${range(celery.warm)}`);
    const peer = `Celery + Redis, ${concurrency} prefork workers, acks_late, prefetch 4`;
    rows.push({ name, unit: 'jobs/s', hopper: cold, baseline: median(celery.cold), baselineName: `${peer} (both just started${of})` });
    rows.push({ name: warmName, unit: 'jobs/s', hopper: warm, baseline: median(celery.warm), baselineName: `${peer} (both after ${warmup} jobs${of})` });
  } finally {
    await files.close();
  }
}

/** Drop-to-running of one request renamed into an idle inbox, 50 times, against issue 12's targets. */
async function benchLatency(samples: number): Promise<void> {
  const files = await smallFileServer();
  try {
    spawnSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
    const times = await runLatency(samples, files.url);
    const name = `drop to running, idle inbox (${samples} drops)`;
    rows.push({ name: `${name}, p50`, unit: 'ms', hopper: quantile(times, 0.5), baseline: 50, baselineName: 'target: 50 ms', lower: true });
    rows.push({ name: `${name}, p95`, unit: 'ms', hopper: quantile(times, 0.95), baseline: 200, baselineName: 'target: 200 ms', lower: true });
  } finally {
    await files.close();
  }
}

/** 10,000 request files dropped at once: rate, the daemon's peak memory, and /status answer times meanwhile. */
async function benchBurst(n: number, concurrency: number): Promise<void> {
  const files = await smallFileServer();
  try {
    spawnSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
    const h = await runHopper(n, concurrency, files.url, { watch: true });
    console.log(`hopper: ${n} trivial jobs in ${h.seconds.toFixed(2)} s, daemon CPU ${h.cpuMsPerJob?.toFixed(2)} ms per job`);
    rows.push({ name: `${n} files at once: jobs/s`, unit: 'jobs/s', hopper: h.jobsPerSecond, baseline: 500, baselineName: 'target: 500 jobs/s' });
    rows.push({ name: `${n} files at once: daemon peak RSS`, unit: 'MiB', hopper: h.peakRssMiB!, baseline: 250e6 / 2 ** 20, baselineName: 'target: 250 MB', lower: true });
    rows.push({ name: `${n} files at once: GET /status p99`, unit: 'ms', hopper: h.statusP99Ms!, baseline: 20, baselineName: 'target: 20 ms', lower: true });
  } finally {
    await files.close();
  }
}

// `npm run bench -- trivial intake`: only the rows named (default: all).
const only = new Set(process.argv.slice(2));
const wanted = (name: string): boolean => only.size === 0 || only.has(name);
const usualTmp = os.tmpdir();
const folder = benchFolder();
const where = `folders: ${folder.what} (${folder.dir}); a file create costs ${createCostUs(folder.dir).toFixed(0)} µs there, ${createCostUs(usualTmp).toFixed(0)} µs in ${usualTmp}`;
console.log(where);
if (wanted('accept')) await benchAccept(5000);
if (wanted('zip')) await benchZip(64);
if (wanted('intake')) await benchIntake(500);
if (wanted('container')) await benchContainer(10);
if (wanted('swarm')) await benchSwarm(20);
if (wanted('fetchPages')) await benchFetchPages(200_000, 5000);
if (wanted('trivial')) await benchTrivial(1000, 8);
if (wanted('latency')) await benchLatency(50);
if (wanted('burst')) await benchBurst(10_000, 8);

const header = ['benchmark', 'hopper', 'baseline', 'ratio', 'baseline is'];
const table = rows.map((r) => [r.name, `${fmt(r.hopper)} ${r.unit}`, `${fmt(r.baseline)} ${r.unit}`, (r.lower ? r.baseline / r.hopper : r.hopper / r.baseline).toFixed(2), r.baselineName]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const t of table) console.log(line(t));
console.log(`\nratio: hopper ÷ baseline (baseline ÷ hopper for times and memory): above 1 is better than the baseline.`);
console.log(`node ${process.version}, ${new Date().toISOString()}`);
console.log(where);
folder.close();

