// "1,000 trivial jobs from drop": hopper against Celery + Redis doing the same
// work in the same run. Each job fetches 1 KB from a loopback file server, zips
// it at level 6 and writes an email (.eml). Both run as their own processes, as
// in production; the clock runs from the first file dropped (or task sent) to
// the last email written.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { tempRoot } from '../helpers/daemon.js';
import { httpServer } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '..', '..');
const PYTHON = '/usr/bin/python3';
const TICKS_PER_SECOND = 100;

export interface TrivialResult {
  jobsPerSecond: number;
  seconds: number;
  /** Main-process CPU per job (hopper: the daemon; the bare loop: its process; Celery: not measured). */
  cpuMsPerJob?: number;
  /** hopper: the daemon's peak resident memory (VmHWM), MiB. */
  peakRssMiB?: number;
  /** hopper: what the daemon wrote per job (KiB): syscall bytes (`wchar`) and bytes bound for the disk (`write_bytes`). */
  writtenKiBPerJob?: { syscalls: number; disk: number };
  /** hopper, when asked to watch: the 99th percentile of GET /status answer times while the jobs ran, ms. */
  statusP99Ms?: number;
}

/** The q-quantile (0..1) of `values`. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

function peakRssMiB(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Bytes a process has written so far: through write calls, and bound for the disk. */
function written(pid: number): { syscalls: number; disk: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}: (\\d+)`).exec(io)?.[1] ?? NaN);
  return { syscalls: field('wchar'), disk: field('write_bytes') };
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000;
}

function emails(dir: string): number {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.eml')).length;
  } catch {
    return 0;
  }
}

/** Resolves (with what it printed so far) once `child` prints a line matching `ready` (bounded). */
function waitForOutput(child: ChildProcess, ready: RegExp, what: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (c: Buffer): void => {
      seen += c.toString();
      if (ready.test(seen)) {
        clearTimeout(timer);
        // Drained from now on, not kept: a daemon's log grows with every job.
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve(seen);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready:\n${seen.slice(-2000)}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Drops `n` requests into `inbox` from another process (write elsewhere, rename in). */
function dropRequests(inbox: string, n: number, url: string, prefix = 't'): Promise<void> {
  const script = `const fs=require('fs'),p=require('path');const [dir,n,url,pre]=process.argv.slice(1);
    for(let i=0;i<+n;i++){const t=p.join(dir,'.'+pre+i+'.tmp');fs.writeFileSync(t,'kind: request\\nrecipe: trivial\\nparams: { url: "'+url+'" }\\nnotify: { email: someone@example.org }\\n');fs.renameSync(t,p.join(dir,pre+String(i).padStart(6,'0')+'.yaml'));}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, inbox, String(n), url, prefix], { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
  });
}

const TRIVIAL_RECIPE = {
  kind: 'recipe',
  name: 'trivial',
  params: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
  steps: [{ fetch: { url: '{{params.url}}', to: 'in/data.csv' } }, { zip: { from: 'in', to: 'out.zip', level: 6 } }],
  output: { files: ['out.zip'] },
};

interface StartedHopper {
  root: string;
  daemon: ChildProcess;
  /** Base URL of its HTTP endpoint. */
  http: string;
  stop(): Promise<void>;
}

/** `hopper start` in its own process (the dist build, run as npm start runs it), on the trivial recipe, fast lane of `concurrency`. */
async function startHopper(concurrency: number, profileDir?: string): Promise<StartedHopper> {
  const { root, cleanup } = tempRoot('hopper-trivial-');
  mkdirSync(path.join(root, 'recipes'), { recursive: true });
  writeFileSync(path.join(root, 'recipes', 'trivial.yaml'), stringify(TRIVIAL_RECIPE));
  // HOPPER_BENCH_THREADS: the daemon's `threads` (default: its own default, cores - 1).
  const threads = process.env.HOPPER_BENCH_THREADS ? { threads: Number(process.env.HOPPER_BENCH_THREADS) } : {};
  writeFileSync(path.join(root, 'hopper.yaml'), stringify({ lanes: { fast: { concurrency } }, outbound: { allow: ['127.0.0.1'] }, http: { port: 0 }, ...threads }));
  // HOPPER_BENCH_NODE_ARGS: more node flags for the daemon (a heap snapshot on a signal, say).
  const args = ['--max-semi-space-size=4', ...(process.env.HOPPER_BENCH_NODE_ARGS?.split(' ') ?? []), ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), path.join(REPO, 'src', 'cli', 'bin.mjs'), 'start', '--root', root];
  // Run as npm start and the systemd unit run it.
  const daemon = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOPPER_ROOT: '', MALLOC_ARENA_MAX: '2' } });
  try {
    const out = await waitForOutput(daemon, /hopper started/, 'hopper');
    // HOPPER_BENCH_DAEMON_LOG=FILE: what the daemon prints from then on is kept there (--trace-gc, say).
    if (process.env.HOPPER_BENCH_DAEMON_LOG) {
      const log = createWriteStream(process.env.HOPPER_BENCH_DAEMON_LOG);
      daemon.stdout!.pipe(log);
      daemon.stderr!.pipe(log);
    }
    const http = /"http":"(http:\/\/[^"]+)"/.exec(out)?.[1];
    if (!http) throw new Error(`no HTTP address in hopper's start line:\n${out.slice(-1000)}`);
    return {
      root,
      daemon,
      http,
      stop: async () => {
        await stopChild(daemon);
        // HOPPER_BENCH_KEEP=1: the root stays, to look into (its path is printed).
        if (process.env.HOPPER_BENCH_KEEP === '1') console.log(`kept ${root}`);
        else cleanup();
      },
    };
  } catch (err) {
    await stopChild(daemon);
    cleanup();
    throw err;
  }
}

/**
 * Asks GET /status every `everyMs` until stopped; returns the answer times (ms).
 * From a process of its own: this one serves the files the jobs fetch and
 * reads outbox/ (up to 10,000 names) every 10 ms, and an answer that arrived
 * while it was busy was counted late here. (Measured side by side with a
 * separate poller: this process's p99 came out 0-8 ms above the daemon's.)
 */
function watchStatus(base: string, everyMs = 50): { stop(): Promise<number[]>; kill(): void } {
  // Not counted: the first fetch sets up the poller's HTTP client and connection
  // (30-50 ms here), which is the poller's own start, not the daemon's answer.
  // A request that fails is counted, not a reason to stop polling.
  const script = `const [base, every] = process.argv.slice(1); const times = []; let failures = 0; let stopped = false;
    process.on('message', () => (stopped = true));
    (async () => {
      await (await fetch(base + '/status')).arrayBuffer();
      while (!stopped) {
        const t0 = performance.now();
        try {
          await (await fetch(base + '/status')).arrayBuffer();
          times.push(performance.now() - t0);
        } catch {
          failures++;
        }
        await new Promise((resolve) => setTimeout(resolve, Number(every)));
      }
      process.send({ times, failures }, () => process.exit(0));
    })().catch((err) => { console.error(err); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script, base, String(everyMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('error', () => {}); // a send after the poller is gone: its exit says what happened
  const answer = new Promise<{ times: number[]; failures: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { times: number[]; failures: number }));
    child.once('exit', (code) => reject(new Error(`the /status poller exited (${code}) before it answered`)));
  });
  answer.catch(() => {}); // read by stop(); a bench that fails before then says its own error
  return {
    stop: async () => {
      if (child.connected) child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        const { times, failures } = await answer;
        if (failures > 0) throw new Error(`${failures} of ${times.length + failures} GET /status requests failed while the jobs ran`);
        return times;
      } finally {
        clearTimeout(timer);
      }
    },
    kill: () => void child.kill('SIGKILL'),
  };
}

/** `n` trivial requests dropped at once into a hopper of lane `concurrency`, from the first drop to the last email. */
export async function runHopper(n: number, concurrency: number, url: string, o: { profileDir?: string; watch?: boolean; warmup?: number } = {}): Promise<TrivialResult> {
  const h = await startHopper(concurrency, o.profileDir);
  const outbox = path.join(h.root, 'outbox');
  let watcher: ReturnType<typeof watchStatus> | undefined;
  try {
    const warmup = o.warmup ?? 0;
    if (warmup > 0) {
      await dropRequests(path.join(h.root, 'inbox'), warmup, url, 'w');
      await waitFor('the warm-up emails', () => emails(outbox) >= warmup, 600_000, 10);
    }
    const cpu0 = cpuMs(h.daemon.pid!);
    const io0 = written(h.daemon.pid!);
    watcher = o.watch ? watchStatus(h.http) : undefined;
    const t0 = performance.now();
    await dropRequests(path.join(h.root, 'inbox'), n, url);
    await waitFor('every email', () => emails(outbox) >= warmup + n, 600_000, 10);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuMs(h.daemon.pid!) - cpu0;
    const io = written(h.daemon.pid!);
    const statusTimes = await watcher?.stop();
    watcher = undefined;
    return {
      jobsPerSecond: n / seconds,
      seconds,
      cpuMsPerJob: cpu / n,
      writtenKiBPerJob: { syscalls: (io.syscalls - io0.syscalls) / 1024 / n, disk: (io.disk - io0.disk) / 1024 / n },
      peakRssMiB: peakRssMiB(h.daemon.pid!),
      ...(statusTimes ? { statusP99Ms: quantile(statusTimes, 0.99) } : {}),
    };
  } finally {
    watcher?.kill();
    await h.stop();
  }
}

/**
 * Drop-to-running of one request renamed into an idle inbox, `samples` times:
 * each is dropped once the one before has ended. Returns the times (ms), from
 * the rename to the job's `started_at` (the same clock: one machine).
 */
export async function runLatency(samples: number, url: string): Promise<number[]> {
  const h = await startHopper(8);
  const inbox = path.join(h.root, 'inbox');
  const db = new Database(path.join(h.root, 'state', 'hopper.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare<[string], { started: number | null; state: string }>('SELECT started_at AS started, state FROM jobs WHERE request_id = ?');
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const id = `latency-${i}`;
      const tmp = path.join(inbox, `.${id}.tmp`);
      writeFileSync(tmp, `kind: request\nrecipe: trivial\nid: ${id}\nparams: { url: "${url}" }\n`);
      const dropped = Date.now();
      renameSync(tmp, path.join(inbox, `${id}.yaml`));
      const started = await waitFor(`job ${id} to start`, () => row.get(id)?.started ?? undefined, 30_000, 1);
      times.push(started - dropped);
      await waitFor(`job ${id} to end`, () => ['succeeded', 'failed'].includes(row.get(id)?.state ?? ''), 30_000, 5);
    }
    return times;
  } finally {
    db.close();
    await h.stop();
  }
}

/** The bare loop (bare.mjs): the same work with the same libraries and nothing of hopper, on `threads` worker threads (0: the main one). */
export async function runBare(n: number, concurrency: number, url: string, threads: number): Promise<TrivialResult> {
  const { root, cleanup } = tempRoot('hopper-bare-');
  try {
    const child = spawn(process.execPath, [path.join(here, 'bare.mjs'), url, root, String(n), String(concurrency), String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the bare loop exited ${code}`);
    const { seconds, cpuMs } = JSON.parse(out) as { seconds: number; cpuMs: number };
    return { jobsPerSecond: n / seconds, seconds, cpuMsPerJob: cpuMs / n };
  } finally {
    cleanup();
  }
}

/** Whether Debian's Celery, redis-py and Redis are here; installs them when root and they are not. */
export function celeryAvailable(): string | undefined {
  const ok = (): boolean => existsSync('/usr/bin/redis-server') && spawnSync(PYTHON, ['-c', 'import celery, redis'], { stdio: 'ignore' }).status === 0;
  if (ok()) return undefined;
  if (process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', 'python3-celery', 'python3-redis', 'redis-server'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (ok()) return undefined;
  }
  return 'the peer needs Debian packages python3-celery, python3-redis and redis-server (apt-get install them)';
}

/** The same work as a Celery task: a worker of `concurrency` prefork processes, acks_late, prefetch 4, Redis on a port of its own. */
export async function runCelery(n: number, concurrency: number, url: string, warmup = 0): Promise<TrivialResult> {
  const { root, cleanup } = tempRoot('hopper-celery-');
  for (const dir of ['outputs', 'outbox']) mkdirSync(path.join(root, dir));
  const port = await freePort();
  const redis = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const env = { ...process.env, BENCH_BROKER: `redis://127.0.0.1:${port}/0`, PYTHONPATH: path.join(here, 'celery') };
  let worker: ChildProcess | undefined;
  try {
    await waitForOutput(redis, /Ready to accept connections/, 'redis-server');
    worker = spawn(PYTHON, ['-m', 'celery', '-A', 'tasks', 'worker', `--concurrency=${concurrency}`, '--pool=prefork', '--loglevel=INFO', '--without-gossip', '--without-mingle', '--without-heartbeat'], {
      cwd: path.join(here, 'celery'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForOutput(worker, /ready\./, 'the celery worker');
    const produce = (count: number, prefix: string): void => {
      const produced = spawnSync(PYTHON, [path.join(here, 'celery', 'produce.py'), url, root, String(count), prefix], { cwd: path.join(here, 'celery'), env, stdio: 'inherit' });
      if (produced.status !== 0) throw new Error('the celery producer failed');
    };
    if (warmup > 0) {
      produce(warmup, 'w');
      await waitFor('the warm-up emails', () => emails(path.join(root, 'outbox')) >= warmup, 600_000, 10);
    }
    const t0 = performance.now();
    produce(n, 'c');
    await waitFor('every email', () => emails(path.join(root, 'outbox')) >= warmup + n, 600_000, 10);
    const seconds = (performance.now() - t0) / 1000;
    return { jobsPerSecond: n / seconds, seconds };
  } finally {
    if (worker) await stopChild(worker);
    await stopChild(redis);
    cleanup();
  }
}

/** A loopback file server with a 1 KB CSV. */
export async function smallFileServer(): Promise<{ url: string; close(): Promise<void> }> {
  const body = Buffer.from(`id,value\n${Array.from({ length: 100 }, (_, i) => `${i},${(i * 7919) % 1000}`).join('\n')}\n`.padEnd(1024, ' '));
  const server = await httpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/csv', 'content-length': body.length });
    res.end(body);
  });
  return { url: `${server.url}/data.csv`, close: () => server.close() };
}
