import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** How long a log line may wait to be written with those after it. */
const GATHER_MS = 10;

/**
 * Log lines gathered for at most `everyMs` and written with one call. Under
 * load hopper logs a few lines per job, hundreds a second; written one by one,
 * each was a system call that also woke the reader (journald), ~0.1 ms of the
 * main thread per job. At exit (a crash included) what is gathered is written
 * at once; a `kill -9` loses at most the last `everyMs` of lines, never
 * anything of the store.
 */
function gatheredDestination(fd: number, everyMs = GATHER_MS): DestinationStream & { flushSync(): void } {
  // Synchronous writes (EAGAIN on a full pipe is waited out), buffered until flushed.
  const sonic = pino.destination({ dest: fd, sync: true, minLength: 8192 });
  let timer: NodeJS.Timeout | undefined;
  // flush(), not flushSync(): the latter also fsyncs, which on a file would wait for the disk.
  const flush = (): void => {
    timer = undefined;
    sonic.flush();
  };
  const flushSync = (): void => {
    clearTimeout(timer);
    timer = undefined;
    sonic.flushSync();
  };
  process.on('exit', flushSync);
  return {
    write(line: string): void {
      sonic.write(line);
      timer ??= setTimeout(flush, everyMs).unref();
    },
    flushSync,
  };
}

/**
 * Structured JSON lines on stdout (journald keeps them). Secrets never reach
 * here: callers log job ids, recipe names and masked values only.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.HOPPER_LOG_LEVEL ?? 'info';
  const base = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  // A person at a terminal gets readable lines; journald and pipes get JSON.
  if (!options.destination && process.stdout.isTTY) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } });
  }
  return pino(
    { ...base, formatters: { level: (label) => ({ level: label }) } },
    options.destination ?? gatheredDestination(1),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
