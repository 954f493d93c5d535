import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Whether a secret a client sent is the one configured, compared in constant time. */
export function sameSecret(given: string | null | undefined, want: string): boolean {
  if (given === null || given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  url: URL;
}

export interface Route {
  methods: readonly string[];
  /** `/jobs/:id` style; each `:name` matches one path segment. */
  path: string;
  /** Served without the bearer token (health checks, signed download links). */
  public?: boolean;
  /**
   * Changes what hopper does (takes a request, cancels a job): needs the token
   * even where reads need none, unless http.allowAnonymousSubmit (with no token set).
   */
  writes?: boolean;
  handler(c: RouteContext): Promise<void> | void;
}

interface Compiled extends Route {
  re: RegExp;
  keys: string[];
}

export function compile(routes: readonly Route[]): Compiled[] {
  return routes.map((r) => {
    const keys: string[] = [];
    const re = new RegExp(
      `^${r.path.replace(/\/:(\w+)/g, (_m, k: string) => {
        keys.push(k);
        return '/([^/]+)';
      })}/?$`,
    );
    return { ...r, re, keys };
  });
}

/** Finds the route for a request: 404 for no path, 405 for a path without that method. */
export function match(routes: readonly Compiled[], method: string, pathname: string): { route: Compiled; params: Record<string, string> } {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.re.exec(pathname);
    if (!m) continue;
    pathMatched = true;
    if (!route.methods.includes(method)) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((k, i) => {
      try {
        params[k] = decodeURIComponent(m[i + 1]);
      } catch {
        throw new HttpError(400, 'the path is not valid URL encoding');
      }
    });
    return { route, params };
  }
  throw pathMatched ? new HttpError(405, `${method} is not allowed here`) : new HttpError(404, 'no such route');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
