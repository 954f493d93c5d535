// The bare loop: the trivial job's work (GET 1 KB from the loopback server into
// a file, zip it at level 6 with archiver, write an email) with the same
// libraries and nothing of hopper around it. Run as its own process:
//   node bare.mjs URL DIR N CONCURRENCY THREADS
// THREADS 0: all on the main thread; else that many worker threads share the
// work and the concurrency. Prints {"jobs": N, "seconds": S, "cpuMs": C} when done
// (C: the process's CPU time over the run, all threads, start-up not included).
import { ZipArchive } from 'archiver';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

async function oneJob(url, dir, i) {
  const work = path.join(dir, `job${i}`);
  mkdirSync(path.join(work, 'in'), { recursive: true });
  const res = await new Promise((resolve, reject) => http.get(url, resolve).on('error', reject));
  await pipeline(res, createWriteStream(path.join(work, 'in', 'data.csv')));
  const zip = new ZipArchive({ zlib: { level: 6 } });
  zip.directory(path.join(work, 'in'), false);
  const written = pipeline(zip, createWriteStream(path.join(work, 'out.zip')));
  await Promise.all([written, zip.finalize()]);
  writeFileSync(path.join(work, '.mail.tmp'), `From: hopper@localhost\nTo: someone@example.org\nSubject: ready\n\nhttp://localhost/${i}/out.zip\n`);
  renameSync(path.join(work, '.mail.tmp'), path.join(work, 'mail.eml'));
}

/** Runs jobs first..first+count-1, `concurrency` at once. */
async function loop(url, dir, first, count, concurrency) {
  let next = first;
  const end = first + count;
  const runner = async () => {
    while (next < end) await oneJob(url, dir, next++);
  };
  await Promise.all(Array.from({ length: concurrency }, runner));
}

if (!isMainThread) {
  const { url, dir, first, count, concurrency } = workerData;
  await loop(url, dir, first, count, concurrency);
  parentPort.postMessage('done');
} else {
  const [url, dir, n, concurrency, threads] = process.argv.slice(2);
  const total = Number(n);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  if (Number(threads) === 0) await loop(url, dir, 0, total, Number(concurrency));
  else {
    const k = Number(threads);
    await Promise.all(
      Array.from({ length: k }, (_, t) => {
        const first = Math.floor((total * t) / k);
        const count = Math.floor((total * (t + 1)) / k) - first;
        const w = new Worker(new URL(import.meta.url), { workerData: { url, dir, first, count, concurrency: Math.ceil(Number(concurrency) / k) } });
        return new Promise((resolve, reject) => {
          w.on('message', resolve);
          w.on('error', reject);
        });
      }),
    );
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ jobs: total, seconds: (performance.now() - t0) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 }));
}
