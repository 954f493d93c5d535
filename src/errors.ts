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

/** A file that cannot be accepted; carries every problem found, not just the first. */
export class InvalidFileError extends HopperError {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super('E_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
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
