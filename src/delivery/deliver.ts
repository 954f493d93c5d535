import path from 'node:path';
import type { Context } from '../context.js';
import { HopperError } from '../errors.js';
import type { Recipe } from '../recipes/recipe.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import type { S3Delivery } from './s3.js';
import { maskParams } from '../redact.js';
import { render, type TemplateScope } from '../template.js';
import type { Produced } from './collect.js';
import { signedLink } from './links.js';
import { deliverLocal, sha256Of } from './local.js';

/** What making links needs: less than a whole daemon, so the CLI can make them too. */
export type LinkContext = Pick<Context, 'clock' | 's3' | 'config' | 'publicUrl' | 'linkKey'>;

export interface Link {
  url: string;
  expiresAt: number;
}

/**
 * The S3 key prefix of a job: `output.prefix` with its placeholders filled
 * (secrets masked: a key is shown in links), then checked to be a plain
 * relative path. Throws E_S3_PREFIX in words.
 */
export function objectPrefix(template: string, scope: TemplateScope): string {
  const prefix = render(template, scope, { strict: true });
  const why =
    prefix.length > 512
      ? 'is longer than 512 characters'
      : prefix.startsWith('/')
        ? 'must not start with /'
        : prefix.split('/').some((seg) => seg === '.' || seg === '..')
          ? 'must not contain . or .. segments'
          : /[\x00-\x1f\x7f\\]/.test(prefix)
            ? 'must not contain control characters or backslashes'
            : undefined;
  if (why) throw new HopperError('E_S3_PREFIX', `output.prefix "${prefix.slice(0, 100)}" ${why}`);
  return prefix;
}

/** A recipe's S3 prefix for one job, from the steps' scope with the secrets masked. */
export function recipePrefix(recipe: Pick<Recipe, 'output' | 'paramsSchema'>, scope: TemplateScope): string {
  return objectPrefix(recipe.output.prefix, { ...scope, params: maskParams(scope.params as Record<string, unknown>, recipe.paramsSchema) });
}

/**
 * What the steps produced, with the checksum of each file and where it is to
 * go: outputs/JOB/NAME (local) or the S3 key `output.prefix` + JOB/NAME. Fixed
 * when the steps end and recorded, so every delivery try puts it at the same
 * place. E_S3_UNAVAILABLE when the recipe uploads but hopper.yaml has no s3.
 */
export async function produceOutputs(
  recipe: Pick<Recipe, 'output' | 'paramsSchema'>,
  jobId: string,
  workDir: string,
  files: readonly Produced[],
  scope: TemplateScope,
  s3Configured: boolean,
): Promise<ProducedOutput[]> {
  const s3 = recipe.output.upload === 's3';
  if (s3 && !s3Configured) throw new HopperError('E_S3_UNAVAILABLE', 'the recipe uploads to S3, but hopper.yaml has no s3 section');
  const prefix = s3 ? recipePrefix(recipe, scope) : '';
  const out: ProducedOutput[] = [];
  for (const f of files) {
    out.push({
      name: f.name,
      file: path.relative(workDir, f.file),
      bytes: f.bytes,
      sha256: await sha256Of(f.file, f.bytes),
      location: s3 ? 's3' : 'local',
      ref: `${prefix}${jobId}/${f.name}`,
    });
  }
  return out;
}

/** Puts a job's recorded outputs where they go (see produceOutputs); a try again skips what is there already. */
export async function deliverOutputs(
  s3: S3Delivery | undefined,
  outputsDir: string,
  workDir: string,
  produced: readonly ProducedOutput[],
  signal: AbortSignal,
  resumed = false,
): Promise<Output[]> {
  if (produced.every((p) => p.location === 'local')) return deliverLocal(outputsDir, workDir, produced);
  if (!s3) throw new HopperError('E_S3_UNAVAILABLE', 'the outputs go to S3, but hopper.yaml has no s3 section');
  const { uploadOutputs } = await import('./s3.js');
  return uploadOutputs(s3, workDir, produced, signal, resumed);
}

/**
 * A download link for each output: signed local links that last as long as
 * outputs are kept, presigned S3 links that last `s3.linkExpiry`. A cache
 * hit's local files are its first job's, and expire with them (`since`).
 */
export async function linksFor(ctx: LinkContext, outputs: readonly Output[], since: number): Promise<Link[]> {
  const now = ctx.clock.now();
  const links: Link[] = [];
  for (const o of outputs) {
    if (o.location === 's3') {
      if (!ctx.s3) throw new HopperError('E_S3_UNAVAILABLE', 'an output is in S3, but hopper.yaml has no s3 section');
      const expiresAt = now + ctx.s3.linkExpiryMs;
      const { presignedLink } = await import('./s3.js');
      links.push({ url: await presignedLink(ctx.s3, o.ref, expiresAt, now), expiresAt });
    } else {
      const expiresAt = since + ctx.config.retention.outputsMs;
      const slash = o.ref.indexOf('/');
      links.push({ url: signedLink(ctx.publicUrl(), ctx.linkKey, o.ref.slice(0, slash), o.ref.slice(slash + 1), expiresAt), expiresAt });
    }
  }
  return links;
}
