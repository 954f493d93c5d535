import type { Command } from 'commander';
import { ConfigError } from '../config/config.js';
import { startDaemon } from '../daemon.js';
import { HopperError } from '../errors.js';
import { createLogger } from '../log.js';
import { rootFrom } from '../paths.js';
import { CliError, configFor, EXIT, globals } from './common.js';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the daemon in the foreground (what systemd runs)')
    .action(async (_opts: unknown, cmd: Command) => {
      const config = configFor(cmd);
      const log = createLogger();
      let daemon;
      try {
        daemon = await startDaemon({ root: rootFrom(globals(cmd).root), configFile: globals(cmd).config, config, log });
      } catch (err) {
        // A config only the running engine can judge (docker.swarm on an engine that is no manager) is bad usage.
        if (err instanceof ConfigError) throw new CliError(`cannot start: ${err.message}`, EXIT.usage);
        if (err instanceof HopperError || (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new CliError(`cannot start: ${(err as Error).message}`, EXIT.failure);
        }
        throw err;
      }
      const d = daemon;
      process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.stack ?? String(err) }, 'unhandled rejection'));
      process.on('uncaughtException', (err) => {
        // State in memory may be inconsistent now; the store is not. Exit and let systemd restart.
        log.fatal({ err: err.stack }, 'uncaught exception; exiting');
        process.exit(1);
      });
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          log.info({ signal }, 'signal received');
          void d.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        process.on('SIGHUP', () => {
          log.info({ signal: 'SIGHUP' }, 'reloading config and recipes');
          d.reload();
        });
      });
      // Requests are taken from now on; the line that says so waits for the step threads to load
      // (~0.1-0.2 s), as a Celery worker says "ready" once its pool is up.
      await d.ready();
      await stopped;
    });
}
