import type { Recipe } from '../recipes/recipe.js';

const MAX_BACKOFF_MS = 6 * 3_600_000;

/** Failures that a new attempt cannot fix: the recipe or request itself is wrong. */
const PERMANENT = new Set([
  'E_CANCELED',
  'E_PATH',
  'E_TEMPLATE',
  'E_FETCH_URL',
  'E_PAGES_URL',
  'E_PAGES_LIMIT',
  'E_PAGES_SIZE',
  'E_PAGES_HEADER',
  'E_OUTBOUND',
  'E_OUTPUT_NAME',
  'E_RUN_NOT_FOUND',
  'E_S3_UNAVAILABLE',
  'E_IMAGE_MISSING',
  'E_DISK',
  'E_CONTAINER_OOM',
  'E_RESOURCES',
]);

export function isRetryable(code: string): boolean {
  return !PERMANENT.has(code);
}

/** Wait before attempt `failed + 1`: fixed, or doubling from `delay` (capped at 6h). */
export function backoffMs(retries: Recipe['retries'], failedAttempts: number): number {
  if (retries.backoff === 'fixed') return retries.delayMs;
  return Math.min(retries.delayMs * 2 ** Math.max(failedAttempts - 1, 0), MAX_BACKOFF_MS);
}
