import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline, Transform } from 'node:stream';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_S3_LINK_MS, type Config } from '../config/config.js';
import { HopperError } from '../errors.js';
import type { Output } from '../store/outputs.js';
import { formatBytes } from '../units.js';
import type { Produced } from './collect.js';

type S3Config = NonNullable<Config['s3']>;

const PART_BYTES = 8 * 1024 * 1024;
const MAX_LINK_SECONDS = MAX_S3_LINK_MS / 1000;

const CONTENT_TYPES: Record<string, string> = {
  '.zip': 'application/zip',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.txt': 'text/plain; charset=utf-8',
  '.gz': 'application/gzip',
  '.pdf': 'application/pdf',
  '.html': 'text/html; charset=utf-8',
  '.zim': 'application/octet-stream',
};

export interface S3Delivery {
  client: S3Client;
  bucket: string;
  linkExpiryMs: number;
  endpoint: string;
}

export function createS3(config: S3Config): S3Delivery {
  const client = new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    maxAttempts: 2,
    ...(config.accessKeyId && config.secretAccessKey ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } } : {}),
    // Plain PUTs of streams: without these, S3-compatible servers may store aws-chunked framing.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, bucket: config.bucket, linkExpiryMs: config.linkExpiryMs, endpoint: config.endpoint ?? `AWS S3 (${config.region})` };
}

/** An S3 failure in words a person can act on; never the credentials. */
export function s3Problem(err: unknown, s3: S3Delivery): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? e.name ?? '';
  if (code === 'ECONNREFUSED') return `S3 at ${s3.endpoint} refused the connection (is it running?)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `S3 at ${s3.endpoint} could not be found`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return `S3 at ${s3.endpoint} closed the connection mid-transfer`;
  if (code === 'NoSuchBucket') return `the bucket "${s3.bucket}" does not exist at ${s3.endpoint}`;
  if (['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'].includes(code)) {
    return `S3 at ${s3.endpoint} refused hopper's credentials (${code}); check s3.accessKeyId and s3.secretAccessKey`;
  }
  const status = e.$metadata?.httpStatusCode;
  return `S3 at ${s3.endpoint} failed: ${code || 'error'}${status ? ` (HTTP ${status})` : ''}${e.message && e.message !== code ? `: ${e.message}` : ''}`;
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** The file as a stream that hashes (sha256) what passes, so the upload is the one read of it. */
function hashedRead(file: string): { body: Transform; digest: () => string } {
  const hash = createHash('sha256');
  const body = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  // Linked both ways: an upload given up on closes the file too.
  pipeline(createReadStream(file), body, () => {});
  return { body, digest: () => hash.digest('hex') };
}

/** Uploads one output, checks its size with a HEAD, and returns the sha256 of what was sent. */
async function uploadOne(s3: S3Delivery, key: string, p: Produced, signal: AbortSignal): Promise<string> {
  const read = hashedRead(p.file);
  const upload = new Upload({
    client: s3.client,
    params: {
      Bucket: s3.bucket,
      Key: key,
      Body: read.body,
      ContentType: CONTENT_TYPES[path.extname(p.name).toLowerCase()] ?? 'application/octet-stream',
      ContentDisposition: contentDisposition(p.name),
    },
    partSize: PART_BYTES,
    queueSize: 2,
    // A failed multipart upload is aborted, so no half-done parts are left to pay for.
    leavePartsOnError: false,
  });
  const onAbort = (): void => void upload.abort().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await upload.done();
  } finally {
    signal.removeEventListener('abort', onAbort);
    read.body.destroy();
  }
  // Counted only once the object is there with the right size.
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }), { abortSignal: signal });
  if (head.ContentLength !== p.bytes) {
    throw new HopperError('E_S3_VERIFY', `S3 holds ${formatBytes(head.ContentLength ?? 0)} for ${key}, not the ${formatBytes(p.bytes)} uploaded`);
  }
  return read.digest();
}

/**
 * Uploads a job's outputs under `prefix` + JOB/NAME (multipart for large
 * files, streamed), each verified by a HEAD of its size; an unreachable or
 * refusing S3 is tried `tries` times with backoff, then fails the job in words.
 */
export async function uploadOutputs(
  s3: S3Delivery,
  jobId: string,
  prefix: string,
  produced: readonly Produced[],
  signal: AbortSignal,
  o: { tries?: number; backoffMs?: number } = {},
): Promise<Output[]> {
  const tries = o.tries ?? 3;
  const out: Output[] = [];
  for (const p of produced) {
    const key = `${prefix}${jobId}/${p.name}`;
    let sha256 = '';
    for (let attempt = 1; ; attempt++) {
      try {
        sha256 = await uploadOne(s3, key, p, signal);
        break;
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (err instanceof HopperError || attempt >= tries) {
          throw err instanceof HopperError ? err : new HopperError('E_S3', `upload of ${p.name} failed after ${attempt} tries: ${s3Problem(err, s3)}`);
        }
        await sleep((o.backoffMs ?? 1000) * 2 ** (attempt - 1), undefined, { signal }).catch(() => {
          throw signal.reason;
        });
      }
    }
    out.push({ name: p.name, bytes: p.bytes, sha256, location: 's3', ref: key });
  }
  return out;
}

/** A presigned GET URL for an uploaded output, valid until `expiresAt` (at most 7 days). */
export async function presignedLink(s3: S3Delivery, key: string, expiresAt: number, now: number): Promise<string> {
  const seconds = Math.max(1, Math.min(Math.floor((expiresAt - now) / 1000), MAX_LINK_SECONDS));
  return getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn: seconds });
}
