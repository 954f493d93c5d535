import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
// s3rver ships no types; this is the little of it the tests use.
import S3rverModule from 's3rver';

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}

interface S3rverLike {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: Server;
  /** Koa's middleware list (s3rver is a Koa app). */
  middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void> | void>;
}

const xml = (text: string): string => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * s3rver answers neither ListMultipartUploads nor AbortMultipartUpload
 * (NotImplemented, MethodNotAllowed). These two answer them from s3rver's own
 * upload folders (BUCKET/._S3rver_uploads/ID/key), as S3 does, so a test can
 * list what a killed upload left, and hopper's abort of it is real.
 */
function multipartCalls(dir: string) {
  return async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    const [bucket, ...rest] = ctx.path.slice(1).split('/').filter((part, i) => i === 0 || part !== '');
    const uploads = path.join(dir, bucket ?? '', '._S3rver_uploads');
    if (ctx.method === 'GET' && rest.length === 0 && 'uploads' in ctx.query) {
      const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
      const found = existsSync(uploads)
        ? readdirSync(uploads)
            .map((id) => ({ id, keyFile: path.join(uploads, id, 'key') }))
            .filter((u) => existsSync(u.keyFile))
            .map((u) => ({ id: u.id, key: readFileSync(u.keyFile, 'utf8'), at: statSync(u.keyFile).mtime.toISOString() }))
            .filter((u) => u.key.startsWith(prefix))
        : [];
      ctx.type = 'application/xml';
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${xml(bucket)}</Bucket><Prefix>${xml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        found.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${xml(u.id)}</UploadId><Initiated>${u.at}</Initiated></Upload>`).join('') +
        `</ListMultipartUploadsResult>`;
      return;
    }
    const uploadId = ctx.query.uploadId;
    if (ctx.method === 'DELETE' && rest.length > 0 && typeof uploadId === 'string' && /^[A-Za-z0-9_-]+$/.test(uploadId)) {
      rmSync(path.join(uploads, uploadId), { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    await next();
  };
}
const S3rver = S3rverModule as unknown as new (o: Record<string, unknown>) => S3rverLike;

export interface TestS3 {
  endpoint: string;
  port: number;
  config: Record<string, unknown>;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on 127.0.0.1 with a bucket `outputs`. */
export async function s3Server(port = 0): Promise<TestS3> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port, silent: true, directory: dir, configureBuckets: [{ name: 'outputs' }] });
  server.middleware.unshift(multipartCalls(dir));
  const addr = await server.run();
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    endpoint,
    port: addr.port,
    config: { endpoint, region: 'us-east-1', bucket: 'outputs', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true, linkExpiry: '1h' },
    close: async () => {
      server.httpServer.closeAllConnections();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
