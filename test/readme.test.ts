// The README and docs/ tell the truth: every example in them is found mechanically (test/helpers/readme.ts)
// and run here against real things: a daemon in a temp root with the shipped recipes, an HTTP
// server standing in for example.org and every other host, an S3 server, Docker. Examples that
// cannot run here (installing on a server) are named with the reason, and what they name is checked.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parse, stringify } from 'yaml';
import { initRoot } from '../src/cli/init.js';
import { parseConfig } from '../src/config/config.js';
import type { Job } from '../src/store/jobs.js';
import { hopper, REPO, type CliResult } from './helpers/cli.js';
import { ended, tempRoot, testDaemon, type TestDaemon } from './helpers/daemon.js';
import { dockerForTests } from './helpers/docker.js';
import { httpServer, type TestServer } from './helpers/http.js';
import { emlFiles, readEml } from './helpers/mail.js';
import { commandsOf, readmeExamples, ROOTS, unknownKeys, words, type Example } from './helpers/readme.js';
import { s3Server, type TestS3 } from './helpers/s3.js';
import { waitFor } from './helpers/wait.js';

/**
 * The README and the reference pages in docs/, each read on its own. (docs/benchmarks.md is a
 * record of measurements: its commands are the benchmark, run by `npm run bench`, not here.)
 */
const PAGES = ['README.md', ...readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md') && f !== 'benchmarks.md').sort().map((f) => `docs/${f}`)];
const TEXTS = new Map(PAGES.map((p) => [p, readFileSync(path.join(REPO, p), 'utf8')]));
/** Which page each example is on, for its name and its failure. */
const PAGE_OF = new WeakMap<Example, string>();
function examplesOf(page: string, text: string): Example[] {
  const found = readmeExamples(text);
  for (const ex of found) PAGE_OF.set(ex, page);
  return found;
}
const EXAMPLES = PAGES.flatMap((p) => examplesOf(p, TEXTS.get(p)!));
const PKG = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string>; dependencies: Record<string, string>; engines: { node: string } };
const NODE_MAJOR = Number(/\d+/.exec(PKG.engines.node)?.[0]);
const docker = await dockerForTests();
/** The README's image block runs the docker command itself (the engine alone is what dockerForTests asks). */
const dockerCommand = spawnSync('docker', ['version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

/**
 * The sample rejection in the README, made real: the request example with the two mistakes
 * the sample names (a URL that is not a URI, on line 4: a space in it; `recipie:` on line 6).
 * What hopper writes for it must be the sample, line for line.
 */
const EQUIVALENT_BAD_REQUEST = `kind: request
recipe: package-url
params:
  url: https://data.example.org/big file.csv
notify: { email: someone@example.org }
recipie: package-url
`;

/** Values for the placeholders examples leave to the reader. Hosts become the local server (below). */
const PLACEHOLDERS: Record<string, string> = { URL: 'https://example.org/data.csv', HOST: 'example.org', ID: 'resource-4711', COMMAND: 'status' };

/** Examples that cannot run here, and why (the rest of what they name is checked). */
const NOT_RUN = {
  'apt-get': 'installs system packages as root, from the network',
  nodejs: 'downloads and unpacks Node from nodejs.org into /usr/local (no network here)',
  git: 'clones "<this repository>" (the reader\'s URL) onto a server',
  mv: 'moves a file into the server\'s /etc (a folder systemd-tmpfiles makes there)',
  chgrp: 'the hopper group exists only on a server after systemd-sysusers',
  'systemd-sysusers': 'creates a system user on the host',
  'systemd-tmpfiles': 'creates folders and files on the host',
  systemctl: 'installs and starts a system service on the host',
  'npm ci': 'reinstalls node_modules of this shared checkout (and compiles better-sqlite3: about a minute)',
  'npm start': 'builds dist/ in this shared checkout and serves on port 8765 of this machine (the daemon itself runs in this file)',
  'npm test': 'the whole suite, this file included (other people share this machine)',
  cluster: 'runs on a host of a cluster, named by its prompt',
} as const;

// ---- what the examples run against ----

interface Env {
  scratch: string;
  root: string;
  d: TestDaemon;
  files: TestServer;
  hooks: Array<{ url: string; event: string; body: string }>;
  s3: TestS3;
}
let env: Env;
let dropCount = 0;

/** Stands in for every host an example names: files, a CKAN datastore_search API, 404 for /missing, webhooks. */
function standIn(hooks: Env['hooks']): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hooks.push({ url: url.pathname, event: String(req.headers['x-hopper-event']), body });
        res.writeHead(200).end();
      });
    } else if (url.pathname.endsWith('/datastore_search')) {
      const total = 1500;
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const records = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, k) => ({ _id: offset + k + 1, city: `City ${(offset + k) % 7}` }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ success: true, result: { total, records } }));
    } else if (url.pathname.endsWith('/missing')) res.writeHead(404).end('not here');
    else res.writeHead(200, { 'content-type': 'text/csv' }).end(`id,path\n1,${url.pathname}\n`);
  };
}

/** Fills the reader's placeholders; fails on one this test has no value for. */
function fill(text: string, values: Record<string, string> = {}): string {
  const all = { ...PLACEHOLDERS, ...values };
  const filled = text.replace(/(?<![\w-])([A-Z][A-Z0-9_]+)(\.\.\.)?(?![\w])/g, (m, name: string) => all[name] ?? all[m] ?? m);
  const left = /(?<![\w-])[A-Z][A-Z0-9_]+(?![\w])/.exec(filled);
  assert.equal(left, null, `the example has a placeholder this test has no value for: ${left?.[0]} (in: ${text})`);
  return filled;
}

/** Every host an example names becomes the local stand-in server (http, 127.0.0.1, which outbound.allow names). */
function localUrls(text: string): string {
  return text.replace(/https?:\/\/(?!127\.0\.0\.1[:/])[A-Za-z0-9.-]+(?::\d+)?/g, env.files.url);
}

/** A shell line as a user runs it, in a process group killed when it overstays. */
function sh(command: string, o: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; shell?: string[]; uid?: number; gid?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [bin, ...flags] = o.shell ?? ['sh', '-c'];
    const child = spawn(bin, [...flags, command], {
      cwd: o.cwd ?? REPO,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      reject(new Error(`"${command}" did not finish in ${o.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const shown = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
/** The line that says why, for the first line of a failure. */
const gist = (r: CliResult): string => `exit ${r.code}: ${[...r.stderr.split('\n'), ...r.stdout.split('\n')].filter((l) => /\S/.test(l) && !/^\s*(at |>|\^)/.test(l)).find((l) => /hopper:|error|unknown|not /i.test(l)) ?? ''}`;

/** The job a dropped or submitted file became, once it ended; fails at once when hopper rejected the file. */
async function settled(fileName: string, find: () => Job | undefined, timeoutMs = 30_000): Promise<Job> {
  // Taken first (archived or rejected): an earlier job of the same request id is not this file's answer.
  await waitFor(`hopper to take ${fileName}`, () => !existsSync(path.join(env.d.inboxDir, fileName)), timeoutMs, 20);
  const why = path.join(env.d.inboxDir, 'rejected', `${fileName}.error.txt`);
  if (existsSync(why)) {
    const text = readFileSync(why, 'utf8');
    assert.fail(`hopper rejected ${fileName}: ${text.split('\n').find((l) => /^\S+:\d+:\d+: /.test(l)) ?? ''}\n${text}`);
  }
  return waitFor(`the job of ${fileName} to end`, () => {
    const job = find();
    return job && ended(job) ? job : undefined;
  }, timeoutMs, 50);
}

/** The email about a succeeded job, with its download link, in outbox/. */
async function emailTo(address: string, job: Job): Promise<void> {
  const outbox = path.join(env.root, 'outbox');
  const mail = await waitFor(`an email to ${address} about ${job.id}`, () => emlFiles(outbox).map(readEml).find((m) => path.basename(m.file).includes(job.id) && m.headers.to?.includes(address)), 10_000);
  assert.match(mail.body, /https?:\/\/\S+\/downloads\/\S+/, `the email has the download link:\n${mail.body}`);
}

/** The recipe an example names, as shipped (recipes/NAME.yaml). */
function shippedRecipe(name: string): { steps?: Array<Record<string, unknown>>; output?: { upload?: string } } | undefined {
  const file = path.join(REPO, 'recipes', `${name}.yaml`);
  return existsSync(file) ? (parse(readFileSync(file, 'utf8')) as ReturnType<typeof shippedRecipe>) : undefined;
}

function needsDocker(ex: Example): boolean {
  if (ex.kind === 'cli') {
    const args = words(ex.command).slice(4);
    return args[0] === 'submit' && !!shippedRecipe(args[1])?.steps?.some((s) => 'container' in s);
  }
  return ex.kind === 'shell' && ex.lines.some((l) => /\bdocker (import|run)\b/.test(l));
}

// ---- the checks, one per kind ----

async function checkCli(ex: Extract<Example, { kind: 'cli' }>): Promise<void> {
  const args0 = words(ex.command).slice(4);
  const values: Record<string, string> = {};
  if (args0[0] === 'validate') {
    // FILE...: the README's own files (requests, cancels), as a reader would save them.
    const dir = path.join(env.scratch, `validate-${++dropCount}`);
    mkdirSync(dir, { recursive: true });
    const files = EXAMPLES.filter((e) => e.kind === 'file').map((e) => {
      const f = path.join(dir, `line-${e.line}.yaml`);
      writeFileSync(f, localUrls(fill(e.text, { ID: 'order-4711' })));
      return f;
    });
    assert.ok(files.length > 0, 'the README has files to validate');
    values.FILE = files.join(' ');
  }
  const command = localUrls(fill(ex.command, values));
  const args = words(command).slice(4);
  const r = await sh(command, { env: { HOPPER_ROOT: env.root }, timeoutMs: 90_000 });
  assert.equal(r.code, 0, `${gist(r)}\n${command}\n${shown(r)}`);
  const sub = args[0];
  if (sub === 'validate') assert.equal(r.stdout.match(/: ok \(/g)?.length, values.FILE.split(' ').length, r.stdout);
  if (sub === 'schema') assert.equal(typeof JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))), 'object');
  if (sub !== 'submit') return;

  const id = /submitted (\S+)/.exec(r.stdout)?.[1];
  assert.ok(id, `submit says what it submitted:\n${shown(r)}`);
  const job = await settled(`${id}.yaml`, () => env.d.ctx.store.jobs.find(id), 60_000);
  assert.equal(job.state, 'succeeded', `${job.errorCode}: ${job.errorMessage}`);
  if (args.includes('--wait')) assert.match(r.stdout, /^output: /m, 'submit --wait shows the output');
  const opt = (name: string): string | undefined => args[args.indexOf(name) + 1];
  if (args.includes('--email')) await emailTo(opt('--email')!, job);
  if (args.includes('--webhook')) await waitFor('the webhook', () => env.hooks.some((h) => h.body.includes(job.id) && h.event === 'succeeded'), 10_000);

  // What the README says of --wait right below a fenced submit: with no daemon on the root it says so at once, exit 1.
  if (ex.fenced && args.includes('--wait')) {
    const idle = path.join(env.scratch, `no-daemon-${++dropCount}`);
    initRoot(idle);
    const started = Date.now();
    const alone = await sh(command, { env: { HOPPER_ROOT: idle }, timeoutMs: 30_000 });
    assert.equal(alone.code, 1, shown(alone));
    assert.match(alone.stderr, /no hopper is running/);
    assert.ok(Date.now() - started < 15_000, 'it says so at once');
  }
}

/** A request with a notBefore to come: it is taken and waits, saying until when (then it is canceled). */
async function checkWaiting(name: string, text: string, doc: { id?: string; notBefore: string }): Promise<void> {
  assert.ok(doc.id, 'a request that waits for its notBefore has an id to find it by');
  env.d.drop(name, text);
  const job = await env.d.job(doc.id, (j) => j.waitReason !== null, 15_000);
  assert.equal(job.state, 'queued');
  assert.match(job.waitReason ?? '', new RegExp(`not before ${new Date(doc.notBefore).toISOString().slice(0, 16)}`));
  env.d.drop(`cancel-${name}`, { kind: 'cancel', job: doc.id });
  await env.d.job(doc.id, (j) => j.state === 'canceled', 15_000);
}

async function checkFile(ex: Extract<Example, { kind: 'file' }>): Promise<void> {
  const name = `readme-line-${ex.line}-${++dropCount}.yaml`;
  if (ex.fileKind === 'recipe') {
    const file = path.join(env.scratch, name);
    writeFileSync(file, ex.text);
    const r = await hopper(['validate', file], { env: { HOPPER_ROOT: env.root } });
    assert.equal(r.code, 0, shown(r));
    return;
  }
  if (ex.fileKind === 'cancel') {
    // Something to cancel: the README's own request, told to wait until 2099.
    const base = EXAMPLES.find((e): e is Extract<Example, { kind: 'file' }> => e.kind === 'file' && e.fileKind === 'request');
    assert.ok(base, 'the README has a request example to cancel');
    const target = { ...(parse(localUrls(fill(base.text))) as Record<string, unknown>), id: `to-cancel-${dropCount}`, notBefore: '2099-01-01T00:00:00Z' };
    env.d.drop(`to-cancel-${dropCount}.yaml`, target);
    await env.d.job(target.id, (j) => j.state === 'queued', 15_000);
    const text = fill(ex.text, { ID: target.id });
    env.d.drop(name, `${text}\n`);
    const job = await settled(name, () => env.d.ctx.store.jobs.find(target.id), 15_000);
    assert.equal(job.state, 'canceled');
    return;
  }
  const text = localUrls(fill(ex.text));
  const doc = parse(text) as { id?: string; notify?: { email?: string }; notBefore?: string };
  if (doc.notBefore && Date.parse(doc.notBefore) > Date.now()) return checkWaiting(name, text, doc as { id?: string; notBefore: string });
  const before = new Set(env.d.ctx.store.jobs.list({ limit: 500 }).map((j) => j.id));
  const find = (): Job | undefined => (doc.id ? env.d.ctx.store.jobs.find(doc.id) : env.d.ctx.store.jobs.list({ limit: 5 }).find((j) => !before.has(j.id)));
  env.d.drop(name, text);
  const job = await settled(name, find, 60_000);
  assert.equal(job.state, 'succeeded', `${job.errorCode}: ${job.errorMessage}`);
  if (doc.notify?.email) await emailTo(doc.notify.email, job);
  if (doc.id) {
    // "the same id again returns the same job"
    const again = `again-${name}`;
    env.d.drop(again, text);
    await waitFor(`${again} to be taken`, () => !existsSync(path.join(env.d.inboxDir, again)), 10_000);
    assert.ok(!existsSync(path.join(env.d.inboxDir, 'rejected', again)), `the same request again is not rejected`);
    const rows = env.d.ctx.store.db.prepare('SELECT id FROM jobs WHERE request_id = ?').all(doc.id) as Array<{ id: string }>;
    assert.deepEqual(rows.map((r) => r.id), [job.id], 'one job for the id');
  }
}

async function checkProblems(ex: Extract<Example, { kind: 'problems' }>): Promise<void> {
  const names = new Set(ex.lines.map((l) => l.slice(0, l.indexOf(':'))));
  assert.equal(names.size, 1, 'the sample is about one file');
  const [name] = names;
  const problemLines = (text: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}:`));

  // Dropped into the inbox: NAME.error.txt beside it in inbox/rejected/.
  const rejected = path.join(env.d.inboxDir, 'rejected');
  rmSync(path.join(rejected, name), { force: true });
  rmSync(path.join(rejected, `${name}.error.txt`), { force: true });
  env.d.drop(name, EQUIVALENT_BAD_REQUEST);
  const why = await waitFor(`${name} to be rejected`, () => existsSync(path.join(rejected, name)) && readFileSync(path.join(rejected, `${name}.error.txt`), 'utf8'), 10_000);
  assert.deepEqual(problemLines(why), ex.lines, `the sample is not what hopper writes for ${name}; it wrote:\n${why}`);

  // And what `hopper validate` says of the same file.
  const dir = path.join(env.scratch, `sample-${++dropCount}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), EQUIVALENT_BAD_REQUEST);
  const r = await hopper(['validate', name], { cwd: dir, env: { HOPPER_ROOT: env.root } });
  assert.equal(r.code, 1, shown(r));
  assert.deepEqual(problemLines(r.stdout), ex.lines, shown(r));
}

function checkConfig(ex: Extract<Example, { kind: 'config' }>): void {
  // env: and file: references, given values here (file:$CREDENTIALS_DIRECTORY/NAME as systemd hands them over).
  const creds = path.join(env.scratch, `credentials-${++dropCount}`);
  mkdirSync(creds, { recursive: true });
  const vars: NodeJS.ProcessEnv = { CREDENTIALS_DIRECTORY: creds };
  const expected: Array<{ at: string[]; value: string }> = [];
  const valueFor = (name: string): string => (/url/i.test(name) ? 'smtp://user:pass@127.0.0.1:2525' : `readme-${name.replace(/\W/g, '-')}-0123456789abcdef`);
  const walk = (v: unknown, at: string[]): void => {
    if (typeof v === 'string') {
      const ref = /^(env|file):(.+)$/.exec(v);
      if (!ref) return;
      const value = valueFor(path.basename(ref[2]));
      if (ref[1] === 'env') vars[ref[2]] = value;
      else {
        const file = path.resolve(env.scratch, ref[2].replace(/^\$CREDENTIALS_DIRECTORY/, creds));
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, `${value}\n`);
        const credential = /^\$CREDENTIALS_DIRECTORY\/(.+)$/.exec(ref[2])?.[1];
        if (credential) {
          // The unit hands it over, and tmpfiles makes the file it comes from.
          const unit = readFileSync(path.join(REPO, 'systemd', 'hopper.service'), 'utf8');
          const from = new RegExp(`^LoadCredential=${credential}:(\\S+)$`, 'm').exec(unit)?.[1];
          assert.ok(from, `systemd/hopper.service loads the credential ${credential} that the example reads`);
          assert.match(readFileSync(path.join(REPO, 'systemd', 'hopper.tmpfiles.conf'), 'utf8'), new RegExp(`^f ${from} `, 'm'), `systemd/hopper.tmpfiles.conf makes ${from}`);
        }
      }
      expected.push({ at, value });
    } else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, [...at, k]);
  };
  walk(parse(ex.text), []);
  const config = parseConfig(ex.text, path.join(env.scratch, 'hopper.yaml'), { ...process.env, ...vars });
  for (const e of expected) {
    const got = e.at.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], config);
    assert.equal(got, e.value, `${e.at.join('.')} reads its secret`);
  }
}

function checkShape(ex: Extract<Example, { kind: 'shape' }>): void {
  const unknown = ex.roots.map((r) => ({ root: r, keys: unknownKeys(ex.value, ROOTS[r]) }));
  assert.ok(
    unknown.some((u) => u.keys.length === 0),
    `keys no ${ex.roots.join(' or ')} has: ${unknown.map((u) => `${u.root}: ${u.keys.join(', ')}`).join('; ')}`,
  );
}

// `hopper CMD --help` for every command the README names, in one process (see helpers/cli-help.ts).
const helpCache = new Map<string, CliResult>();
async function helpResults(argvs: string[][]): Promise<Map<string, CliResult>> {
  const missing = argvs.filter((a) => !helpCache.has(a.join(' ')));
  if (missing.length) {
    const out = path.join(env.scratch, `help-${++dropCount}.json`);
    const r = await sh(`node --import tsx test/helpers/cli-help.ts ${out} '${JSON.stringify(missing)}'`, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, shown(r));
    for (const h of JSON.parse(readFileSync(out, 'utf8')) as Array<CliResult & { args: string[] }>) helpCache.set(h.args.join(' '), h);
  }
  return helpCache;
}
function helpArgvs(mentions: Array<Extract<Example, { kind: 'mention' }>>): string[][] {
  const keys = new Set<string>(['--help', '--version']);
  for (const m of mentions) {
    if (m.words[0]) keys.add(`${m.words[0]} --help`);
    if (m.words[1]) keys.add(`${m.words[0]} ${m.words[1]} --help`);
  }
  return [...keys].map((k) => k.split(' '));
}

async function checkMention(ex: Extract<Example, { kind: 'mention' }>, help: Map<string, CliResult>): Promise<void> {
  const top = help.get('--help')!;
  assert.equal(top.code, 0);
  let deepest = top;
  if (ex.words[0]) {
    const first = help.get(`${ex.words[0]} --help`)!;
    assert.equal(first.code, 0, shown(first));
    assert.match(first.stdout, new RegExp(`^Usage: hopper ${ex.words[0]} `), `${ex.words[0]} is a hopper command`);
    deepest = first;
    if (ex.words[1]) {
      const second = help.get(`${ex.words[0]} ${ex.words[1]} --help`)!;
      assert.equal(second.code, 0, shown(second));
      if (second.stdout.startsWith(`Usage: hopper ${ex.words[0]} ${ex.words[1]} `)) deepest = second;
      else assert.match(first.stdout, /^Arguments:/m, `"${ex.words[1]}" is neither a subcommand of ${ex.words[0]} nor an argument it takes`);
    }
  }
  const options = (h: CliResult): string => h.stdout.slice(h.stdout.indexOf('Options:'), h.stdout.indexOf('Commands:') > 0 ? h.stdout.indexOf('Commands:') : undefined);
  for (const o of ex.options) {
    const listed = new RegExp(`^\\s+(-\\w, )?${o.replace(/[-]/g, '\\-')}[\\s,]`, 'm');
    assert.ok(listed.test(options(deepest)) || listed.test(options(top)), `hopper ${ex.words.join(' ')} --help lists ${o}:\n${deepest.stdout}`);
  }
  if (ex.options.includes('--version')) assert.equal(help.get('--version')!.stdout.trim(), PKG.version);
}

// ---- shell lines: run what can run here, check what the rest names ----

interface ShellState {
  checkout?: string;
  installed: Map<string, string>;
  /** A scratch copy of the server's file tree. */
  host: string;
  /** Its system folders (/var/lib, /etc, ...): root's, so a service user cannot write there. */
  system: string[];
}

/** Who a `sudo -u USER` line runs as: as root, an unprivileged user (nobody); else this user, with the system folders made read-only. */
const STAND_IN = { uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;

function othersCanRun(file: string): boolean {
  for (let p = file; p !== path.dirname(p); p = path.dirname(p)) if ((statSync(p).mode & 0o001) === 0) return false;
  return true;
}

let publicNode: string | undefined;
/**
 * This Node where the stand-in user can run it: CI's Node lives in root's home,
 * which nobody may enter; a server's is in /usr/local. Linked (or copied) into a
 * folder anyone may read.
 */
function nodeForOthers(): string {
  if (othersCanRun(process.execPath)) return process.execPath;
  if (publicNode) return publicNode;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-readme-node-'));
  chmodSync(dir, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, 'node');
  try {
    linkSync(process.execPath, target);
  } catch {
    copyFileSync(process.execPath, target);
  }
  chmodSync(target, 0o755);
  publicNode = target;
  return target;
}

async function asServiceUser<T>(s: ShellState, run: (ids: { uid?: number; gid?: number }) => Promise<T>): Promise<T> {
  if (isRoot) return run(STAND_IN);
  for (const d of s.system) chmodSync(d, 0o555);
  try {
    return await run({});
  } finally {
    for (const d of s.system) chmodSync(d, 0o755);
  }
}

/** A path on the server, here: the checkout is this repository; the rest goes under a scratch folder. */
function here(p: string, s: ShellState): string {
  if (s.checkout && (p === s.checkout || p.startsWith(`${s.checkout}/`))) return path.join(REPO, p.slice(s.checkout.length));
  if (path.isAbsolute(p)) return path.join(s.host, p);
  return path.join(REPO, p);
}

/** Bare package imports of the code npm ci --omit=dev must be able to run. */
function runtimeImports(): Set<string> {
  const found = new Set<string>();
  const scan = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) scan(p);
      else if (/\.(ts|mjs)$/.test(e.name)) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/^import (?!type )[^;]*?from '([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) {
          const spec = m[1] ?? m[2];
          if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
        }
      }
    }
  };
  scan(path.join(REPO, 'src'));
  return found;
}

/** A line for another host of a cluster: not run; a docker command is checked to be one the docker CLI has. */
function clusterRule(host: string, command: string): { notRun: string; check(): Promise<void> | void } {
  const [cmd, ...args] = words(command);
  return {
    notRun: `${NOT_RUN.cluster} (${host})`,
    check: async () => {
      if (cmd !== 'docker') return;
      assert.ok(dockerCommand || process.env.HOPPER_REQUIRE_DOCKER !== '1', 'the docker command is installed');
      if (!dockerCommand) return;
      const sub = args.slice(0, 2).filter((a) => /^[a-z-]+$/.test(a));
      const r = await sh(['docker', ...sub, '--help'].join(' '), { timeoutMs: 10_000 });
      assert.equal(r.code, 0, `docker ${sub.join(' ')} is a docker command\n${shown(r)}`);
    },
  };
}

/** What one shell command of an installation block does here: run it, or check what it names. */
function shellRule(command: string, s: ShellState): { notRun?: string; check(): Promise<void> | void } {
  // f=$(grep ... SHASUMS256.txt): picks the Node tarball to download.
  if (/^[a-z]+=\$\(/.test(command)) return { notRun: NOT_RUN.nodejs, check: () => assert.match(command, new RegExp(`node-v${NODE_MAJOR}\\\\\\.`), `Node ${NODE_MAJOR}`) };
  // `node-b$ docker swarm join ...`: a prompt names the host of a cluster a line is for (docs/scale-out.md).
  const onHost = /^([a-z][\w-]*)\$ (.*)$/.exec(command);
  if (onHost) return clusterRule(onHost[1], onHost[2]);
  let w = words(command);
  let runAs: string | undefined;
  if (w[0] === 'sudo' && w[1] === '-u') {
    runAs = w[2];
    w = w.slice(3);
  }
  const vars: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(w[0] ?? '')) {
    const [k, ...v] = w.shift()!.split('=');
    vars[k] = v.join('=');
  }
  const [cmd, ...args] = w;
  const script = cmd === 'npm' ? PKG.scripts[args[0]] : undefined;
  switch (cmd) {
    case 'apt-get':
      return { notRun: NOT_RUN['apt-get'], check: () => assert.equal(args[0], 'install') };
    case 'curl':
    case 'sha256sum':
    case 'tar':
      return {
        notRun: NOT_RUN.nodejs,
        check: () => {
          const url = args.find((a) => a.startsWith('https://') || a.startsWith('"https://'));
          if (url) assert.match(url, new RegExp(`^"?https://nodejs\\.org/dist/latest-v${NODE_MAJOR}\\.x/`), `Node ${NODE_MAJOR}, as package.json's engines asks`);
        },
      };
    case 'git':
      return {
        notRun: NOT_RUN.git,
        check: () => {
          assert.equal(args[0], 'clone');
          s.checkout = args[2];
          // The unit runs hopper from that checkout.
          assert.ok(readFileSync(path.join(REPO, 'systemd', 'hopper.service'), 'utf8').includes(`${s.checkout}/src/cli/bin.mjs`), `systemd/hopper.service runs ${s.checkout}/src/cli/bin.mjs`);
        },
      };
    case 'cd':
      // A folder made by a line before (in the scratch server tree), or one every system has (/tmp).
      return { check: () => assert.ok(existsSync(here(args[0], s)) || ['/tmp', '/'].includes(args[0]), `${args[0]} exists`) };
    case 'npm':
      if (args[0] === 'ci')
        return {
          notRun: NOT_RUN['npm ci'],
          check: () => {
            assert.ok(existsSync(path.join(REPO, 'package-lock.json')), 'npm ci needs package-lock.json');
            if (args.includes('--omit=dev')) {
              // What runs (and `prepare` builds with) must not be a devDependency.
              const needed = [...runtimeImports(), PKG.scripts.build.split(' ')[0]];
              const missing = needed.filter((p) => !(p in PKG.dependencies));
              assert.deepEqual(missing, [], 'packages the daemon imports (or builds with) that npm ci --omit=dev leaves out');
            }
          },
        };
      if (args[0] === 'start') return { notRun: NOT_RUN['npm start'], check: () => assert.match(script ?? '', /src\/cli\/bin\.mjs start$/, 'npm start runs hopper start') };
      if (args[0] === 'test')
        return {
          notRun: NOT_RUN['npm test'],
          check: () => {
            const file = /\S+\.ts/.exec(script ?? '')?.[0];
            assert.ok(file && existsSync(path.join(REPO, file)), `npm test runs a file that exists (${script})`);
          },
        };
      break;
    case 'install': {
      // install -d [-m MODE] [-o USER] [-g GROUP] DIR...  |  install [-m MODE] SRC DEST: done in the scratch server tree.
      let mode: string | undefined;
      let owner: string | undefined;
      let dirs = false;
      const files: string[] = [];
      for (let i = 0; i < args.length; i++) {
        if (args[i] === '-d') dirs = true;
        else if (args[i] === '-m') mode = args[++i];
        else if (args[i] === '-o') owner = args[++i];
        else if (args[i] === '-g') i++;
        else files.push(args[i]);
      }
      return {
        check: () => {
          if (mode) assert.match(mode, /^0?[0-7]{3,4}$/);
          if (dirs) {
            for (const d of files) {
              mkdirSync(here(d, s), { recursive: true });
              if (mode) chmodSync(here(d, s), parseInt(mode, 8));
              if (owner && isRoot) chownSync(here(d, s), STAND_IN.uid, STAND_IN.gid);
            }
            return;
          }
          const [from, to] = files;
          assert.ok(existsSync(here(from, s)), `${from} exists in the repository`);
          mkdirSync(path.dirname(here(to, s)), { recursive: true });
          copyFileSync(here(from, s), here(to, s));
          if (mode) chmodSync(here(to, s), parseInt(mode, 8));
          s.installed.set(to, from);
        },
      };
    }
    case 'node':
      return {
        check: async () => {
          const mapped = args.map((a) => (a.startsWith('/') ? here(a, s) : a));
          const mappedVars = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.startsWith('/') ? here(v, s) : v]));
          // The Node these tests run on: the one the installation steps put first on PATH.
          const line = [runAs && isRoot ? nodeForOthers() : process.execPath, ...mapped].map((a) => `'${a}'`).join(' ');
          const r = runAs ? await asServiceUser(s, (ids) => sh(line, { env: mappedVars, cwd: REPO, ...ids })) : await sh(line, { env: mappedVars, cwd: REPO });
          assert.equal(r.code, 0, `${gist(r)} ${runAs ? `(as ${runAs}; here ${isRoot ? 'nobody' : 'this user, the system folders read-only'})` : ''}\n${shown(r)}`);
        },
      };
    case 'mv':
      return {
        notRun: NOT_RUN.mv,
        check: () => {
          assert.ok(existsSync(here(args[0], s)), `${args[0]} exists after the lines before it`);
          const unitFiles = readdirSync(path.join(REPO, 'systemd')).map((f) => readFileSync(path.join(REPO, 'systemd', f), 'utf8'));
          assert.ok(unitFiles.some((t) => t.includes(args[1])), `systemd/ uses ${args[1]}`);
        },
      };
    case 'chgrp':
      return {
        notRun: NOT_RUN.chgrp,
        check: () => assert.match(readFileSync(path.join(REPO, 'systemd', 'hopper.sysusers.conf'), 'utf8'), new RegExp(`^[ug] ${args[0]} `, 'm'), `sysusers makes ${args[0]}`),
      };
    case 'systemd-sysusers':
    case 'systemd-tmpfiles': {
      const folder = cmd === 'systemd-sysusers' ? '/usr/lib/sysusers.d/' : '/usr/lib/tmpfiles.d/';
      return { notRun: NOT_RUN[cmd], check: () => assert.ok([...s.installed.keys()].some((k) => k.startsWith(folder)), `a line before installs its file into ${folder}`) };
    }
    case 'systemctl':
      return {
        notRun: NOT_RUN.systemctl,
        check: () => {
          const unit = args.find((a, i) => i > 0 && !a.startsWith('-'));
          if (unit) assert.ok(s.installed.has(`/etc/systemd/system/${unit}.service`), `a line before installs ${unit}.service`);
        },
      };
  }
  return { check: () => assert.fail(`no rule knows how to run or check this README command: ${command}`) };
}

async function checkShell(ex: Extract<Example, { kind: 'shell' }>, t: TestContext): Promise<void> {
  if (ex.lines.some((l) => /\bdocker import\b/.test(l))) {
    const host = path.join(env.scratch, `host-${++dropCount}`);
    mkdirSync(host);
    return checkImageScript(ex, t, host);
  }
  // A scratch copy of the server's file tree, readable by the stand-in user: the folders a Debian system
  // has (those of this machine) that the block's paths are in, root's and 0755.
  const host = mkdtempSync(path.join(os.tmpdir(), 'hopper-readme-server-'));
  chmodSync(host, 0o755);
  const s: ShellState = { installed: new Map(), host, system: [] };
  const named = ex.lines.flatMap((l) => words(l)).flatMap((w) => w.split('=')).filter((w) => w.startsWith('/'));
  for (const p of named)
    for (let a = path.dirname(p); a !== '/'; a = path.dirname(a))
      if (existsSync(a) && !s.system.includes(path.join(host, a))) {
        mkdirSync(path.join(host, a), { recursive: true, mode: 0o755 });
        s.system.push(path.join(host, a));
      }
  const failures: string[] = [];
  try {
    for (const line of ex.lines)
      for (const command of commandsOf(line)) {
        const rule = shellRule(command, s);
        t.diagnostic(rule.notRun ? `not run: ${command} (${rule.notRun}); checked what it names` : `run here (server paths in a scratch copy of its folders): ${command}`);
        try {
          await rule.check();
        } catch (err) {
          failures.push(`${command}: ${(err as Error).message}`);
        }
      }
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
  if (failures.length) assert.fail(failures.join('\n'));
}

/** The block that makes the busybox image: run here (but apt-get), under a scratch tag, then the image must run. */
async function checkImageScript(ex: Extract<Example, { kind: 'shell' }>, t: TestContext, host: string): Promise<void> {
  assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
  const run = ex.lines.filter((l) => !/^apt-get /.test(l));
  for (const l of ex.lines.filter((l) => /^apt-get /.test(l))) t.diagnostic(`not run: ${l} (${NOT_RUN['apt-get']})`);
  const tag = words(run.find((l) => /\bdocker import\b/.test(l))!).at(-1)!;
  // It is the image the shipped container recipes run.
  const images = readdirSync(path.join(REPO, 'recipes'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => (shippedRecipe(f.replace(/\.yaml$/, ''))?.steps ?? []).map((st) => (st.container as { image?: string } | undefined)?.image).filter(Boolean));
  assert.ok(images.length > 0 && images.every((i) => i === tag), `the shipped container recipes run ${tag} (they run ${images.join(', ')})`);
  const scratchTag = `hopper-readme-test-${process.pid}:latest`;
  t.diagnostic(`run here, tagged ${scratchTag}: ${run.join(' / ')}`);
  try {
    const r = await sh(`${run.join('\n').replaceAll(tag, scratchTag)}\nrm -rf "$rootfs"`, { shell: ['bash', '-euo', 'pipefail', '-c'], env: { TMPDIR: host }, timeoutMs: 60_000 });
    assert.equal(r.code, 0, shown(r));
    const probe = await sh(`docker run --rm --network none ${scratchTag} sh -c 'mkdir -p /work/out && ls -d /work/out /tmp && echo works'`, { timeoutMs: 30_000 });
    assert.equal(probe.code, 0, shown(probe));
    assert.match(probe.stdout, /works/);
  } finally {
    await sh(`docker rmi -f ${scratchTag}`, { timeoutMs: 30_000 }).catch(() => undefined);
  }
}

/** Runs one example's check; throws when the README is wrong about it. */
async function check(ex: Example, t: TestContext): Promise<void> {
  switch (ex.kind) {
    case 'cli':
      return checkCli(ex);
    case 'file':
      return checkFile(ex);
    case 'problems':
      return checkProblems(ex);
    case 'config':
      return checkConfig(ex);
    case 'shape':
      return checkShape(ex);
    case 'shell':
      return checkShell(ex, t);
    case 'mention':
      // All the README's at once (one process), then any this example adds.
      await helpResults(helpArgvs(EXAMPLES.filter((e): e is Extract<Example, { kind: 'mention' }> => e.kind === 'mention')));
      return checkMention(ex, await helpResults(helpArgvs([ex])));
    case 'unknown':
      assert.fail(`${PAGE_OF.get(ex)} line ${ex.line}: ${ex.why}; teach test/helpers/readme.ts to run it:\n${ex.source}`);
  }
}

const label = (ex: Example): string => `${PAGE_OF.get(ex)}:${ex.line}, ${ex.kind}: ${ex.source.split('\n')[0].slice(0, 110)}`;

describe('README and docs/: every example works', () => {
  let scratch: ReturnType<typeof tempRoot>;
  before(async () => {
    scratch = tempRoot('hopper-readme-');
    const hooks: Env['hooks'] = [];
    const files = await httpServer(standIn(hooks));
    const s3 = await s3Server();
    const root = path.join(scratch.root, 'root');
    // The root as `hopper init` makes it (shipped recipes included), with the stand-in hosts allowed and S3 for farm recipes.
    initRoot(root);
    const config = { http: { port: 0 }, outbound: { allow: ['127.0.0.1'] }, s3: s3.config };
    writeFileSync(path.join(root, 'hopper.yaml'), stringify(config));
    const d = await testDaemon({ root, config });
    env = { scratch: scratch.root, root, d, files, hooks, s3 };
  });
  after(async () => {
    await env?.d.cleanup();
    await env?.files.close();
    await env?.s3.close();
    scratch?.cleanup();
  });

  it('finds the examples (fenced blocks, Try commands, snippets, the CLI table)', () => {
    const kinds = new Set(EXAMPLES.map((e) => e.kind));
    for (const k of ['cli', 'file', 'problems', 'config', 'shape', 'shell', 'mention'] as const) assert.ok(kinds.has(k), `an example of kind ${k}`);
    assert.ok(EXAMPLES.filter((e) => e.kind === 'cli' && / submit /.test(e.command)).length >= 6, 'the Try commands');
  });

  for (const ex of EXAMPLES) {
    const cli = ex.kind === 'shell' && !dockerCommand ? 'the docker command is not installed here' : undefined;
    const required = process.env.HOPPER_REQUIRE_DOCKER === '1';
    const skip = needsDocker(ex) ? docker.skip || (cli && !required ? cli : false) : false;
    it(label(ex), { skip, timeout: 120_000 }, async (t) => {
      if (needsDocker(ex)) {
        assert.equal(docker.missing, undefined, `Docker is required here: ${docker.missing}`);
        assert.equal(cli, undefined, `Docker is required here: ${cli}`);
      }
      await check(ex, t);
    });
  }

  describe('a broken example fails its check', () => {
    // Each: a change a careless edit could make; the examples it changes must fail.
    const breakages: Array<{ what: string; from: string; to: string }> = [
      { what: 'a Try command names a param the recipe does not have', from: 'submit package-url -p url=URL', to: 'submit package-url -p address=URL' },
      { what: 'a fenced command uses a CLI option that does not exist', from: 'data.csv --email you@example.org --wait', to: 'data.csv --mail you@example.org --wait' },
      { what: 'a Try command names a recipe that is not shipped', from: 'submit render -p', to: 'submit renderer -p' },
      { what: 'a request file names a recipe that is not shipped', from: 'recipe: package-url\nid: order-4711', to: 'recipe: package-urls\nid: order-4711' },
      { what: 'the rejection sample is not what hopper writes', from: 'must be an http or https URL (like', to: 'must be a URL (like' },
      { what: 'a config snippet misspells a setting', from: '`inbox: { acceptRecipes: false }`', to: '`inbox: { acceptRecipe: false }`' },
      { what: 'a credentials snippet misspells a setting', from: 'webhooks: { secret: "file:', to: 'webhooks: { secrets: "file:' },
      { what: 'the config table names a setting that does not exist', from: '`retention: { outputs, jobs }`', to: '`retention: { output, jobs }`' },
      { what: 'the CLI table names an option that does not exist', from: '[--not-before TIME]', to: '[--notbefore TIME]' },
      { what: 'the service installation names a file that does not exist', from: 'install -m 0644 systemd/hopper.service', to: 'install -m 0644 systemd/hopper-daemon.service' },
      { what: 'a fenced block of a kind no rule runs', from: '```sh\nnpm ci && npm start', to: '```python\nnpm ci && npm start' },
      { what: 'the service installation runs hopper init as hopper before its root exists', from: 'install -d -m 0750 -o hopper -g hopper /var/lib/hopper\n', to: '' },
    ];
    for (const b of breakages) {
      it(b.what, { timeout: 60_000 }, async (t) => {
        const page = PAGES.find((p) => TEXTS.get(p)!.includes(b.from));
        assert.ok(page, `a page has "${b.from}"`);
        const text = TEXTS.get(page)!;
        assert.equal(text.split(b.from).length, 2, `${page} has "${b.from}" once`);
        const broken = examplesOf(page, text.replace(b.from, b.to));
        const changed = broken.filter((e) => !EXAMPLES.some((o) => o.kind === e.kind && o.source === e.source));
        assert.ok(changed.length > 0, 'the change is in an example');
        for (const ex of changed) {
          const failure = await check(ex, t).then(
            () => undefined,
            (err: Error) => err,
          );
          assert.ok(failure, `still passes: ${label(ex)}`);
          t.diagnostic(`${label(ex)} fails: ${failure.message.split('\n').find((l) => l.trim())}`);
        }
      });
    }
  });
});
