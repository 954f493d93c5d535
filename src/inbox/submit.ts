import { randomUUID } from 'node:crypto';
import { InvalidFileError } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import { parseYaml, type ParsedFile } from '../schemas/document.js';
import type { Job } from '../store/jobs.js';
import { resumeAs, storeCancel, whyNever, type CancelOutcome, type IntakeDeps } from './intake.js';
import { requestFromFile } from './request.js';

// The inbox's other door: a request or a cancel handed over directly (POST
// /requests, POST /jobs/:id/cancel) instead of as a file. It is validated by
// the same code as a dropped file, stored the same way (the job, its intake
// record, its `requested` event and notifications in one transaction), and
// answered only once that commit is on disk, as a file leaves the inbox only then.

export type SubmitOutcome =
  | { kind: 'created'; job: Job }
  /** The same `id` with the same content: the job it became. */
  | { kind: 'existing'; job: Job }
  /** The same `id` with other content. */
  | { kind: 'conflict'; job: Job };

export type { CancelOutcome } from './intake.js';

/** A request document whose `kind` may be left out; any other kind is refused here. */
function asRequest(parsed: ParsedFile): ParsedFile {
  const value = parsed.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return parsed; // the schema says why
  const doc = value as Record<string, unknown>;
  if (doc.kind === undefined) doc.kind = 'request';
  else if (doc.kind !== 'request') {
    throw new InvalidFileError([
      { path: 'kind', message: `this takes requests (kind: request, or no kind at all), not "${String(doc.kind)}"; a cancel goes to POST /jobs/ID/cancel`, ...parsed.locate(['kind']) },
    ]);
  }
  return parsed;
}

/**
 * Takes a request document (YAML or JSON text) as a dropped file is taken.
 * Throws InvalidFileError with every problem and its place when it is not a
 * valid request; `source` names where it came from (stored as the job's file).
 */
export async function submitRequest(deps: IntakeDeps, text: string, source: string): Promise<SubmitOutcome> {
  const { ctx } = deps;
  const { input, recipe } = requestFromFile(asRequest(parseYaml(text)), deps.recipes, source);
  const refused = whyNever(ctx.config, recipe);
  if (refused) throw new InvalidFileError([{ path: 'recipe', message: refused }]);
  const now = ctx.clock.now();
  // Each submission is one of its own, as each dropped file is: only an `id` makes two the same.
  const key = `http:${randomUUID()}`;
  const outcome = await ctx.store.later(() => ctx.store.jobs.accept(input, key, now, (job) => planNotifications(job, recipe, { event: 'requested' }, now)));
  if (outcome.kind === 'conflict') return outcome;
  // Committed: to its lane now, as a dropped file's job goes (a repeat too, should a
  // failed sync have kept the first from its answer: the lane takes a job once).
  if (outcome.kind === 'created' || resumeAs(outcome.job) === 'queue') deps.onJob(outcome.job);
  if (outcome.kind === 'created') ctx.log.info({ job: outcome.job.id, recipe: outcome.job.recipe, lane: outcome.job.lane, via: source }, 'request accepted');
  // Answered once the commit is on disk, as a file leaves the inbox only then.
  await ctx.store.sync();
  return outcome.kind === 'created' ? { kind: 'created', job: outcome.job } : { kind: 'existing', job: outcome.job };
}

/** Cancels a job by its id or its request's id, as a cancel file does: looked up and marked in one transaction. */
export async function submitCancel(deps: IntakeDeps, target: string, source: string): Promise<CancelOutcome> {
  const { ctx } = deps;
  const now = ctx.clock.now();
  const outcome = await ctx.store.later(() => storeCancel(ctx, target, `http:${randomUUID()}`, source, now));
  if (outcome.kind !== 'canceling') return outcome;
  deps.onCancel(outcome.job);
  ctx.log.info({ job: outcome.job.id, via: source }, 'cancel accepted');
  await ctx.store.sync();
  return { kind: 'canceling', job: ctx.store.jobs.get(outcome.job.id) ?? outcome.job };
}
