import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE, PRIVATE_FOLDER } from '../fs/owndir.js';
import { writeFileAtomicSync } from '../fs/write.js';

/** One email for outbox/: plain data, so a worker thread can write it. */
export interface OutboxMail {
  outboxDir: string;
  /** The file's name in outbox/ (JOB-EVENT-ID.eml). */
  name: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
  jobId: string;
}

type Composer = typeof import('nodemailer/lib/mail-composer/index.js').default;
let composer: Promise<Composer> | undefined;

/** Loads MailComposer now (at start, when mail goes to outbox/), not with the first email. */
export async function preloadComposer(): Promise<void> {
  // A load that failed is tried again with the next email.
  composer ??= import('nodemailer/lib/mail-composer/index.js').then(
    (m) => m.default,
    (err: unknown) => {
      composer = undefined;
      throw err;
    },
  );
  await composer;
}

/**
 * Writes the message a mail server would have been sent, as an `.eml` file any
 * mail client reads. MailComposer builds it as nodemailer's transports do,
 * without a transport's plugin pipeline around it. Written synchronously: it
 * runs on a step thread (or, with `threads: 0`, on the main one), and is small.
 */
export async function writeOutboxMail(mail: OutboxMail): Promise<void> {
  // Loaded with the first email: a daemon that sends none never holds nodemailer.
  await preloadComposer();
  const MailComposer = (await composer)!;
  const message = await new MailComposer({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, headers: { 'X-Hopper-Job': mail.jobId }, newline: 'unix' })
    .compile()
    .build();
  const file = path.join(mail.outboxDir, mail.name);
  // A download link in it is as good as the file: readable by hopper's user alone.
  try {
    writeFileAtomicSync(file, message, PRIVATE_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // outbox/ was removed since hopper started: made again.
    mkdirSync(mail.outboxDir, { recursive: true, mode: PRIVATE_FOLDER });
    writeFileAtomicSync(file, message, PRIVATE_FILE);
  }
}
