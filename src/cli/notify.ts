import type { Command } from 'commander';
import { CliError, withRootStore } from './common.js';

export function registerNotify(program: Command): void {
  const notify = program.command('notify').description('manage notifications (emails and webhooks)');
  notify
    .command('resend')
    .argument('<id>', 'a notification id, or a job id (or request id) to resend all of its dead notifications')
    .description('send a dead notification again; the daemon picks it up within seconds (it may be stopped meanwhile)')
    .action((id: string, _opts: unknown, cmd: Command) => {
      withRootStore(cmd, (store) => {
        const now = Date.now();
        let changed: number;
        if (/^\d+$/.test(id)) {
          const n = store.notifications.get(Number(id));
          if (!n) throw new CliError(`no notification ${id}`);
          if (n.state !== 'dead') throw new CliError(`notification ${id} is ${n.state}, not dead; nothing to resend`);
          changed = store.notifications.resend({ id: Number(id) }, now);
        } else {
          const job = store.jobs.find(id);
          if (!job) throw new CliError(`no job or request with id "${id}"`);
          changed = store.notifications.resend({ jobId: job.id }, now);
          if (changed === 0) throw new CliError(`job ${job.id} has no dead notifications`);
        }
        process.stdout.write(`${changed} notification${changed === 1 ? '' : 's'} queued to send again\n`);
      });
    });
}
