import type { Recipe } from '../recipes/recipe.js';

const MAX_BACKOFF_MS = 6 * 3_600_000;

/** Wait before attempt `failed + 1`: fixed, or doubling from `delay` (capped at 6h). */
export function backoffMs(retries: Recipe['retries'], failedAttempts: number): number {
  if (retries.backoff === 'fixed') return retries.delayMs;
  return Math.min(retries.delayMs * 2 ** Math.max(failedAttempts - 1, 0), MAX_BACKOFF_MS);
}
