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
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port: Number(port), method, path: rawPath, headers, timeout: 10_000 }, (res) => {
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
    req.end();
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
