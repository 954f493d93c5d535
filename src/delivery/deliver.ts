import type { Context } from '../context.js';
import { HopperError } from '../errors.js';
import type { Recipe } from '../recipes/recipe.js';
import type { Output } from '../store/outputs.js';
import type { Produced } from './collect.js';
import { signedLink } from './links.js';
import { deliverLocal, sha256Of } from './local.js';
import { presignedLink, uploadOutputs } from './s3.js';

/** What making links needs: less than a whole daemon, so the CLI can make them too. */
export type LinkContext = Pick<Context, 'clock' | 's3' | 'config' | 'publicUrl' | 'linkKey'>;

export interface Link {
  url: string;
  expiresAt: number;
}

/** Puts a job's outputs where the recipe says: outputs/JOB/ (local) or the S3 bucket under `output.prefix`. */
export async function deliver(ctx: Context, jobId: string, recipe: Recipe, produced: Produced[], signal: AbortSignal): Promise<Output[]> {
  if (recipe.output.upload === 'local') return deliverLocal(ctx.paths.outputs, jobId, produced);
  if (!ctx.s3) throw new HopperError('E_S3_UNAVAILABLE', 'the recipe uploads to S3, but hopper.yaml has no s3 section');
  const hashed = [];
  for (const p of produced) hashed.push({ ...p, sha256: await sha256Of(p.file) });
  return uploadOutputs(ctx.s3, jobId, recipe.output.prefix, hashed, signal);
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
      links.push({ url: await presignedLink(ctx.s3, o.ref, expiresAt, now), expiresAt });
    } else {
      const expiresAt = since + ctx.config.retention.outputsMs;
      const slash = o.ref.indexOf('/');
      links.push({ url: signedLink(ctx.publicUrl(), ctx.linkKey, o.ref.slice(0, slash), o.ref.slice(slash + 1), expiresAt), expiresAt });
    }
  }
  return links;
}
