import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';
import type { EmailPayload, Notification } from '../store/notifications.js';

export interface EmailSender {
  send(n: Notification, payload: EmailPayload): Promise<void>;
  close(): void;
}

/** nodemailer is loaded with the first email: a daemon that sends none never holds it. */
function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/**
 * SMTP when configured, else each message as an `.eml` file in outbox/ (what
 * a mail server would have sent, readable by any mail client).
 */
export function createEmailSender(config: Config, outboxDir: string): EmailSender {
  const from = config.smtp?.from ?? 'hopper@localhost';
  const smtp = config.smtp;
  if (smtp) {
    const transport = lazy(async () => (await import('nodemailer')).default.createTransport(smtp.url));
    let opened = false;
    return {
      async send(n, p) {
        opened = true;
        await (await transport()).sendMail({ from, to: p.to, subject: p.subject, text: p.text, headers: { 'X-Hopper-Job': n.jobId } });
      },
      close: () => {
        if (opened) void transport().then((t) => t.close());
      },
    };
  }
  const transport = lazy(async () => (await import('nodemailer')).default.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }));
  return {
    async send(n, p) {
      const info = await (await transport()).sendMail({ from, to: p.to, subject: p.subject, text: p.text, headers: { 'X-Hopper-Job': n.jobId } });
      await mkdir(outboxDir, { recursive: true });
      const file = path.join(outboxDir, `${n.jobId}-${n.event}-${n.id}.eml`);
      await writeFile(`${file}.tmp`, info.message as Buffer);
      await rename(`${file}.tmp`, file);
    },
    close: () => {},
  };
}
