import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutboundPolicy } from '../net/outbound.js';
import { HopperError, InvalidFileError, type Problem } from '../errors.js';
import { parseYaml, type ParsedFile } from '../schemas/document.js';
import { assertNoProblems, schemaProblems } from '../schemas/validate.js';
import { parseDuration, parseSize } from '../units.js';

export interface Config {
  lanes: { fast: { concurrency: number }; slow: { concurrency: number } };
  /** Worker threads that run jobs' steps; 0 runs them on the main thread. Read at start. */
  threads: number;
  resources: { cpus: number; memory: number; disk: number };
  groups: Record<string, number>;
  http: {
    host: string;
    port: number;
    token: string | undefined;
    publicUrl: string | undefined;
    /** POST /requests and /jobs/:id/cancel without a token (only where no token is set). */
    allowAnonymousSubmit: boolean;
  };
  smtp: { url: string; from: string; retryForMs: number } | undefined;
  s3:
    | {
        endpoint: string | undefined;
        region: string;
        bucket: string;
        accessKeyId: string | undefined;
        secretAccessKey: string | undefined;
        forcePathStyle: boolean;
        linkExpiryMs: number;
        /** How long a delivery to S3 is tried again before the job fails (an outage). */
        retryForMs: number;
      }
    | undefined;
  docker: { socketPath: string; swarm: SwarmConfig | undefined };
  webhooks: { secret: string | undefined; retryForMs: number };
  /** Non-public addresses, ranges or host names that steps and webhooks may reach. */
  outbound: { allow: string[] };
  inbox: { acceptRecipes: boolean; maxFileBytes: number };
  retention: { outputsMs: number; jobsMs: number };
  /** How long a delivery into outputs/ is tried again before the job fails (a full disk). */
  outputs: { retryForMs: number };
  shutdown: { graceMs: number };
  /** Other services' APIs answered under their own prefix (compat/). */
  compat: { ckanpackager: CkanpackagerCompat | undefined };
}

/** hopper.yaml `docker.swarm`: container steps run as Swarm services. */
export interface SwarmConfig {
  /** How every node reaches state/jobs (an NFS export); absent: a bind of the same path on the node. */
  workDir: { server: string; path: string } | undefined;
  constraints: string[];
}

/** The schema has checked the shape of `workDir`; this splits it into the NFS server and the exported path. */
function swarmConfig(doc: { workDir?: string; constraints?: string[] }): SwarmConfig {
  const m = doc.workDir === undefined ? null : /^nfs:\/\/(\[[^\]]+\]|[^/]+)(\/.*?)\/?$/.exec(doc.workDir);
  return { workDir: m ? { server: m[1].replace(/^\[|\]$/g, ''), path: m[2] } : undefined, constraints: doc.constraints ?? [] };
}

/** ckanpackager's API under /ckanpackager: its secret, and the recipes its two packagers map to. */
export interface CkanpackagerCompat {
  secret: string;
  datastore: string;
  url: string;
}

type Size = string | number;
/** hopper.yaml as the config schema admits it. */
interface ConfigDoc {
  lanes?: { fast?: { concurrency?: number }; slow?: { concurrency?: number } };
  threads?: number;
  resources?: { cpus?: number; memory?: Size; disk?: Size };
  groups?: Record<string, number>;
  http?: { host?: string; port?: number; token?: string; publicUrl?: string; allowAnonymousSubmit?: boolean };
  compat?: { ckanpackager?: { secret: string; datastore?: string; url?: string } };
  smtp?: { url: string; from?: string; retryFor?: Size };
  s3?: {
    endpoint?: string;
    region?: string;
    bucket: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    forcePathStyle?: boolean;
    linkExpiry?: Size;
    retryFor?: Size;
  };
  docker?: { socketPath?: string; swarm?: { workDir?: string; constraints?: string[] } };
  webhooks?: { secret?: string; retryFor?: Size };
  outbound?: { allow?: string[] };
  inbox?: { acceptRecipes?: boolean; maxFileBytes?: Size };
  retention?: { outputs?: Size; jobs?: Size };
  outputs?: { retryFor?: Size };
  shutdown?: { grace?: Size };
}

export class ConfigError extends HopperError {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(
      'E_CONFIG',
      problems.map((p) => `${file}${p.line !== undefined ? `:${p.line}:${p.col ?? 1}` : ''}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'),
    );
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Resolves `env:NAME` and `file:PATH` references in place, so secrets can come
 * from the environment or from systemd credentials instead of the config file.
 * Problems name the field, never the value.
 */
function resolveRefs(value: unknown, at: string[], baseDir: string, env: NodeJS.ProcessEnv, problems: Array<{ segments: string[]; message: string }>): unknown {
  if (typeof value === 'string') {
    const m = /^(env|file):(.+)$/.exec(value);
    if (!m) return value;
    if (m[1] === 'env') {
      const v = env[m[2]];
      if (v === undefined || v === '') problems.push({ segments: at, message: `environment variable ${m[2]} is not set` });
      return v ?? '';
    }
    const file = path.resolve(baseDir, m[2].replace(/^\$CREDENTIALS_DIRECTORY/, env.CREDENTIALS_DIRECTORY ?? '$CREDENTIALS_DIRECTORY'));
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push({ segments: at, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      return '';
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveRefs(v, [...at, String(i)], baseDir, env, problems));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveRefs(v, [...at, k], baseDir, env, problems);
    return out;
  }
  return value;
}

function fromDoc(doc: ConfigDoc): Config {
  const s3 = doc.s3;
  return {
    lanes: {
      fast: { concurrency: doc.lanes?.fast?.concurrency ?? 4 },
      slow: { concurrency: doc.lanes?.slow?.concurrency ?? 1 },
    },
    // The main thread is busy too (intake, the store, the lanes): the others get the rest of the cores.
    threads: doc.threads ?? Math.max(1, os.availableParallelism() - 1),
    resources: {
      cpus: doc.resources?.cpus ?? os.availableParallelism(),
      memory: doc.resources?.memory === undefined ? os.totalmem() : parseSize(doc.resources.memory),
      disk: doc.resources?.disk === undefined ? Number.MAX_SAFE_INTEGER : parseSize(doc.resources.disk),
    },
    groups: doc.groups ?? {},
    http: {
      host: doc.http?.host ?? '127.0.0.1',
      port: doc.http?.port ?? 8765,
      token: doc.http?.token,
      publicUrl: doc.http?.publicUrl?.replace(/\/+$/, ''),
      allowAnonymousSubmit: doc.http?.allowAnonymousSubmit ?? false,
    },
    smtp: doc.smtp ? { url: doc.smtp.url, from: doc.smtp.from ?? 'hopper@localhost', retryForMs: parseDuration(doc.smtp.retryFor ?? '24h') } : undefined,
    s3: s3
      ? {
          endpoint: s3.endpoint,
          region: s3.region ?? 'us-east-1',
          bucket: s3.bucket,
          accessKeyId: s3.accessKeyId,
          secretAccessKey: s3.secretAccessKey,
          forcePathStyle: s3.forcePathStyle ?? true,
          linkExpiryMs: parseDuration(s3.linkExpiry ?? '7d'),
          retryForMs: parseDuration(s3.retryFor ?? '24h'),
        }
      : undefined,
    docker: { socketPath: doc.docker?.socketPath ?? '/var/run/docker.sock', swarm: doc.docker?.swarm && swarmConfig(doc.docker.swarm) },
    webhooks: { secret: doc.webhooks?.secret, retryForMs: parseDuration(doc.webhooks?.retryFor ?? '24h') },
    outbound: { allow: doc.outbound?.allow ?? [] },
    inbox: {
      acceptRecipes: doc.inbox?.acceptRecipes ?? true,
      maxFileBytes: parseSize(doc.inbox?.maxFileBytes ?? '1MiB'),
    },
    retention: {
      outputsMs: parseDuration(doc.retention?.outputs ?? '7d'),
      jobsMs: parseDuration(doc.retention?.jobs ?? '90d'),
    },
    outputs: { retryForMs: parseDuration(doc.outputs?.retryFor ?? '24h') },
    shutdown: { graceMs: parseDuration(doc.shutdown?.grace ?? '30s') },
    compat: {
      ckanpackager: doc.compat?.ckanpackager
        ? { secret: doc.compat.ckanpackager.secret, datastore: doc.compat.ckanpackager.datastore ?? 'package-datastore', url: doc.compat.ckanpackager.url ?? 'package-url' }
        : undefined,
    },
  };
}

/** SigV4 presigned URLs live at most 7 days. */
export const MAX_S3_LINK_MS = 7 * 24 * 3_600_000;

/** Parses and validates config text; throws ConfigError naming each problem with its line. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let parsed: ParsedFile;
  try {
    // A file of comments only (as `hopper init` writes it) means all defaults.
    const blank = text.replace(/^\s*#.*$/gm, '').trim() === '';
    parsed = blank ? { value: {}, locate: () => undefined, place: (p) => [...p] } : parseYaml(text);
  } catch (err) {
    if (err instanceof InvalidFileError) throw new ConfigError(file, err.problems);
    throw err;
  }
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    throw new ConfigError(file, [{ path: '', message: 'must be a mapping of settings' }]);
  }
  const refProblems: Array<{ segments: string[]; message: string }> = [];
  const resolved = resolveRefs(parsed.value, [], path.dirname(file), env, refProblems);
  if (refProblems.length) {
    throw new ConfigError(file, refProblems.map((p) => ({ path: p.segments.join('.'), message: p.message, ...parsed.locate(p.segments) })));
  }
  const view: ParsedFile = { ...parsed, value: resolved };
  try {
    assertNoProblems(schemaProblems('config', view));
  } catch (err) {
    if (err instanceof InvalidFileError) throw new ConfigError(file, err.problems);
    throw err;
  }
  const config = fromDoc(resolved as ConfigDoc);
  if (!isLoopback(config.http.host) && !config.http.token) {
    throw new ConfigError(file, [
      { path: 'http.host', message: `${config.http.host} is beyond loopback; set http.token before listening there`, ...parsed.locate(['http', 'host']) },
    ]);
  }
  // A presigned S3 link (SigV4) cannot last longer: a longer expiry would be mailed but not kept.
  if (config.s3 && config.s3.linkExpiryMs > MAX_S3_LINK_MS) {
    throw new ConfigError(file, [
      { path: 's3.linkExpiry', message: 'must be at most 7d: S3 presigned links cannot last longer', ...parsed.locate(['s3', 'linkExpiry']) },
    ]);
  }
  const badRange = config.outbound.allow.findIndex((entry) => {
    try {
      new OutboundPolicy([entry]);
      return false;
    } catch {
      return true;
    }
  });
  if (badRange >= 0) {
    throw new ConfigError(file, [
      { path: `outbound.allow[${badRange}]`, message: `"${config.outbound.allow[badRange]}" is not an address or range`, ...parsed.locate(['outbound', 'allow', String(badRange)]) },
    ]);
  }
  return config;
}

/** Reads `hopper.yaml` (or `file`); a missing default file means all defaults. */
export function loadConfig(root: string, file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const target = file ? path.resolve(file) : path.join(root, 'hopper.yaml');
  let text: string;
  try {
    text = readFileSync(target, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !file) return parseConfig('', target, env);
    throw new ConfigError(target, [{ path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, target, env);
}
