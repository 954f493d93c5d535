import { createWriteStream, mkdirSync, openSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { scrubber, type Scrubber } from '../redact.js';

const TAIL_LINES = 20;
/** A line with no newline in sight is written in pieces past this length, so memory stays bounded. */
const MAX_LINE = 64 * 1024;

export interface JobLogLimits {
  /** Bytes written as they come; after that only the tail is kept. @default 4 MiB */
  headBytes?: number;
  /** Bytes of the latest output kept for the end of the file. @default 1 MiB */
  tailBytes?: number;
}

/**
 * Opened at once (its folder is usually there: the job's, made just before),
 * one call on this thread rather than a round trip through libuv's pool. When
 * that fails for another reason than a missing folder, the stream opens it
 * again and reports the error as the stream's, which JobLog tolerates.
 */
function openLog(file: string): WriteStream {
  const open = (): number => openSync(file, 'a', 0o600);
  try {
    return createWriteStream('', { fd: open() });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return createWriteStream(file, { flags: 'a', mode: 0o600 });
  }
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    return createWriteStream('', { fd: open() });
  } catch {
    return createWriteStream(file, { flags: 'a', mode: 0o600 });
  }
}

/**
 * A job's `job.log`: what each step did and everything its commands printed,
 * with secrets scrubbed. Keeps the last lines in memory so a failure can quote them.
 */
export class JobLog {
  private readonly out: WriteStream;
  private readonly scrub: Scrubber;
  private readonly tail: string[] = [];
  private readonly headLimit: number;
  private readonly tailLimit: number;
  private written = 0;
  /** Output past the head, newest last, at most tailLimit bytes; what falls off is counted. */
  private readonly late: string[] = [];
  private lateBytes = 0;
  private skipped = 0;
  private broken: Error | undefined;

  constructor(file: string, secrets: readonly string[], limits: JobLogLimits = {}) {
    this.out = openLog(file);
    // A full disk must not take the daemon down: the job goes on without its log.
    this.out.on('error', (err) => (this.broken ??= err));
    this.scrub = scrubber(secrets);
    this.headLimit = limits.headBytes ?? 4 * 1024 * 1024;
    this.tailLimit = limits.tailBytes ?? 1024 * 1024;
  }

  /** Writes within the head limit; beyond it keeps only the tail, so a chatty command cannot fill the disk. */
  private emit(text: string): void {
    if (this.broken) return;
    const bytes = Buffer.byteLength(text);
    if (this.late.length === 0 && this.written + bytes <= this.headLimit) {
      this.written += bytes;
      this.out.write(text);
      return;
    }
    this.late.push(text);
    this.lateBytes += bytes;
    while (this.lateBytes > this.tailLimit && this.late.length > 1) {
      const dropped = Buffer.byteLength(this.late.shift()!);
      this.lateBytes -= dropped;
      this.skipped += dropped;
    }
  }

  private remember(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }

  /** A line of hopper's own, timestamped. */
  note(text: string): void {
    const line = this.scrub(text);
    this.emit(`[${new Date().toISOString()}] ${line}\n`);
  }

  /** A sink for a command's output: split into lines, scrubbed, kept for the tail. */
  sink(): Writable {
    let partial = '';
    // Bytes, not characters, arrive: a character split between two chunks is joined again.
    const decoder = new StringDecoder('utf8');
    const flushLine = (line: string): void => {
      const clean = this.scrub(line);
      this.remember(clean);
      this.emit(`${clean}\n`);
    };
    return new Writable({
      write: (chunk: Buffer, _enc, done) => {
        const lines = (partial + decoder.write(chunk)).split('\n');
        partial = lines.pop() ?? '';
        if (partial.length > MAX_LINE) {
          // Cut where no secret is cut in two (and so missed by the scrub of each piece).
          const cut = this.scrub.cutPoint(partial);
          if (cut > 0) {
            lines.push(partial.slice(0, cut));
            partial = partial.slice(cut);
          }
        }
        for (const l of lines) flushLine(l);
        done();
      },
      final: (done) => {
        partial += decoder.end();
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
    if (this.broken) return Promise.resolve();
    if (this.skipped > 0) this.out.write(`[... ${this.skipped} bytes of output skipped: job.log keeps the first and the last part ...]\n`);
    for (const text of this.late) this.out.write(text);
    return new Promise((resolve) => this.out.end(resolve));
  }
}
