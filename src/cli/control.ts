import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../fs/write.js';
import path from 'node:path';
import { stringify } from 'yaml';
import { workDirIn } from '../paths.js';
import { openStore } from '../store/store.js';
import { END_STATES } from '../store/jobs.js';
import { CliError, configFor, rootPaths, withRootStore } from './common.js';

/** `hopper cancel ID` and `hopper retry ID`: what an admin does to one job. */
export function registerControl(program: Command): void {
  program
    .command('cancel')
    .argument('<id>', 'a job id or request id')
    .description('cancel a job: drops a cancel file into the inbox (a running job is stopped)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      configFor(cmd);
      const paths = rootPaths(cmd);
      if (existsSync(paths.db)) {
        const store = openStore(paths.db, { readonly: true });
        try {
          const job = store.jobs.find(id);
          if (!job) throw new CliError(`no job or request with id "${id}"`);
          if (END_STATES.includes(job.state)) throw new CliError(`job ${job.id} already ended (${job.state}); there is nothing to cancel`);
        } finally {
          store.close();
        }
      }
      const name = `cancel-${id.replace(/[^A-Za-z0-9._-]/g, '_')}-${randomBytes(3).toString('hex')}.yaml`;
      await writeFileAtomic(path.join(paths.inbox, name), stringify({ kind: 'cancel', job: id }));
      process.stdout.write(`cancel for ${id} dropped into the inbox (${name})\n`);
    });

  program
    .command('retry')
    .argument('<id>', 'a failed or canceled job (job id or request id)')
    .description('put a failed or canceled job back in the queue, with a fresh retry budget; a job that failed in delivery has its outputs delivered again, without running its steps')
    .option('--rerun', 'run the steps again even when only the delivery failed')
    .action((id: string, opts: { rerun?: boolean }, cmd: Command) => {
      withRootStore(cmd, (store) => {
        const job = store.jobs.find(id);
        if (!job) throw new CliError(`no job or request with id "${id}"`);
        if (job.state !== 'failed' && job.state !== 'canceled') throw new CliError(`job ${job.id} is ${job.state}; only failed or canceled jobs can be retried`);
        if (!opts.rerun && job.state === 'failed' && store.outputs.produced(job.id).length > 0) {
          // Its outputs wait in its work dir until delivered; retention removes that a while after the job ended.
          if (existsSync(workDirIn(rootPaths(cmd).jobs, job.id)) && store.jobs.redeliver(job.id, Date.now())) {
            process.stdout.write(`job ${job.id} failed in delivery: its outputs are delivered again, its steps do not run (--rerun runs them); hopper picks it up within seconds, or at its next start\n`);
            return;
          }
          process.stdout.write(`job ${job.id} failed in delivery, but its outputs are gone (removed by retention): it runs again\n`);
        }
        store.jobs.resubmit(job.id, Date.now());
        process.stdout.write(`job ${job.id} is queued again (hopper picks it up within seconds, or at its next start)\n`);
      });
    });
}
