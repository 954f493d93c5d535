import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '../context.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { cancelRefusal, conflictMessage, isTransient } from '../inbox/intake.js';
import type { CancelOutcome, SubmitOutcome } from '../inbox/submit.js';
import type { Job } from '../store/jobs.js';
import { formatBytes } from '../units.js';
import { noQuery } from './query.js';
import { HttpError, sendJson, type Route } from './router.js';

/** The intake behind the two routes, handed in once the daemon's lanes exist. */
export interface HttpIntake {
  request(text: string, source: string): Promise<SubmitOutcome>;
  cancel(target: string, source: string): Promise<CancelOutcome>;
}

/**
 * The body as text, at most `maxBytes` (inbox.maxFileBytes, as for a dropped
 * file): a longer one is refused as soon as it shows, by its Content-Length or
 * by what arrives, and the connection is closed after the answer.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<string> {
  const tooLarge = (size: string): HttpError => {
    res.setHeader('connection', 'close');
    return new HttpError(413, `the body is ${size}; requests take at most ${formatBytes(maxBytes)} (inbox.maxFileBytes)`);
  };
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return Promise.reject(new HttpError(415, `a body in ${encoding} encoding is not taken; send it as it is`));
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(formatBytes(declared)));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.resume(); // the rest is read and dropped, so the answer reaches the client
        reject(tooLarge(`over ${formatBytes(maxBytes)}`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (size <= maxBytes) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.once('error', reject);
  });
}

/** Problems as the answer shows them: the same sentences as NAME.error.txt, with line and column where known. */
function problemsOf(problems: readonly Problem[]): Array<{ path: string; line: number | null; column: number | null; message: string }> {
  return problems.map((p) => ({ path: p.path, line: p.line ?? null, column: p.line === undefined ? null : (p.col ?? 1), message: p.message }));
}

function jobAnswer(ctx: Context, job: Job): Record<string, unknown> {
  return { id: job.id, requestId: job.requestId, state: job.state, links: { self: `${ctx.publicUrl()}/jobs/${encodeURIComponent(job.id)}` } };
}

export function intakeOf(intake: () => HttpIntake | undefined): HttpIntake {
  const i = intake();
  if (!i) throw new HttpError(503, 'hopper is not taking requests now (it is starting or stopping); try again in a moment');
  return i;
}

/** Trouble of the machine (the database busy, the disk full): the client may try again, as a file stays in the inbox. */
export async function orLater<T>(res: ServerResponse, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!isTransient(err)) throw err;
    res.setHeader('retry-after', '10');
    throw new HttpError(503, `hopper could not store this now (${(err as Error).message}); try again in a moment`);
  }
}

export const sourceOf = (req: IncomingMessage, what: string): string => `${what} from ${req.socket.remoteAddress ?? 'unknown'}`;

/** `POST /requests`: a request document (YAML or JSON, `kind` optional), taken as a dropped file is. */
export function submitRoute(ctx: Context, intake: () => HttpIntake | undefined): Route {
  return {
    methods: ['POST'],
    path: '/requests',
    writes: true,
    async handler({ req, res, url }) {
      noQuery(url);
      const text = await readBody(req, res, ctx.config.inbox.maxFileBytes);
      let outcome: SubmitOutcome;
      try {
        outcome = await orLater(res, intakeOf(intake).request(text, sourceOf(req, 'POST /requests')));
      } catch (err) {
        if (!(err instanceof InvalidFileError)) throw err;
        const n = err.problems.length;
        ctx.log.warn({ via: sourceOf(req, 'POST /requests'), problems: n }, 'request refused');
        sendJson(res, 400, { error: `the request is not valid (${n} problem${n === 1 ? '' : 's'})`, problems: problemsOf(err.problems) });
        return;
      }
      if (outcome.kind === 'conflict') {
        const message = conflictMessage(outcome.job.requestId, outcome.job.id);
        sendJson(res, 409, { error: message, problems: [{ path: 'id', line: null, column: null, message }] });
        return;
      }
      sendJson(res, outcome.kind === 'created' ? 201 : 200, jobAnswer(ctx, outcome.job));
    },
  };
}

/** `POST /jobs/:id/cancel`: as a cancel file naming the job (or its request's id). */
export function cancelRoute(ctx: Context, intake: () => HttpIntake | undefined): Route {
  return {
    methods: ['POST'],
    path: '/jobs/:id/cancel',
    writes: true,
    async handler({ req, res, params, url }) {
      noQuery(url);
      await readBody(req, res, ctx.config.inbox.maxFileBytes); // nothing is read from it; drained so the connection stays usable
      const outcome = await orLater(res, intakeOf(intake).cancel(params.id, sourceOf(req, 'POST /jobs/:id/cancel')));
      if (outcome.kind !== 'canceling') throw new HttpError(outcome.kind === 'unknown' ? 404 : 409, cancelRefusal(params.id, outcome));
      sendJson(res, 200, { ...jobAnswer(ctx, outcome.job), cancelRequested: true });
    },
  };
}
