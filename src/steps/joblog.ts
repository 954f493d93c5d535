import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { writeAll } from '../fs/write.js';
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

/** Written out at most this much at a time; less is written at the end of the event loop's turn. */
const FLUSH_BYTES = 64 * 1024;

/** Opens job.log for appending, making its folder if it is missing. */
function openLog(file: string): number {
  try {
    return openSync(file, 'a', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(path.dirname(file), { recursive: true });
    return openSync(file, 'a', 0o600);
  }
}

/**
 * A job's `job.log`: what each step did and everything its commands printed,
 * with secrets scrubbed. Keeps the last lines in memory so a failure can quote them.
 */
export class JobLog {
  /** job.log, written with synchronous calls, a turn's lines at once (see FileWriter in workdir.ts for why not a stream). */
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  private flushing: NodeJS.Immediate | undefined;
  private readonly scrub: Scrubber;
  private readonly tail: string[] = [];
  private readonly headLimit: number;
  private readonly tailLimit: number;
  private written = 0;
  /** Output past the head, newest last, at most tailLimit bytes; what falls off is counted. */
  private late: string[] = [];
  /** Where the kept tail starts in `late`: lines before it fell off (Array#shift would make a flood quadratic). */
  private lateStart = 0;
  private lateBytes = 0;
  private skipped = 0;
  private broken: Error | undefined;

  constructor(file: string, secrets: readonly string[], limits: JobLogLimits = {}) {
    try {
      this.fd = openLog(file);
    } catch (err) {
      // A full disk must not take the daemon down: the job goes on without its log.
      this.broken = err as Error;
    }
    this.scrub = scrubber(secrets);
    this.headLimit = limits.headBytes ?? 4 * 1024 * 1024;
    this.tailLimit = limits.tailBytes ?? 1024 * 1024;
  }

  /** Writes within the head limit; beyond it keeps only the tail, so a chatty command cannot fill the disk. */
  private emit(text: string): void {
    if (this.broken) return;
    const bytes = Buffer.byteLength(text);
    if (this.late.length === this.lateStart && this.written + bytes <= this.headLimit) {
      this.written += bytes;
      this.put(text, bytes);
      return;
    }
    this.late.push(text);
    this.lateBytes += bytes;
    while (this.lateBytes > this.tailLimit && this.late.length - this.lateStart > 1) {
      const dropped = Buffer.byteLength(this.late[this.lateStart]);
      this.late[this.lateStart++] = '';
      this.lateBytes -= dropped;
      this.skipped += dropped;
    }
    // The fallen-off part is let go of in one copy once it is most of the array.
    if (this.lateStart > 4096 && this.lateStart * 2 > this.late.length) {
      this.late = this.late.slice(this.lateStart);
      this.lateStart = 0;
    }
  }

  private put(text: string, bytes: number): void {
    this.pending.push(text);
    this.pendingBytes += bytes;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.flushing ??= setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = undefined;
    if (this.pending.length === 0 || this.fd === undefined || this.broken) return;
    const data = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
    try {
      writeAll(this.fd, data);
    } catch (err) {
      this.broken = err as Error;
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
    if (this.skipped > 0) this.put(`[... ${this.skipped} bytes of output skipped: job.log keeps the first and the last part ...]\n`, 0);
    for (let i = this.lateStart; i < this.late.length; i++) this.put(this.late[i], 0);
    this.late = [];
    this.lateStart = 0;
    this.flush();
    try {
      if (this.fd !== undefined) closeSync(this.fd);
    } catch {
      /* nothing more to write */
    }
    this.fd = undefined;
    return Promise.resolve();
  }
}
