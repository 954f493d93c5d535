import { request } from 'node:http';

export interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/**
 * GETs (or HEADs) a path on a running daemon exactly as written (no URL
 * normalisation), within 10 s. `base` is `d.http.address()`.
 */
export function apiGet(base: string, rawPath: string, headers: Record<string, string> = {}, method = 'GET'): Promise<ApiAnswer> {
  return apiCall(base, rawPath, { headers, method });
}

/** GETs a path and returns its JSON body, failing the test (with the body's start) unless the answer is 200 JSON. */
export async function apiJson<T>(base: string, rawPath: string, headers: Record<string, string> = {}): Promise<T> {
  const a = await apiGet(base, rawPath, headers);
  if (a.status !== 200 || !/^application\/json/.test(String(a.headers['content-type']))) {
    throw new Error(`${rawPath}: ${a.status} ${String(a.headers['content-type'])} ${a.text.slice(0, 300)}`);
  }
  return a.json as T;
}

/**
 * POSTs `body` to a path on a running daemon, within 10 s. `chunks` sends it
 * in that many pieces without a Content-Length (chunked), as a stream would.
 */
export function apiPost(base: string, rawPath: string, body: string | Buffer = '', headers: Record<string, string> = {}, o: { chunks?: number } = {}): Promise<ApiAnswer> {
  return apiCall(base, rawPath, { headers, method: 'POST', body, chunks: o.chunks });
}

function apiCall(base: string, rawPath: string, o: { headers: Record<string, string>; method: string; body?: string | Buffer; chunks?: number }): Promise<ApiAnswer> {
  const { hostname, port } = new URL(base);
  const { method, headers } = o;
  const body = o.body === undefined ? undefined : Buffer.from(o.body);
  const sized = body && !o.chunks ? { 'content-length': String(body.length) } : {};
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), method, path: rawPath, headers: { ...sized, ...headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${rawPath.slice(0, 100)} within 10 s`)));
    req.on('error', reject);
    if (body && o.chunks) {
      const size = Math.ceil(body.length / o.chunks);
      for (let i = 0; i < body.length; i += size) req.write(body.subarray(i, i + size));
      req.end();
    } else req.end(body);
  });
}

/** The `error` of a JSON error answer (fails when the answer is not one). */
export function errorOf(a: ApiAnswer): string {
  const body = a.json as { error?: unknown } | undefined;
  if (typeof body?.error !== 'string' || !String(a.headers['content-type']).includes('application/json')) {
    throw new Error(`not a JSON {error} answer: ${a.status} ${a.text.slice(0, 200)}`);
  }
  return body.error;
}
