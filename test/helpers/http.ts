import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url: string;
  server: Server;
  hits: string[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 with the given handler, for steps to fetch from. */
export async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A loopback port where a connection is refused: 2, where nothing listens (and
 * which fetch does not block, as it does 1). A port freed by a closed server was
 * now and then taken by another test meanwhile, and the connection was reset or
 * answered instead of refused.
 */
export const REFUSING_PORT = 2;
