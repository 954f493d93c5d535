import http from 'node:http';

// The few calls the main thread makes to the Docker engine (is it there, which
// containers and services are hopper's, remove one, the swarm's nodes), over its socket, without dockerode:
// dockerode and what it brings (ssh2, protobuf) cost ~30 MiB of memory, which
// a daemon whose containers run on its worker threads need not hold.

export interface EngineAnswer {
  status: number;
  body: string;
}

/** One request to the engine's API; rejects on no answer within `timeoutMs`. */
export function engineRequest(socketPath: string, method: 'GET' | 'DELETE' | 'POST', path: string, timeoutMs = 10_000, body?: unknown): Promise<EngineAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { host: 'docker', ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) };
    const req = http.request({ socketPath, method, path, timeout: timeoutMs, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4 * 1024 * 1024) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The engine's own words for a failed call (its JSON `message`), else the status. */
export function engineProblem(answer: EngineAnswer): string {
  try {
    const message = (JSON.parse(answer.body) as { message?: unknown }).message;
    if (typeof message === 'string') return message;
  } catch {
    /* not JSON */
  }
  return `the engine answered ${answer.status}`;
}

/**
 * A call whose answer is JSON: the parsed body (undefined when empty, or on 404
 * where `missingOk`); any other answer above 299 throws with the engine's words.
 */
export async function engineJson<T>(socketPath: string, method: 'GET' | 'DELETE' | 'POST', path: string, o: { body?: unknown; missingOk?: boolean; timeoutMs?: number } = {}): Promise<T | undefined> {
  const answer = await engineRequest(socketPath, method, path, o.timeoutMs ?? 10_000, o.body);
  if (answer.status === 404 && o.missingOk) return undefined;
  if (answer.status >= 300) throw new Error(engineProblem(answer));
  return answer.body ? (JSON.parse(answer.body) as T) : undefined;
}
