import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
// s3rver ships no types; this is the little of it the tests use.
import S3rverModule from 's3rver';

interface S3rverLike {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer: Server;
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
