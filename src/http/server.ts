import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Context } from '../context.js';
import { crossSiteRefusal, foreignHostRefusal } from './origin.js';
import { compile, HttpError, match, sameSecret, sendJson, type Route } from './router.js';

const PARSER_REFUSALS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'the request URL or headers are too long'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'the request body has too long chunk extensions'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request was not received in time'],
};

/**
 * A request the HTTP parser refuses (URL and headers beyond 16 KiB, bad syntax, too slow)
 * gets a whole JSON answer, and the connection closes after the client has sent the rest
 * (bounded by a timeout): closing with unread input resets the connection, and on Node 24
 * a client then sees ECONNRESET instead of Node's default answer. Node reads on and calls
 * this again for each chunk that arrives; only the first call answers.
 */
function refusedRequest(answered: WeakSet<Socket>) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (answered.has(socket)) return;
    answered.add(socket);
    const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, words] = PARSER_REFUSALS[err.code ?? ''] ?? [400, 'the request is not valid HTTP'];
    const body = JSON.stringify({ error: words });
    socket.setTimeout(5000, () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
    );
  };
}

function tokenOk(header: string | undefined, token: string): boolean {
  return sameSecret(/^Bearer (.+)$/.exec(header ?? '')?.[1], token);
}

export interface HttpServer {
  server: Server;
  /** `http://host:port` as bound (the port is known once listening). */
  address(): string;
  close(): Promise<void>;
}

/**
 * The HTTP endpoint: read-only views of the store, downloads, and the
 * intake's door for requests and cancels. Routes are passed in, so the server
 * knows nothing of lanes or steps.
 */
export async function startHttpServer(ctx: Context, routes: readonly Route[]): Promise<HttpServer> {
  const compiled = compile(routes);
  const token = ctx.config.http.token;
  const server = createServer((req, res) => {
    const respond = async (): Promise<void> => {
      if ((req.url ?? '').length > 8192) throw new HttpError(414, 'the URL is too long');
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://localhost');
      } catch {
        throw new HttpError(400, 'the request URL is not valid');
      }
      const { route, params } = match(compiled, req.method ?? 'GET', url.pathname);
      if (token && !route.public && !tokenOk(req.headers.authorization, token)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new HttpError(401, 'a bearer token is required');
      }
      if (!token && !route.public) {
        const refused = foreignHostRefusal(req, { boundHost: ctx.config.http.host, publicUrl: ctx.publicUrl() });
        if (refused) throw new HttpError(403, refused);
      }
      if (route.writes) {
        if (!token && !ctx.config.http.allowAnonymousSubmit) {
          throw new HttpError(403, 'taking requests over HTTP needs http.token in hopper.yaml (or http.allowAnonymousSubmit: true, to take them from anyone who reaches this address)');
        }
        const refused = crossSiteRefusal(req, { boundHost: ctx.config.http.host, publicUrl: ctx.publicUrl(), anonymous: !token });
        if (refused) throw new HttpError(403, refused);
      }
      await route.handler({ req, res, params, url });
    };
    respond().catch((err: unknown) => {
      // The client went away mid-request: nobody to answer, nothing to log.
      if (req.destroyed && !(err instanceof HttpError)) return;
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) ctx.log.error({ url: req.url?.split('?')[0], err: (err as Error).message }, 'http handler failed');
      if (res.headersSent) res.destroy();
      else {
        // A body left unread (refused before it was read) is not read on at leisure: the connection ends with the answer.
        if (!req.complete) res.setHeader('connection', 'close');
        sendJson(res, status, { error: status === 500 ? 'internal error' : (err as Error).message });
      }
    });
  });
  server.on('clientError', refusedRequest(new WeakSet()));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.config.http.port, ctx.config.http.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    address: () => `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
