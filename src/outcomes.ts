// One table of outcomes: what each failure code means, written once. Whether
// a new attempt could fix it (the queue asks), and what the requester reads
// about it (emails and webhooks ask). The full message, with command lines
// and output, is the admin's: it stays on the job, in job.log and the CLI.

interface Outcome {
  /** A new attempt cannot fix it: the recipe, the request or what it names is wrong. */
  permanent?: boolean;
  /** What the requester reads; absent: the message's first line (already plain). */
  requester?: (message: string) => string;
}

const PROCESSING = (): string => 'a processing step failed';
const STORAGE = (): string => 'the result was ready, but could not be delivered: the storage for downloads was unavailable';
const EXITED = (message: string): string => {
  const exit = /exited with code (\d+)/.exec(message)?.[1];
  return `a processing step failed${exit ? ` (exit code ${exit})` : ''}`;
};

const OUTCOMES: Readonly<Record<string, Outcome>> = {
  E_CANCELED: { permanent: true },
  E_PATH: { permanent: true },
  E_TEMPLATE: { permanent: true },
  E_FETCH_URL: { permanent: true },
  // The server said the request itself is wrong (4xx but 408 and 429); asking again gets the same.
  E_FETCH_CLIENT: { permanent: true },
  E_FETCH_NO_HOST: { permanent: true },
  E_PAGES_URL: { permanent: true },
  E_PAGES_LIMIT: { permanent: true },
  E_PAGES_SIZE: { permanent: true },
  E_PAGES_HEADER: { permanent: true },
  E_PAGES_CLIENT: { permanent: true },
  E_PAGES_NO_HOST: { permanent: true },
  E_OUTBOUND: {
    permanent: true,
    // The admin's advice (outbound.allow) is not the requester's to follow.
    requester: (m) => `a URL it names points to an address this service does not reach (${m.split(';')[0]})`,
  },
  E_OUTPUT_NAME: { permanent: true },
  E_RUN_NOT_FOUND: { permanent: true, requester: PROCESSING },
  E_IMAGE_MISSING: { permanent: true, requester: PROCESSING },
  E_DISK: { permanent: true, requester: () => 'it needed more disk space than it may use' },
  E_CONTAINER_OOM: { permanent: true, requester: () => 'it needed more memory than it may use' },
  E_RESOURCES: { permanent: true },
  // hopper.yaml has no s3 section: the admin must add one; the requester reads the storage sentence.
  E_S3_UNAVAILABLE: { permanent: true, requester: STORAGE },
  // S3 refused the bucket or hopper's credentials: the admin must fix hopper.yaml; no try can help.
  E_S3_REFUSED: { permanent: true, requester: STORAGE },
  E_OUTPUTS_DISK: { requester: STORAGE },
  E_DELIVERY: { requester: STORAGE },
  // The produced files went missing before delivery (removed by hand, say): a new run makes them again.
  E_OUTPUT_LOST: { requester: () => 'the result was lost before it could be delivered' },
  E_RUN_EXIT: { requester: EXITED },
  E_CONTAINER_EXIT: { requester: EXITED },
  E_RUN_FAILED: { requester: PROCESSING },
  E_RUN_TIMEOUT: { requester: PROCESSING },
  E_CONTAINER: { requester: PROCESSING },
  E_CONTAINER_CREATE: { requester: PROCESSING },
  E_IMAGE_PULL: { requester: PROCESSING },
  E_IDLE: { requester: PROCESSING },
  E_NO_OUTPUT: { requester: () => 'the work finished but produced no result' },
  // Swarm lost the node under the container, or ended its task for a reason of its own: another try may land elsewhere.
  E_SWARM_NODE: { requester: () => 'the machine running it was lost' },
  E_SWARM_TASK: { requester: PROCESSING },
  E_DOCKER_DOWN: { requester: () => 'the service could not run it for a while (its container engine was unavailable)' },
  E_TIMEOUT: { requester: () => 'it took longer than it may' },
  // A worker thread of hopper's died under the job (tried again, as its recipe's retries say).
  E_WORKER: { requester: () => 'the service had an internal problem while running it' },
};


function outcomeOf(code: string): Outcome {
  return OUTCOMES[code] ?? (code.startsWith('E_S3') ? { requester: STORAGE } : {});
}

/** Whether a new attempt could fix a failure with this code. */
export function isRetryable(code: string): boolean {
  return !outcomeOf(code).permanent;
}

/**
 * What a requester is told went wrong: plain words, without the recipe's
 * internals (command lines, container output).
 */
export function explain(error: { code: string; message: string }): string {
  const words = outcomeOf(error.code).requester;
  return words ? words(error.message) : error.message.split('\n')[0].replace(/; last output:$/, '').slice(0, 300);
}
