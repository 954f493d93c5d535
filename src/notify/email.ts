import { mkdir } from 'node:fs/promises';
import { PRIVATE_FILE, PRIVATE_FOLDER } from '../fs/owndir.js';
import { writeFileAtomic } from '../fs/write.js';
import path from 'node:path';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/config.js';
import type { EmailPayload, Notification } from '../store/notifications.js';

export interface EmailSender {
  send(n: Notification, payload: EmailPayload): Promise<void>;
  close(): void;
}

/**
 * SMTP when configured, else each message as an `.eml` file in outbox/ (what
 * a mail server would have sent, readable by any mail client).
 */
export function createEmailSender(config: Config, outboxDir: string): EmailSender {
  const from = config.smtp?.from ?? 'hopper@localhost';
  const smtp = config.smtp;
  if (smtp) {
    // nodemailer is loaded with the first email: a daemon that sends none never holds it.
    let transport: Promise<Transporter> | undefined;
    return {
      async send(n, p) {
        transport ??= import('nodemailer').then((m) => m.default.createTransport(smtp.url));
        await (await transport).sendMail({ from, to: p.to, subject: p.subject, text: p.text, headers: { 'X-Hopper-Job': n.jobId } });
      },
      close: () => void transport?.then((t) => t.close()),
    };
  }
  let transport: Promise<Transporter> | undefined;
  return {
    async send(n, p) {
      transport ??= import('nodemailer').then((m) => m.default.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }));
      const info = await (await transport).sendMail({ from, to: p.to, subject: p.subject, text: p.text, headers: { 'X-Hopper-Job': n.jobId } });
      await mkdir(outboxDir, { recursive: true, mode: PRIVATE_FOLDER });
      // A download link in it is as good as the file: readable by hopper's user alone.
      await writeFileAtomic(path.join(outboxDir, `${n.jobId}-${n.event}-${n.id}.eml`), info.message as Buffer, PRIVATE_FILE);
    },
    close: () => {},
  };
}
