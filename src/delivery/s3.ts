import { AbortMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { MAX_S3_LINK_MS, type Config } from '../config/config.js';
import { HopperError } from '../errors.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import { formatBytes } from '../units.js';

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
    // A server that stops answering (packets dropped, no reset) fails the try instead of holding it for good.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
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

/**
 * S3 answers that no later try can change: the bucket, the region, the
 * credentials or the signature are wrong, or the object is too large.
 * (RequestTimeTooSkewed is a 403 too, but passes once the clock is right.)
 */
const REFUSALS = new Set([
  'NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'InvalidBucketName', 'AllAccessDisabled',
  'PermanentRedirect', 'AuthorizationHeaderMalformed', 'EntityTooLarge', 'InvalidArgument',
]);

/**
 * An S3 failure as a HopperError: E_S3_REFUSED when no later try can help
 * (delivery fails at once), else E_S3 (the delivery stage tries again).
 */
function s3Failure(err: unknown, s3: S3Delivery, what: string): HopperError {
  if (err instanceof HopperError) return err;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const refused = code !== 'RequestTimeTooSkewed' && (REFUSALS.has(code) || status === 403 || status === 301);
  return new HopperError(refused ? 'E_S3_REFUSED' : 'E_S3', `${what}: ${s3Problem(err, s3)}`);
}

/** Whether `key` holds this output already (a try that was cut short after its upload). */
async function holds(s3: S3Delivery, key: string, p: ProducedOutput, signal: AbortSignal): Promise<boolean> {
  try {
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }), { abortSignal: signal });
    return head.ContentLength === p.bytes && head.Metadata?.sha256 === p.sha256;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    // 403: a key that is not there, to credentials without s3:ListBucket (PutObject and GetObject suffice to deliver).
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'Forbidden' || [403, 404].includes(e.$metadata?.httpStatusCode ?? 0)) return false;
    throw err;
  }
}

/** Uploads one output (multipart when large, streamed), its sha256 kept as metadata, then checks it with a HEAD. */
async function uploadOne(s3: S3Delivery, file: string, p: ProducedOutput, signal: AbortSignal): Promise<void> {
  const body = createReadStream(file);
  const upload = new Upload({
    client: s3.client,
    params: {
      Bucket: s3.bucket,
      Key: p.ref,
      Body: body,
      ContentType: CONTENT_TYPES[path.extname(p.name).toLowerCase()] ?? 'application/octet-stream',
      ContentDisposition: contentDisposition(p.name),
      Metadata: { sha256: p.sha256 },
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
    body.destroy();
  }
  // Counted only once the object is there with the right size and checksum.
  if (!(await holds(s3, p.ref, p, signal))) {
    throw new HopperError('E_S3_VERIFY', `S3 does not hold ${p.ref} as uploaded (${formatBytes(p.bytes)}, sha256 ${p.sha256.slice(0, 12)}…)`);
  }
}

/**
 * Aborts multipart uploads to `key` left by a try that was cut short (hopper
 * killed mid-upload): their parts would be kept, and paid for, until then.
 * An S3-compatible server without these calls (s3rver) is left as it is.
 */
async function abortLeftovers(s3: S3Delivery, key: string, signal: AbortSignal): Promise<number> {
  let listed;
  try {
    listed = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: key }), { abortSignal: signal });
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    // A server without the call, or credentials without s3:ListBucketMultipartUploads: left to the bucket's lifecycle rules.
    if (e.name === 'NotImplemented' || e.name === 'AccessDenied' || [403, 405, 501].includes(e.$metadata?.httpStatusCode ?? 0)) return 0;
    throw err;
  }
  let aborted = 0;
  for (const u of listed.Uploads ?? []) {
    if (u.Key !== key || !u.UploadId) continue;
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: u.UploadId }), { abortSignal: signal });
    aborted++;
  }
  return aborted;
}

/**
 * Uploads a job's outputs to their keys (recorded when the steps ended), each
 * verified by a HEAD of its size and checksum. A try that comes again (after
 * an outage, or a restart) skips what S3 holds already, so nothing is sent
 * twice; an output gone from the work dir and not in S3 is E_OUTPUT_LOST.
 * A `resumed` try (not the first, or the first after a restart) aborts what
 * an earlier one left half-uploaded.
 * Failures are E_S3 (try again later) or E_S3_REFUSED (no try can help).
 */
export async function uploadOutputs(s3: S3Delivery, workDir: string, produced: readonly ProducedOutput[], signal: AbortSignal, resumed = false): Promise<Output[]> {
  const out: Output[] = [];
  for (const p of produced) {
    const file = path.join(workDir, p.file);
    try {
      if (!(await holds(s3, p.ref, p, signal))) {
        if (!existsSync(file)) throw new HopperError('E_OUTPUT_LOST', `${p.name} is gone from the job's work dir and is not in S3`);
        if (resumed) await abortLeftovers(s3, p.ref, signal);
        await uploadOne(s3, file, p, signal);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw s3Failure(err, s3, `upload of ${p.name} failed`);
    }
    out.push({ name: p.name, bytes: p.bytes, sha256: p.sha256, location: 's3', ref: p.ref });
  }
  return out;
}

/** A presigned GET URL for an uploaded output, valid until `expiresAt` (at most 7 days). */
export async function presignedLink(s3: S3Delivery, key: string, expiresAt: number, now: number): Promise<string> {
  const seconds = Math.max(1, Math.min(Math.floor((expiresAt - now) / 1000), MAX_LINK_SECONDS));
  return getSignedUrl(s3.client, new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { expiresIn: seconds });
}
