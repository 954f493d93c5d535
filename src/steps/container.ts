import type Docker from 'dockerode';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HopperError } from '../errors.js';
import type { Step } from '../recipes/recipe.js';
import { scrub } from '../redact.js';
import { render } from '../template.js';
import { formatBytes, formatDuration, timerMs } from '../units.js';
import { throwIfJobAborted, type StepEnv, type StepRunner } from './step.js';
import { swarmStep } from './swarm.js';

type ContainerStep = Extract<Step, { kind: 'container' }>;

export const LABEL_JOB = 'hopper.job';
export const LABEL_ROOT = 'hopper.root';
export const PIDS_LIMIT = 1024;
/** Docker's own copy of the output is capped too: a chatty container cannot fill the disk. */
export const CAPPED_LOGS = { 'max-size': '10m', 'max-file': '1' };

export function labelsOf(env: StepEnv): Record<string, string> {
  return { [LABEL_JOB]: env.job.id, [LABEL_ROOT]: env.job.root, 'hopper.attempt': String(env.job.attempt) };
}

export function dockerMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; reason?: string; message?: string; statusCode?: number };
  return e.json?.message ?? e.reason ?? e.message ?? String(err);
}

async function hasImage(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

async function pull(docker: Docker, image: string, env: StepEnv): Promise<void> {
  env.log.note(`pull: ${image}`);
  try {
    const stream = await docker.pull(image);
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw new HopperError('E_IMAGE_PULL', `could not pull image ${image}: ${dockerMessage(err)}`);
  }
}

/** The "prepare" stage: make sure the image is here, as the step's pull policy says. */
async function prepareImage(docker: Docker, image: string, policy: ContainerStep['pull'], env: StepEnv): Promise<void> {
  if (policy === 'always') return pull(docker, image, env);
  if (await hasImage(docker, image)) return;
  if (policy === 'never') throw new HopperError('E_IMAGE_MISSING', `image ${image} is not on this host, and the step says pull: never`);
  await pull(docker, image, env);
}

/** Why hopper stopped a container, once: the first reason wins. */
export class StopReason {
  error: HopperError | undefined;
  set(e: HopperError): boolean {
    if (this.error) return false;
    this.error = e;
    return true;
  }
}

function createOptions(step: ContainerStep, env: StepEnv, image: string, name: string): Docker.ContainerCreateOptions {
  const r = (v: string): string => fill(v, env);
  const { resources } = env;
  return {
    name,
    Image: image,
    Cmd: step.command?.map(r),
    Entrypoint: step.entrypoint?.map(r),
    Env: envOf(step, env),
    WorkingDir: '/work',
    User: userOf(step, env),
    Labels: labelsOf(env),
    Tty: false,
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: {
      Binds: [`${env.workDir}:/work`],
      NetworkMode: step.network,
      CapAdd: step.capAdd,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: PIDS_LIMIT,
      ...(resources.memory ? { Memory: resources.memory, MemorySwap: resources.memory } : {}),
      ...(resources.cpus ? { NanoCpus: Math.round(resources.cpus * 1e9) } : {}),
      ...(step.shmBytes ? { ShmSize: step.shmBytes } : {}),
      LogConfig: { Type: 'json-file', Config: CAPPED_LOGS },
    },
  };
}

export function idleError(ms: number): HopperError {
  return new HopperError('E_IDLE', `the container printed nothing for ${formatDuration(ms)} and was stopped`);
}

export function stepTimeoutError(ms: number): HopperError {
  return new HopperError('E_TIMEOUT', `the container ran longer than its step timeout (${formatDuration(ms)})`);
}

/**
 * A container's multiplexed output (stdout and stderr) into job.log; `onOutput`
 * at each chunk (the idle timer); `frame` may rewrite or drop each frame.
 * Returns the log's sink, to end when done.
 */
export function logInto(env: StepEnv, docker: Docker, stream: NodeJS.ReadableStream, onOutput: () => void, frame: (chunk: Buffer) => Buffer | null = (c) => c): Writable {
  const sink = env.log.sink();
  sink.on('error', () => {});
  // Both streams into one log; a shared sink must not be ended by the first stream that closes.
  const shared = new Writable({
    write: (chunk: Buffer, _e, next) => {
      onOutput();
      const out = frame(chunk);
      if (sink.writableEnded || !out) next();
      else sink.write(out, next);
    },
  });
  docker.modem.demuxStream(stream, shared, shared);
  return sink;
}

/** A value of the step with its placeholders filled: a whole argv element, never read by a shell. */
export function fill(value: string, env: StepEnv): string {
  return render(value, env.scope, { strict: true });
}

/** The image named by the step, its placeholders filled. */
export function imageOf(step: ContainerStep, env: StepEnv): string {
  return fill(step.image, env);
}

/** Runs as hopper's own user unless the step names one: files it writes stay hopper's to deliver and clean up. */
export function userOf(step: ContainerStep, env: StepEnv): string {
  return step.user ? fill(step.user, env) : `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
}

/** The step's environment, its placeholders filled, as NAME=value. */
export function envOf(step: ContainerStep, env: StepEnv): string[] {
  return Object.entries(step.env).map(([k, v]) => `${k}=${render(v, env.scope, { strict: true })}`);
}

/**
 * Runs one container with the job's work dir at /work: prepare (the image),
 * run (output streamed into job.log), and always remove it. Stopped early by
 * the job's signal (cancel, timeout, shutdown, disk), the step's own timeout,
 * or `idleTimeout` without output; the reason is recorded once.
 */
export const containerStep: StepRunner<ContainerStep> = async (step, env) => {
  const engine = env.docker;
  if (!engine?.up) throw new HopperError('E_DOCKER_DOWN', `the Docker engine does not answer${engine ? ` at ${engine.socketPath}` : ''}`);
  const docker = engine.client;
  if (engine.swarm) {
    // The nodes get the image themselves (from the registry, else their own copy).
    await swarmStep(step, { ...env, docker: { ...engine, swarm: engine.swarm } });
    return {};
  }
  const image = imageOf(step, env);
  // A pull can take long; a cancel or timeout does not wait for it (the engine finishes it alone).
  await Promise.race([
    prepareImage(docker, image, step.pull, env),
    new Promise<never>((_, reject) => {
      if (env.signal.aborted) reject(env.signal.reason);
      env.signal.addEventListener('abort', () => reject(env.signal.reason), { once: true });
    }),
  ]);
  throwIfJobAborted(env.signal);

  const name = `hopper-${env.job.id}-${env.job.attempt}-${Date.now().toString(36)}`;
  const options = createOptions(step, env, image, name);
  env.log.note(`container: ${image} ${scrub((options.Cmd ?? []).join(' '), env.secrets)} (network ${step.network})`);
  let container: Docker.Container;
  try {
    container = await docker.createContainer(options);
  } catch (err) {
    throw new HopperError('E_CONTAINER_CREATE', `could not create a container from ${image}: ${dockerMessage(err)}`);
  }
  const reason = new StopReason();
  const kill = (e: HopperError): void => {
    if (reason.set(e)) void container.kill().catch(() => {});
  };
  const timers: NodeJS.Timeout[] = [];
  let idle: NodeJS.Timeout | undefined;
  let done = false;
  const onAbort = (): void => kill(env.signal.reason instanceof HopperError ? env.signal.reason : new HopperError('E_CANCELED', 'stopped'));
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    // Listened for now: a quick container's output can end before wait() returns.
    const drained = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
    });
    const armIdle = (): void => {
      if (step.idleTimeoutMs === undefined || done) return;
      clearTimeout(idle);
      idle = setTimeout(() => kill(idleError(step.idleTimeoutMs!)), timerMs(step.idleTimeoutMs));
      idle.unref();
    };
    let lastChunk = Date.now();
    const sink = logInto(env, docker, stream, () => {
      lastChunk = Date.now();
      armIdle();
    });
    env.signal.addEventListener('abort', onAbort, { once: true });
    if (step.timeoutMs !== undefined) {
      timers.push(setTimeout(() => kill(stepTimeoutError(step.timeoutMs!)), timerMs(step.timeoutMs)));
    }
    const started = Date.now();
    await container.start();
    armIdle();
    if (env.signal.aborted) onAbort();
    const waited = (await container.wait()) as { StatusCode: number };
    done = true;
    clearTimeout(idle);
    // The output may still be on its way (a flood is read slower than it was written): wait
    // while it flows, until the stream ends or is quiet for 2 s, at most a minute.
    let ended = false;
    void drained.then(() => (ended = true));
    const exitedAt = Date.now();
    for (let i = 0; i < 600 && !ended && Date.now() - Math.max(lastChunk, exitedAt) < 2000; i++) await sleep(100);
    await new Promise<void>((resolve) => sink.end(resolve));
    const state = (await container.inspect()).State;
    if (reason.error) throw reason.error;
    const tail = env.log.lastLines();
    const quote = tail.length ? `; last output:\n${tail.join('\n')}` : '';
    if (state.OOMKilled) {
      throw new HopperError('E_CONTAINER_OOM', `the container ran out of memory (limit ${formatBytes(env.resources.memory ?? 0)}) and was killed${quote}`);
    }
    if (waited.StatusCode !== 0) throw new HopperError('E_CONTAINER_EXIT', `the container (${image}) exited with code ${waited.StatusCode}${quote}`);
    env.log.note(`container: done in ${formatDuration(Date.now() - started)}`);
    return {};
  } catch (err) {
    if (reason.error) throw reason.error;
    throwIfJobAborted(env.signal);
    if (err instanceof HopperError) throw err;
    throw new HopperError('E_CONTAINER', `the container (${image}) failed: ${dockerMessage(err)}`);
  } finally {
    done = true;
    clearTimeout(idle);
    env.signal.removeEventListener('abort', onAbort);
    for (const t of timers) clearTimeout(t);
    await container.remove({ force: true }).catch(() => {});
  }
};
