import { mkdir, rename, writeFile } from 'node:fs/promises';
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
      await mkdir(outboxDir, { recursive: true });
      const file = path.join(outboxDir, `${n.jobId}-${n.event}-${n.id}.eml`);
      await writeFile(`${file}.tmp`, info.message as Buffer);
      await rename(`${file}.tmp`, file);
    },
    close: () => {},
  };
}
