import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { Context } from '../context.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { planNotifications } from '../notify/plan.js';
import type { RecipeRegistry } from '../recipes/registry.js';
import { recipeFromFile, type Recipe } from '../recipes/recipe.js';
import { parseYaml, type ParsedFile } from '../schemas/document.js';
import { assertNoProblems, fileKind, schemaProblems } from '../schemas/validate.js';
import { END_STATES, type Job } from '../store/jobs.js';
import { formatBytes } from '../units.js';
import { overBudget, needOf } from '../queue/resources.js';
import { archive, reject } from './files.js';
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
 * Reads a dropped file through one handle opened without following a link:
 * what is checked (a regular file, its size) is what is read, even if the
 * name is swapped meanwhile. A non-blocking open keeps a FIFO from hanging it.
 */
async function readDropped(file: string, maxBytes: number): Promise<{ text: string; st: Stats } | { problem: unknown }> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      return { problem: problem('is a symbolic link; drop the file itself (write it elsewhere, then rename it into the inbox)') };
    }
    throw err;
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw Object.assign(new Error('a folder'), { code: 'EISDIR' });
    if (!st.isFile()) return { problem: problem('is not a regular file') };
    if (st.size > maxBytes) return { problem: problem(`is ${formatBytes(st.size)}; the inbox takes files up to ${formatBytes(maxBytes)} (inbox.maxFileBytes)`) };
    // At most maxBytes, even if the file grows after the check.
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await handle.read(buf, 0, st.size, 0);
    return { text: buf.toString('utf8', 0, bytesRead), st };
  } finally {
    await handle.close();
  }
}

function problem(message: string, problemPath = ''): InvalidFileError {
  return new InvalidFileError([{ path: problemPath, message }]);
}

/** Trouble of the machine, not of the file: leave the file for a later try. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL' || ['ENOSPC', 'EIO', 'EMFILE', 'ENFILE'].includes(code);
}

/**
 * Moves a file whose content is already stored. It must not be rejected any
 * more: if the move fails the file stays in the inbox, and the next look
 * finds it stored and only tries the move again.
 */
async function archiveStored(ctx: Context, file: string, prefix: string): Promise<void> {
  try {
    await archive(file, ctx.paths.archive, prefix);
  } catch (err) {
    ctx.log.error({ file: path.basename(file), err: (err as Error).message }, 'stored, but could not move the file out of the inbox; will try again');
  }
}

/** A stored job that a crash kept from its lane (or its cancel) gets there now; both calls are idempotent. */
function resume(deps: IntakeDeps, jobId: string | null): void {
  const job = jobId ? deps.ctx.store.jobs.get(jobId) : undefined;
  if (!job || END_STATES.includes(job.state)) return;
  if (job.cancelRequested) deps.onCancel(job);
  else if (job.state === 'queued' || job.state === 'retrying') deps.onJob(job);
}

/** Why a job of this recipe could never run on this host with this config, if so. */
export function whyNever(config: Config, recipe: Recipe): string | undefined {
  const impossible = overBudget(config.resources, needOf(recipe));
  if (impossible) return `recipe ${recipe.name} ${impossible}; it could never start here`;
  if (recipe.output.upload === 's3' && !config.s3) return `recipe ${recipe.name} uploads to S3, but hopper.yaml has no s3 section; ask the admin`;
  return undefined;
}

function fail(message: string, problemPath = ''): never {
  throw problem(message, problemPath);
}

async function takeRequest(deps: IntakeDeps, file: string, parsed: ParsedFile, key: string): Promise<IntakeResult> {
  const { ctx } = deps;
  const { input, recipe } = requestFromFile(parsed, deps.recipes, path.basename(file));
  const refused = whyNever(ctx.config, recipe);
  if (refused) fail(refused, 'recipe');
  const now = ctx.clock.now();
  const outcome = ctx.store.jobs.accept(input, key, now, (job) => planNotifications(job, recipe, { event: 'requested' }, now));
  if (outcome.kind === 'conflict') {
    fail(`id "${input.requestId}" is already job ${outcome.job.id}, with different content; use a new id for a new request`, 'id');
  }
  if (outcome.kind === 'created') {
    ctx.log.info({ job: outcome.job.id, recipe: recipe.name, lane: outcome.job.lane, file: path.basename(file) }, 'request accepted');
    deps.onJob(outcome.job);
    await archiveStored(ctx, file, outcome.job.id);
    return { outcome: 'accepted', kind: 'request', jobId: outcome.job.id };
  }
  ctx.log.info({ job: outcome.job.id, file: path.basename(file), reason: outcome.reason }, 'request already accepted; existing job stands');
  await archiveStored(ctx, file, outcome.job.id);
  return { outcome: 'duplicate', kind: 'request', jobId: outcome.job.id };
}

async function takeCancel(deps: IntakeDeps, file: string, parsed: ParsedFile, key: string): Promise<IntakeResult> {
  const { ctx } = deps;
  assertNoProblems(schemaProblems('cancel', parsed));
  const target = (parsed.value as { job: string }).job;
  const job = ctx.store.jobs.find(target);
  const where = parsed.locate(['job']);
  if (!job) throw new InvalidFileError([{ path: 'job', message: `no job or request with id "${target}"`, ...where }]);
  if (END_STATES.includes(job.state)) {
    throw new InvalidFileError([{ path: 'job', message: `job ${job.id} already ended (${job.state}); there is nothing to cancel`, ...where }]);
  }
  ctx.store.db.transaction(() => {
    ctx.store.jobs.requestCancel(job.id);
    ctx.store.jobs.recordIntake(key, 'cancel', job.id, path.basename(file), ctx.clock.now());
  })();
  ctx.log.info({ job: job.id, file: path.basename(file) }, 'cancel accepted');
  deps.onCancel(job);
  await archiveStored(ctx, file, `cancel-${job.id}`);
  return { outcome: 'accepted', kind: 'cancel', jobId: job.id };
}

async function takeRecipe(deps: IntakeDeps, file: string, text: string, parsed: ParsedFile, key: string): Promise<IntakeResult> {
  const { ctx } = deps;
  if (!ctx.config.inbox.acceptRecipes) {
    fail('recipe files are not accepted in this inbox (inbox.acceptRecipes: false); ask the admin to add it to recipes/', 'kind');
  }
  // Parsed once already: kind was read from it.
  const recipe = recipeFromFile(parsed);
  const installed = await deps.recipes.install(recipe, text);
  ctx.store.jobs.recordIntake(key, 'recipe', null, path.basename(file), ctx.clock.now());
  await archiveStored(ctx, file, `recipe-${recipe.name}`);
  ctx.log.info({ recipe: recipe.name, file: path.basename(installed) }, 'recipe installed from the inbox');
  return { outcome: 'accepted', kind: 'recipe' };
}

/**
 * Takes one file from the inbox: parse, validate, store in one transaction,
 * and only then move it to state/archive/. A bad file goes to inbox/rejected/
 * with its reasons; nothing about it can stop the daemon or touch another file.
 */
export async function takeFile(deps: IntakeDeps, file: string): Promise<IntakeResult> {
  const { ctx } = deps;
  let read: Awaited<ReturnType<typeof readDropped>>;
  try {
    read = await readDropped(file, ctx.config.inbox.maxFileBytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { outcome: 'skipped', why: 'gone' };
    if (code === 'EISDIR') return { outcome: 'skipped', why: 'a folder' };
    read = { problem: err };
  }
  try {
    if ('problem' in read) throw read.problem;
    const { text, st } = read;
    const key = intakeKey(path.basename(file), st, text);
    const seen = ctx.store.jobs.intakeSeen(key);
    if (seen) {
      // Stored before a crash, not yet moved: finish the move, make nothing twice.
      resume(deps, seen.jobId);
      await archiveStored(ctx, file, seen.jobId ?? 'seen');
      const kind = seen.kind === 'cancel' || seen.kind === 'recipe' ? seen.kind : 'request';
      return { outcome: 'duplicate', kind, jobId: seen.jobId ?? undefined };
    }
    const parsed = parseYaml(text);
    const kind = fileKind(parsed);
    if (kind === 'request') return await takeRequest(deps, file, parsed, key);
    if (kind === 'cancel') return await takeCancel(deps, file, parsed, key);
    return await takeRecipe(deps, file, text, parsed, key);
  } catch (err) {
    if (isTransient(err)) {
      ctx.log.error({ file: path.basename(file), err: (err as Error).message }, 'could not take the file now; it stays in the inbox');
      return { outcome: 'skipped', why: (err as Error).message };
    }
    const problems =
      err instanceof InvalidFileError
        ? err.problems
        : [{ path: '', message: `could not be processed: ${(err as Error).message}` }];
    if (!(err instanceof InvalidFileError)) ctx.log.error({ file: path.basename(file), err: (err as Error).stack }, 'unexpected error taking a file');
    await reject(file, ctx.paths.rejected, problems, new Date(ctx.clock.now()), ctx.log).catch((e: unknown) =>
      ctx.log.error({ file: path.basename(file), err: (e as Error).message }, 'could not move the rejected file'),
    );
    ctx.log.warn({ file: path.basename(file), problems: problems.length }, 'file rejected');
    return { outcome: 'rejected', problems };
  }
}
