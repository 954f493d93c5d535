import { domainToASCII } from 'node:url';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config/config.js';
import type { EmailPayload, Notification } from '../store/notifications.js';
import type { Offload } from '../workers/offload.js';

/** A domain as a Message-ID may carry it: dot-separated labels of letters, digits and hyphens. */
const DOT_ATOM_DOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** The first address's domain in a From value (any form: a bare address, `Name <a@b>`, a list), in ASCII; else localhost. */
function senderDomain(from: string): string {
  const domain = /@([^\s<>()[\],;:"@]+)/.exec(from)?.[1];
  const ascii = domain ? domainToASCII(domain).toLowerCase() : '';
  return DOT_ATOM_DOMAIN.test(ascii) ? ascii : 'localhost';
}

/**
 * The same Message-ID for every sending of one notification row: should
 * hopper die after a mail server took a message but before the row was marked
 * sent, the message sent again after the restart is the same message, which
 * mail systems and clients recognise (and a random one per sending is six
 * random draws a mail). The domain is the sender's, as nodemailer's own.
 */
export function messageIdFor(n: Pick<Notification, 'id' | 'jobId' | 'event'>, from: string): string {
  return `<${n.jobId}.${n.event}.${n.id}@${senderDomain(from)}>`;
}

export interface EmailSender {
  send(n: Notification, payload: EmailPayload): Promise<void>;
  close(): void;
}

/**
 * SMTP when configured, else each message as an `.eml` file in outbox/ (what
 * a mail server would have sent, readable by any mail client), written by
 * hopper's worker threads.
 */
export function createEmailSender(config: Config, outboxDir: string, offload: Offload): EmailSender {
  const from = config.smtp?.from ?? 'hopper@localhost';
  const smtp = config.smtp;
  if (smtp) {
    // nodemailer is loaded with the first email: a daemon that sends none never holds it.
    let transport: Promise<Transporter> | undefined;
    return {
      async send(n, p) {
        transport ??= import('nodemailer').then((m) => m.default.createTransport(smtp.url));
        await (await transport).sendMail({ from, to: p.to, subject: p.subject, text: p.text, headers: { 'X-Hopper-Job': n.jobId }, messageId: messageIdFor(n, from) });
      },
      close: () => void transport?.then((t) => t.close()),
    };
  }
  return {
    send: (n, p) => offload.outbox({ outboxDir, name: `${n.jobId}-${n.event}-${n.id}.eml`, from, to: p.to, subject: p.subject, text: p.text, jobId: n.jobId, messageId: messageIdFor(n, from) }),
    close: () => {},
  };
}
