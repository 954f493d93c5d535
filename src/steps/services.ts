import type { Config } from '../config/config.js';
import type { S3Delivery } from '../delivery/s3.js';
import type Docker from 'dockerode';
import { OutboundPolicy } from '../net/outbound.js';
import type { DeliveryInput } from '../delivery/task.js';
import type { AttemptInput, AttemptServices } from './attempt.js';

/** What the steps read of hopper.yaml, sent with each task: a reload reaches the next job. */
export interface StepSettings {
  outboundAllow: readonly string[];
  dockerSocket: string;
  swarm: Config['docker']['swarm'];
  s3: Config['s3'];
}

export interface AttemptTask {
  input: AttemptInput;
  settings: StepSettings;
}

/** A try of the delivery stage: S3 is the only client it needs. */
export interface DeliveryTask {
  input: DeliveryInput;
  settings: StepSettings;
}

export function stepSettings(config: Config): StepSettings {
  return { outboundAllow: config.outbound.allow, dockerSocket: config.docker.socketPath, swarm: config.docker.swarm, s3: config.s3 };
}

/**
 * The clients steps use, made once per thread and kept while the settings
 * stay the same (an S3 client holds its connections; a Docker client is cheap).
 */
export function servicesCache(): (task: AttemptTask | DeliveryTask) => Promise<AttemptServices> {
  let outbound: { key: string; policy: OutboundPolicy } | undefined;
  let docker: { socket: string; client: Docker } | undefined;
  let s3: { key: string; delivery: Promise<S3Delivery> } | undefined;
  return async ({ settings, input }) => {
    const allowKey = settings.outboundAllow.join('\n');
    if (outbound?.key !== allowKey) outbound = { key: allowKey, policy: new OutboundPolicy(settings.outboundAllow) };
    // dockerode is loaded for the first container step: it costs a thread about 25 MiB.
    if (docker?.socket !== settings.dockerSocket && 'recipe' in input && input.recipe.steps.some((s) => s.kind === 'container')) {
      const Docker = (await import('dockerode')).default;
      docker = { socket: settings.dockerSocket, client: new Docker({ socketPath: settings.dockerSocket }) };
    }
    let delivery: S3Delivery | undefined;
    if (settings.s3) {
      const key = JSON.stringify(settings.s3);
      if (s3?.key !== key) {
        void s3?.delivery.then((d) => d.client.destroy(), () => {});
        // The AWS SDK is loaded only where S3 is configured: it holds about 11 MB.
        const config = settings.s3;
        s3 = { key, delivery: import('../delivery/s3.js').then((m) => m.createS3(config)) };
      }
      delivery = await s3.delivery;
    }
    return { outbound: outbound.policy, s3: delivery, docker: docker && { up: 'dockerUp' in input && input.dockerUp, client: docker.client, socketPath: docker.socket, swarm: settings.swarm } };
  };
}
