import { Cron } from 'croner';
import { HopperError } from '../errors.js';

/** A parsed cron pattern, asked about times as epoch milliseconds (so a test clock can drive it). */
export interface CronSchedule {
  readonly pattern: string;
  /** The first slot strictly after `after`, or null when there is none (a pattern of a past year). */
  next(after: number): number | null;
  /** The latest slot at or before `atOrBefore`, or null when there is none. */
  latest(atOrBefore: number): number | null;
}

export class CronError extends HopperError {
  constructor(pattern: string, why: string) {
    super('E_CRON', `"${pattern}" is no cron schedule: ${why.replace(/^CronPattern:\s*/, '')}`);
  }
}

/**
 * Parses cron syntax with croner: five fields (minute hour day month weekday),
 * an optional leading seconds field, or @hourly/@daily/@weekly/@monthly/@yearly.
 * Times are the host's local time, as cron's; day-of-month and weekday combine
 * with OR, as in Vixie cron.
 */
export function parseCron(pattern: string): CronSchedule {
  let cron: Cron;
  try {
    // paused: croner is only asked for times; hopper's own timer and clock decide when to look.
    cron = new Cron(pattern, { paused: true });
  } catch (err) {
    throw new CronError(pattern, (err as Error).message);
  }
  return {
    pattern,
    next: (after) => cron.nextRun(new Date(after))?.getTime() ?? null,
    // croner's previousRuns looks strictly before its reference: one millisecond on includes the instant.
    latest: (atOrBefore) => cron.previousRuns(1, new Date(atOrBefore + 1))[0]?.getTime() ?? null,
  };
}
