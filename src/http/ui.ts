import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from '../context.js';
import { noQuery } from './query.js';
import { HttpError, sendJson, type Route } from './router.js';

/**
 * The dashboard's files: a fixed map from URL to file name, so no part of a
 * URL ever becomes a path.
 */
const FILES: ReadonlyArray<{ url: string; file: string; type: string }> = [
  { url: '/ui', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/ui/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
  { url: '/ui/icon.svg', file: 'icon.svg', type: 'image/svg+xml' },
];

/**
 * No inline script or style, nothing from elsewhere, no framing: a hostile
 * string that reached the page could not run even if it were parsed as HTML.
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const HEADERS = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // Asked again each time (answered 304 while unchanged): an upgraded daemon never serves an old page.
  'cache-control': 'no-cache',
};

/**
 * Where the files are: beside this module under tsx (src/http/ui/), and from
 * the esbuild bundle (dist/http/), which holds only compiled TypeScript, in
 * src/http/ui/ of the same package.
 */
export function uiFolder(): string {
  const here = new URL('./ui/', import.meta.url);
  if (existsSync(new URL('index.html', here))) return fileURLToPath(here);
  return fileURLToPath(new URL('../../src/http/ui/', import.meta.url));
}

interface Loaded {
  body: Buffer;
  etag: string;
}

/**
 * `GET /ui/auth`: whether the JSON routes want the bearer token, so the page
 * asks for it at once instead of after a 401. Public: any route's 401 says as
 * much. `token` is the one the server checks (read when it started).
 */
export function uiAuthRoute(ctx: Context): Route {
  const token = Boolean(ctx.config.http.token);
  return {
    methods: ['GET', 'HEAD'],
    path: '/ui/auth',
    public: true,
    handler({ res, url }) {
      noQuery(url);
      sendJson(res, 200, { token });
    },
  };
}

/** `GET /ui` and its assets: public (a browser's navigation sends no bearer token), and holding no data; the page fetches that with the token. */
export function uiRoutes(ctx: Context, folder = uiFolder()): Route[] {
  return [uiAuthRoute(ctx), ...staticRoutes(ctx, folder)];
}

function staticRoutes(ctx: Context, folder: string): Route[] {
  return FILES.map(({ url, file, type }) => {
    let loaded: Loaded | undefined;
    // Read once, on first use: a daemon whose installation lacks the files still starts, and says why the page is missing.
    const load = (): Loaded => {
      if (loaded) return loaded;
      let body: Buffer;
      try {
        body = readFileSync(path.join(folder, file));
      } catch (err) {
        ctx.log.error({ file: path.join(folder, file), err: (err as Error).message }, 'a dashboard file is missing');
        throw new HttpError(404, `the dashboard file ${file} is missing from this installation`);
      }
      loaded = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      return loaded;
    };
    return {
      methods: ['GET', 'HEAD'],
      path: url,
      public: true,
      handler({ req, res, url: reqUrl }) {
        noQuery(reqUrl);
        const { body, etag } = load();
        const fresh = req.headers['if-none-match'] === etag;
        res.writeHead(fresh ? 304 : 200, { ...HEADERS, 'content-type': type, etag, ...(fresh ? {} : { 'content-length': body.length }) });
        res.end(fresh || req.method === 'HEAD' ? undefined : body);
      },
    };
  });
}
