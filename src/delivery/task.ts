import { rmSync } from 'node:fs';
import path from 'node:path';
import { HopperError, toHopperError } from '../errors.js';
import { JobLog } from '../steps/joblog.js';
import type { AttemptServices } from '../steps/attempt.js';
import type { Output, ProducedOutput } from '../store/outputs.js';
import { scrub } from '../redact.js';
import { printable } from '../text.js';
import { formatBytes } from '../units.js';
import { deliverOutputs } from './deliver.js';

// One try of the delivery stage (queue/delivering.ts), run on a worker thread as
// a job's steps are: plain data in, the delivered outputs out.

export interface DeliveryInput {
  jobId: string;
  /** Which try this is (1 for the first), for job.log. */
  attempt: number;
  /** Not the first try, or the first since a restart: an earlier one may have left a half-done upload. */
  resumed: boolean;
  produced: ProducedOutput[];
  /** The job's secret values, scrubbed from job.log. */
  secrets: string[];
  paths: { jobs: string; outputs: string };
}

/**
 * Delivers a job's recorded outputs; on success the work dir goes (what a
 * later try would need is now at its place, and checked there). Each try and
 * its failure are written to job.log.
 */
export async function runDelivery(input: DeliveryInput, services: Pick<AttemptServices, 's3'>, signal: AbortSignal): Promise<Output[]> {
  const dir = path.join(input.paths.jobs, input.jobId);
  const workDir = path.join(dir, 'work');
  const log = new JobLog(path.join(dir, 'job.log'), input.secrets);
  try {
    const outputs = await deliverOutputs(services.s3, input.paths.outputs, workDir, input.produced, signal, input.resumed);
    log.note(`delivered ${outputs.map((o) => `${o.name} (${formatBytes(o.bytes)})`).join(', ')}${outputs.some((o) => o.location === 's3') ? ' to S3' : ''} (delivery try ${input.attempt})`);
    rmSync(workDir, { recursive: true, force: true });
    return outputs;
  } catch (err) {
    const e = toHopperError(signal.aborted ? signal.reason : err);
    const clean = new HopperError(e.code, printable(scrub(e.message, input.secrets)));
    log.note(`delivery try ${input.attempt} failed: ${clean.code}: ${clean.message}`);
    throw clean;
  } finally {
    await log.close();
  }
}
