import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PRIVATE_FILE, PRIVATE_FOLDER } from '../fs/owndir.js';
import { writeFileAtomicSync } from '../fs/write.js';
import { randomHex } from '../random.js';

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
  /** `<JOB.EVENT.ROW@DOMAIN>`: the same for every sending of one notification (see email.ts). */
  messageId: string;
}

type Composer = typeof import('nodemailer/lib/mail-composer/index.js').default;
type MimeNode = ReturnType<InstanceType<Composer>['compile']>;
interface Nodemailer {
  MailComposer: Composer;
  qp: typeof import('nodemailer/lib/qp/index.js');
  base64: typeof import('nodemailer/lib/base64/index.js');
}
let nodemailer: Promise<Nodemailer> | undefined;

/** Loads MailComposer now (at start, when mail goes to outbox/), not with the first email. */
export async function preloadComposer(): Promise<Nodemailer> {
  // A load that failed is tried again with the next email.
  nodemailer ??= Promise.all([import('nodemailer/lib/mail-composer/index.js'), import('nodemailer/lib/qp/index.js'), import('nodemailer/lib/base64/index.js')]).then(
    ([composer, qp, base64]) => ({ MailComposer: composer.default, qp, base64 }),
    (err: unknown) => {
      nodemailer = undefined;
      throw err;
    },
  );
  return nodemailer;
}

/** What of a MimeNode the plain-text path reads beyond its typed API (checked, not assumed). */
interface NodeInternals {
  _raw?: unknown;
  _transforms?: unknown;
  _processFuncs?: unknown;
}

/** Runs a Transform's own encoding on text all at hand, without a stream around it. */
function encodeAtOnce(encoder: import('node:stream').Transform, text: string): string {
  const out: string[] = [];
  encoder.push = (chunk: Buffer | string) => (out.push(typeof chunk === 'string' ? chunk : chunk.toString('latin1')), true);
  // 'buffer' is what a stream passes with a Buffer chunk (the encoders test for it).
  encoder._transform(Buffer.from(text, 'utf8'), 'buffer' as BufferEncoding, () => {});
  encoder._flush(() => {});
  return out.join('');
}

/**
 * The bytes MimeNode.build() gives for a single text part, built without its
 * streams: the same headers (buildHeaders), the body through the same encoder
 * (its transform and flush called directly), the same final newline and
 * newline conversion. build() costs ~210 µs per message here, mostly stream
 * plumbing and the garbage it leaves; this ~60 µs. Anything but a lone text
 * part (or a MimeNode whose inside has changed) is left to build():
 * test/notify/outbox.test.ts compares the two byte for byte.
 */
function plainTextMessage(node: MimeNode, lib: Nodemailer): Buffer | undefined {
  const inside = node as MimeNode & NodeInternals;
  const plain = typeof node.content === 'string' && node.childNodes.length === 0 && !node.multipart && inside._raw === false;
  const untransformed = Array.isArray(inside._transforms) && inside._transforms.length === 0 && Array.isArray(inside._processFuncs) && inside._processFuncs.length === 0;
  if (!plain || !untransformed || node.newline !== 'unix') return undefined;
  const text = node.content as string;
  const encoding = node.getTransferEncoding();
  const headers = node.buildHeaders();
  const body = encoding === 'quoted-printable' ? encodeAtOnce(new lib.qp.Encoder({}), text) : encoding === 'base64' ? encodeAtOnce(new lib.base64.Encoder({}), text) : text;
  let message = `${headers}\r\n\r\n${body}`;
  // As MimeNode's LastNewline, then its LeUnix (every CR dropped).
  if (!message.endsWith('\n')) message += message.endsWith('\r') ? '\n' : '\r\n';
  return Buffer.from(message.replaceAll('\r', ''), 'utf8');
}

/** The message MailComposer makes of `mail`, as a transport would send it (LF line ends). */
export async function composeOutboxMail(mail: Omit<OutboxMail, 'outboxDir' | 'name'>, date?: Date): Promise<Buffer> {
  const lib = await preloadComposer();
  // A boundary of our own: MimeNode would draw one with randomBytes for every mail (see random.ts); a lone text part never uses it.
  const node = new lib.MailComposer({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, headers: { 'X-Hopper-Job': mail.jobId }, messageId: mail.messageId, date, baseBoundary: randomHex(16), newline: 'unix' }).compile();
  return plainTextMessage(node, lib) ?? node.build();
}

/**
 * Writes the message a mail server would have been sent, as an `.eml` file any
 * mail client reads. MailComposer builds it as nodemailer's transports do,
 * without a transport's plugin pipeline around it (composeOutboxMail). Written
 * synchronously: it runs on a step thread (or, with `threads: 0`, on the main
 * one), and is small.
 */
export async function writeOutboxMail(mail: OutboxMail): Promise<void> {
  // Loaded with the first email: a daemon that sends none never holds nodemailer.
  const message = await composeOutboxMail(mail);
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
