/**
 * Every failure hopper reports carries a stable `code` (for machines, stats and
 * tests) and a message a person can act on (for job errors, emails, rejections).
 */
export class HopperError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HopperError';
    this.code = code;
  }
}

/** A whole-file problem found while reading a dropped or recipe file. */
export interface Problem {
  /** Dotted path of the field, e.g. `params.url`; empty for the whole file. */
  path: string;
  message: string;
  line?: number;
  col?: number;
}

/** At most this many problems are reported for one file; the rest are counted in a last line. */
export const MAX_PROBLEMS = 50;

function capped(problems: Problem[]): Problem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  const more = problems.length - MAX_PROBLEMS;
  return [...problems.slice(0, MAX_PROBLEMS), { path: '', message: `... and ${more} more problem${more === 1 ? '' : 's'} (fix these first)` }];
}

/**
 * A file that cannot be accepted; carries every problem found, not just the
 * first, up to MAX_PROBLEMS (a file of 100,000 bad items gets a short answer).
 */
export class InvalidFileError extends HopperError {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    const shown = capped(problems);
    super('E_INVALID', shown.map(formatProblem).join('\n'));
    this.problems = shown;
  }
}

export function formatProblem(p: Problem): string {
  const where = p.line !== undefined ? `line ${p.line}, col ${p.col ?? 1}: ` : '';
  const field = p.path ? `${p.path}: ` : '';
  return `${where}${field}${p.message}`;
}

/** Turns anything thrown into a HopperError without leaking stack traces to users. */
export function toHopperError(err: unknown, fallbackCode = 'E_INTERNAL'): HopperError {
  if (err instanceof HopperError) return err;
  if (err instanceof Error) return new HopperError(fallbackCode, err.message, { cause: err });
  return new HopperError(fallbackCode, String(err));
}
