import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { Context } from '../context.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import type { RecipeRegistry } from '../recipes/registry.js';
import { recipeFromFile, type Recipe } from '../recipes/recipe.js';
import { parseYaml } from '../schemas/document.js';
import { assertNoProblems, fileKind, schemaProblems } from '../schemas/validate.js';
import { runUnits } from '../store/atomic.js';
import { isDatabaseTrouble } from '../store/db.js';
import { END_STATES, type Job, type NewJob } from '../store/jobs.js';
import { mapInTurns } from '../turns.js';
import { formatBytes } from '../units.js';
import { localNeed, overBudget } from '../queue/resources.js';
import { archiveAll, identityOf, reject, ReplacedError, type FileIdentity } from './files.js';
import { requestFromFile } from './request.js';

export interface IntakeDeps {
  ctx: Context;
  recipes: RecipeRegistry;
  /** A new job was stored: queue it. */
  onJob(job: Job): void;
  /** A cancel for a waiting or running job was stored: stop it. */
  onCancel(job: Job): void;
}

export type IntakeResult =
  | { outcome: 'accepted' | 'duplicate'; kind: 'request' | 'cancel' | 'recipe'; jobId?: string }
  | { outcome: 'rejected'; problems: Problem[] }
  | { outcome: 'skipped'; why: string };

/** Identifies this very file (not just its content), so a replay after a crash is recognised. */
function intakeKey(name: string, st: { size: number; mtimeMs: number; ino: number }, text: string): string {
  const content = createHash('sha256').update(text).digest('hex');
  return createHash('sha256').update(`${name}\n${st.size}\n${st.mtimeMs}\n${st.ino}\n${content}`).digest('hex');
}

/**
 * Reads a dropped file through one descriptor opened without following a
 * link: what is checked (a regular file, its size) is what is read, even if
 * the name is swapped meanwhile. A non-blocking open keeps a FIFO from
 * hanging it. Synchronous: four calls of microseconds for a file of at most
 * inbox.maxFileBytes, where each one sent through libuv's thread pool cost a
 * hand-over between threads several times that (see steps/workdir.ts).
 */
function readDropped(file: string, maxBytes: number): { text: string; st: Stats } | { problem: unknown } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      return { problem: problem('is a symbolic link; drop the file itself (write it elsewhere, then rename it into the inbox)') };
    }
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('a folder'), { code: 'EISDIR' });
    if (!st.isFile()) return { problem: problem('is not a regular file') };
    if (st.size > maxBytes) return { problem: problem(`is ${formatBytes(st.size)}; the inbox takes files up to ${formatBytes(maxBytes)} (inbox.maxFileBytes)`) };
    // At most maxBytes, even if the file grows after the check.
    const buf = Buffer.alloc(st.size);
    const bytesRead = readSync(fd, buf, 0, st.size, 0);
    return { text: buf.toString('utf8', 0, bytesRead), st };
  } finally {
    closeSync(fd);
  }
}

/** Trouble of the machine, not of the file: leave the file for a later try. */
export function isTransient(err: unknown): boolean {
  return isDatabaseTrouble(err) || ['ENOSPC', 'EIO', 'EMFILE', 'ENFILE'].includes((err as { code?: string }).code ?? '');
}

/** Why a job of this recipe could never run on this host with this config, if so. */
export function whyNever(config: Config, recipe: Recipe): string | undefined {
  const impossible = overBudget(config.resources, localNeed(recipe, config.docker.swarm !== undefined));
  if (impossible) return `recipe ${recipe.name} ${impossible}; it could never start here`;
  if (recipe.output.upload === 's3' && !config.s3) return `recipe ${recipe.name} uploads to S3, but hopper.yaml has no s3 section; ask the admin`;
  return undefined;
}

function problem(message: string, problemPath = ''): InvalidFileError {
  return new InvalidFileError([{ path: problemPath, message }]);
}

/** What a request with an `id` already taken by other content is told. */
export function conflictMessage(requestId: string | null, jobId: string): string {
  return `id "${requestId}" is already job ${jobId}, with different content; use a new id for a new request`;
}

export type CancelOutcome = { kind: 'canceling'; job: Job } | { kind: 'unknown' } | { kind: 'ended'; job: Job };

/** Why a cancel is refused, in the words a cancel file's rejection and POST /jobs/:id/cancel use. */
export function cancelRefusal(target: string, outcome: Exclude<CancelOutcome, { kind: 'canceling' }>): string {
  return outcome.kind === 'unknown' ? `no job or request with id "${target}"` : `job ${outcome.job.id} already ended (${outcome.job.state}); there is nothing to cancel`;
}

/**
 * A cancel's target looked up and marked, with its intake record, inside the
 * caller's transaction: what a cancel file and POST /jobs/:id/cancel share.
 */
export function storeCancel(ctx: Context, target: string, key: string, source: string, now: number): CancelOutcome {
  const job = ctx.store.jobs.find(target);
  if (!job) return { kind: 'unknown' };
  if (END_STATES.includes(job.state)) return { kind: 'ended', job };
  ctx.store.jobs.requestCancel(job.id);
  ctx.store.jobs.recordIntake(key, 'cancel', job.id, source, now);
  return { kind: 'canceling', job: { ...job, cancelRequested: true } };
}

/** What one file asks for, found by reading and validating it, before anything is stored; `read`: which file was read, when one was (see FileIdentity). */
type Plan = { file: string; read?: FileIdentity } & (
  | { kind: 'request'; key: string; input: NewJob; recipe: Recipe }
  | { kind: 'cancel'; key: string; target: string; where: { line: number; col: number } | undefined }
  | { kind: 'recipe'; key: string; recipe: Recipe; text: string }
  /** Stored before a crash, not yet moved: finish the move, make nothing twice. */
  | { kind: 'seen'; seenKind: string; jobId: string | null }
  | { kind: 'reject'; problems: Problem[] }
  | { kind: 'skip'; why: string }
);

/** Reads, parses and validates one file. Writes nothing; a problem becomes a rejection plan. */
async function planFile(deps: IntakeDeps, file: string): Promise<Plan> {
  const { ctx } = deps;
  let read: ReturnType<typeof readDropped>;
  try {
    read = readDropped(file, ctx.config.inbox.maxFileBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { file, kind: 'skip', why: 'gone' };
    if (code === 'EISDIR') return { file, kind: 'skip', why: 'a folder' };
    read = { problem: err };
  }
  if ('problem' in read) return failedPlan(ctx, file, read.problem);
  return { ...planText(deps, file, read.text, read.st), read: identityOf(read.st) };
}

/** What a file's text asks for, or its rejection. */
function planText(deps: IntakeDeps, file: string, text: string, st: Stats): Plan {
  const { ctx } = deps;
  try {
    const key = intakeKey(path.basename(file), st, text);
    const seen = ctx.store.jobs.intakeSeen(key);
    if (seen) return { file, kind: 'seen', seenKind: seen.kind, jobId: seen.jobId };
    const parsed = parseYaml(text);
    const kind = fileKind(parsed);
    if (kind === 'request') {
      const { input, recipe } = requestFromFile(parsed, deps.recipes, path.basename(file));
      const refused = whyNever(ctx.config, recipe);
      if (refused) throw problem(refused, 'recipe');
      return { file, kind: 'request', key, input, recipe };
    }
    if (kind === 'cancel') {
      assertNoProblems(schemaProblems('cancel', parsed));
      return { file, kind: 'cancel', key, target: (parsed.value as { job: string }).job, where: parsed.locate(['job']) };
    }
    if (!ctx.config.inbox.acceptRecipes) {
      throw problem('recipe files are not accepted in this inbox (inbox.acceptRecipes: false); ask the admin to add it to recipes/', 'kind');
    }
    return { file, kind: 'recipe', key, recipe: recipeFromFile(parsed), text };
  } catch (err) {
    return failedPlan(ctx, file, err);
  }
}

function failedPlan(ctx: Context, file: string, err: unknown): Plan {
  if (isTransient(err)) {
    ctx.log.error({ file: path.basename(file), err: (err as Error).message }, 'could not take the file now; it stays in the inbox');
    return { file, kind: 'skip', why: (err as Error).message };
  }
  if (err instanceof InvalidFileError) return { file, kind: 'reject', problems: err.problems };
  ctx.log.error({ file: path.basename(file), err: (err as Error).stack }, 'unexpected error taking a file');
  return { file, kind: 'reject', problems: [{ path: '', message: `could not be processed: ${(err as Error).message}` }] };
}

/** What storing one plan did, decided inside the batch's transaction. */
type Stored =
  | { file: string; result: IntakeResult; archiveAs?: string; job?: Job; then?: 'queue' | 'cancel' }
  | { file: string; reject: Problem[] };

/** One plan's writes, inside the batch's transaction; a problem found only now (an id conflict) rejects the file alone. */
function storePlan(deps: IntakeDeps, plan: Plan, now: number): Stored {
  const { ctx } = deps;
  const name = path.basename(plan.file);
  switch (plan.kind) {
    case 'request': {
      const outcome = ctx.store.jobs.accept(plan.input, plan.key, now, (job) => planNotifications(job, plan.recipe, { event: 'requested' }, now));
      if (outcome.kind === 'conflict') {
        return { file: plan.file, reject: [{ path: 'id', message: conflictMessage(plan.input.requestId, outcome.job.id) }] };
      }
      const created = outcome.kind === 'created';
      return { file: plan.file, result: { outcome: created ? 'accepted' : 'duplicate', kind: 'request', jobId: outcome.job.id }, archiveAs: outcome.job.id, job: outcome.job, then: created ? 'queue' : undefined };
    }
    case 'cancel': {
      const outcome = storeCancel(ctx, plan.target, plan.key, name, now);
      if (outcome.kind !== 'canceling') return { file: plan.file, reject: [{ path: 'job', message: cancelRefusal(plan.target, outcome), ...plan.where }] };
      const { job } = outcome;
      return { file: plan.file, result: { outcome: 'accepted', kind: 'cancel', jobId: job.id }, archiveAs: `cancel-${job.id}`, job, then: 'cancel' };
    }
    case 'recipe':
      ctx.store.jobs.recordIntake(plan.key, 'recipe', null, name, now);
      return { file: plan.file, result: { outcome: 'accepted', kind: 'recipe' }, archiveAs: `recipe-${plan.recipe.name}` };
    case 'seen': {
      const kind = plan.seenKind === 'cancel' || plan.seenKind === 'recipe' ? plan.seenKind : 'request';
      const job = plan.jobId ? (ctx.store.jobs.get(plan.jobId) ?? undefined) : undefined;
      return { file: plan.file, result: { outcome: 'duplicate', kind, jobId: plan.jobId ?? undefined }, archiveAs: plan.jobId ?? 'seen', job, then: job ? resumeAs(job) : undefined };
    }
    case 'reject':
      return { file: plan.file, reject: plan.problems };
    case 'skip':
      return { file: plan.file, result: { outcome: 'skipped', why: plan.why } };
  }
}

/** A stored job that a crash kept from its lane (or its cancel) gets there now; both are idempotent. */
export function resumeAs(job: Job): 'queue' | 'cancel' | undefined {
  if (END_STATES.includes(job.state)) return undefined;
  if (job.cancelRequested) return 'cancel';
  return job.state === 'queued' || job.state === 'retrying' ? 'queue' : undefined;
}

/**
 * How long reading and parsing a batch's files may hold the event loop before
 * it gives a turn to what waits (an HTTP answer). Measured on the 10,000-file
 * burst: the first batches, parsed while V8 still compiled the YAML parser and
 * the validators, held it 15-25 ms for eight files, and GET /status waited
 * behind them up to 45 ms.
 */
const PLAN_SLICE_MS = 3;

/**
 * Takes a batch of files from the inbox: each is read, parsed and validated;
 * all that are good are stored in ONE transaction, and only after its commit
 * are they moved to state/archive/ and queued. A bad file goes to
 * inbox/rejected/ with its reasons, alone; nothing about it can stop the
 * daemon or touch another file. If the store cannot commit (disk full, busy),
 * every file stays in the inbox for a later try. `onStored` is called once
 * the batch is committed and its rejections are out, before the wait for the
 * commit to reach the disk.
 */
export async function takeBatch(deps: IntakeDeps, files: readonly string[], onStored: () => void = () => {}): Promise<IntakeResult[]> {
  const { ctx } = deps;
  const plans = await mapInTurns(files, (f) => planFile(deps, f), { sliceMs: PLAN_SLICE_MS });
  // Recipes are installed (a file in recipes/) before the transaction that records them.
  for (const [i, plan] of plans.entries()) {
    if (plan.kind !== 'recipe') continue;
    try {
      const installed = await deps.recipes.install(plan.recipe, plan.text);
      ctx.log.info({ recipe: plan.recipe.name, file: path.basename(installed) }, 'recipe installed from the inbox');
    } catch (err) {
      plans[i] = failedPlan(ctx, plan.file, err);
    }
  }
  // Stored when the group commits are: not while a checkpoint holds them (store/checkpoints.ts).
  await ctx.store.writable();
  const now = ctx.clock.now();
  let stored: Stored[];
  try {
    const outcomes = runUnits(ctx.store.db, plans.map((plan) => () => storePlan(deps, plan, now)), isTransient);
    stored = outcomes.map((o, i) => (o.ok ? o.value : { file: plans[i].file, reject: failedPlanProblems(ctx, plans[i].file, o.err) }));
  } catch (err) {
    ctx.log.error({ files: files.length, err: (err as Error).message }, 'could not store the files now; they stay in the inbox');
    return files.map(() => ({ outcome: 'skipped', why: (err as Error).message }));
  }
  // Committed: now the files may leave the inbox, and the jobs their queue.
  for (const s of stored) {
    if (!('result' in s) || !s.job) continue;
    if (s.then === 'queue') deps.onJob(s.job);
    else if (s.then === 'cancel') deps.onCancel(s.job);
    if (s.result.outcome === 'accepted' && s.result.kind === 'request') ctx.log.info({ job: s.job.id, recipe: s.job.recipe, lane: s.job.lane, file: path.basename(s.file) }, 'request accepted');
    else if (s.result.outcome === 'accepted') ctx.log.info({ job: s.job.id, file: path.basename(s.file) }, 'cancel accepted');
    else ctx.log.info({ job: s.job.id, file: path.basename(s.file) }, 'file already taken; existing job stands');
  }
  const results: IntakeResult[] = [];
  // stored[i] is what plans[i] became: plans[i].read is the file that was read.
  for (const [i, s] of stored.entries()) {
    if ('result' in s) {
      results.push(s.result);
      continue;
    }
    // Before the next batch is taken: rejections of two batches never pick the same free name.
    await reject(s.file, ctx.paths.rejected, s.reject, new Date(now), ctx.log, plans[i].read).catch((e: unknown) => {
      if (e instanceof ReplacedError) ctx.log.info({ file: path.basename(s.file) }, e.message);
      else ctx.log.error({ file: path.basename(s.file), err: (e as Error).message }, 'could not move the rejected file');
    });
    ctx.log.warn({ file: path.basename(s.file), problems: s.reject.length }, 'file rejected');
    results.push({ outcome: 'rejected', problems: s.reject });
  }
  // Stored: the next batch may start (see inbox/arrivals.ts) while this one waits for the disk.
  onStored();
  const moves = stored.flatMap((s, i) => ('result' in s && s.archiveAs ? [{ file: s.file, prefix: s.archiveAs, read: plans[i].read }] : []));
  try {
    // The file is the request's only other copy: it leaves the inbox once the commit is on disk.
    await ctx.store.sync();
    await archiveStored(ctx, moves);
  } catch (err) {
    ctx.log.error({ files: moves.length, err: (err as Error).message }, 'stored, but could not write the store to disk; the files stay in the inbox for now');
  }
  return results;
}

function failedPlanProblems(ctx: Context, file: string, err: unknown): Problem[] {
  const plan = failedPlan(ctx, file, err);
  return plan.kind === 'reject' ? plan.problems : [{ path: '', message: `could not be processed: ${(err as Error).message}` }];
}

/**
 * Moves files whose content is stored. They must not be rejected any more:
 * a file whose move fails stays in the inbox, and the next look finds it
 * stored and only tries the move again.
 */
async function archiveStored(ctx: Context, moves: Array<{ file: string; prefix: string; read?: FileIdentity }>): Promise<void> {
  if (moves.length === 0) return;
  let outcomes: Array<Error | undefined>;
  try {
    outcomes = await archiveAll(moves, ctx.paths.archive);
  } catch (err) {
    outcomes = moves.map(() => err as Error);
  }
  outcomes.forEach((err, i) => {
    if (err instanceof ReplacedError) ctx.log.info({ file: path.basename(moves[i].file) }, err.message);
    else if (err) ctx.log.error({ file: path.basename(moves[i].file), err: err.message }, 'stored, but could not move the file out of the inbox; will try again');
  });
}
