import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { scrub } from '../redact.js';

const TAIL_LINES = 20;

/**
 * A job's `job.log`: what each step did and everything its commands printed,
 * with secrets scrubbed. Keeps the last lines in memory so a failure can quote them.
 */
export class JobLog {
  private readonly out: WriteStream;
  private readonly secrets: readonly string[];
  private readonly tail: string[] = [];

  constructor(file: string, secrets: readonly string[]) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.out = createWriteStream(file, { flags: 'a' });
    this.secrets = secrets;
  }

  private remember(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }

  /** A line of hopper's own, timestamped. */
  note(text: string): void {
    const line = scrub(text, this.secrets);
    this.out.write(`[${new Date().toISOString()}] ${line}\n`);
  }

  /** A sink for a command's output: split into lines, scrubbed, kept for the tail. */
  sink(): Writable {
    let partial = '';
    const flushLine = (line: string): void => {
      const clean = scrub(line, this.secrets);
      this.remember(clean);
      this.out.write(`${clean}\n`);
    };
    return new Writable({
      write: (chunk: Buffer, _enc, done) => {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        // A line with no newline in sight is still written, in pieces, so memory stays bounded.
        if (partial.length > 64 * 1024) {
          lines.push(partial);
          partial = '';
        }
        for (const l of lines) flushLine(l);
        done();
      },
      final: (done) => {
        if (partial) flushLine(partial);
        done();
      },
    });
  }

  /** The last lines commands printed, for an error message. */
  lastLines(n = 5): string[] {
    return this.tail.slice(-n);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}
