import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

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
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
