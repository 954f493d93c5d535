import type { Context } from '../context.js';
import { toHopperError } from '../errors.js';
import type { EmailPayload, Notification } from '../store/notifications.js';
import { createEmailSender, type EmailSender } from './email.js';
import type { WebhookPayload } from './plan.js';
import { postWebhook } from './webhook.js';

const MAX_DELAY_MS = 3_600_000;
/** Even with nothing due, look again this often: `hopper notify resend` writes rows from outside. */
const POLL_MS = 5000;
const WEBHOOK_TIMEOUT_MS = 10_000;

export interface NotifierOptions {
  /** The first retry waits this long; each next one twice as long (up to an hour). @default 10000 */
  retryBaseMs?: number;
}

/**
 * Sends the outbox rows the store holds, apart from the job lanes: a slow mail
 * server never holds up a job. Rows survive a restart; failures back off.
 */
export class Notifier {
  private readonly ctx: Context;
  private email: EmailSender;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly retryBaseMs: number;

  constructor(ctx: Context, options: NotifierOptions = {}) {
    this.ctx = ctx;
    this.email = createEmailSender(ctx.config, ctx.paths.outbox);
    this.retryBaseMs = options.retryBaseMs ?? 10_000;
  }

  /** Sends what is due now; calls while a round runs are folded into one more round. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.round()
      .catch((err: unknown) => this.ctx.log.error({ err: (err as Error).message }, 'notification round failed; will try again'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        } else this.arm();
      });
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    let next: number | null;
    try {
      next = this.ctx.store.notifications.nextDueAt();
    } catch {
      next = this.ctx.clock.now() + 5000;
    }
    const wait = next === null ? POLL_MS : Math.min(Math.max(next - this.ctx.clock.now(), 0), POLL_MS);
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    for (let batch = 0; batch < 20 && !this.stopped; batch++) {
      const due = this.ctx.store.notifications.due(this.ctx.clock.now());
      if (due.length === 0) return;
      for (const n of due) await this.deliver(n);
    }
  }

  private async send(n: Notification): Promise<number | null> {
    if (n.channel === 'email') {
      await this.email.send(n, n.payload as EmailPayload);
      return null;
    }
    const { url, document } = n.payload as WebhookPayload;
    const body = JSON.stringify(document);
    return (await postWebhook(url, body, { event: n.event, secret: this.ctx.webhookKey, deliveryId: n.id, timeoutMs: WEBHOOK_TIMEOUT_MS })).status;
  }

  private retryFor(n: Notification): number {
    return n.channel === 'webhook' ? this.ctx.config.webhooks.retryForMs : (this.ctx.config.smtp?.retryForMs ?? 86_400_000);
  }

  /** One try; every try is recorded. A failure backs off, and is dead once past the channel's retryFor. */
  private async deliver(n: Notification): Promise<void> {
    const now = (): number => this.ctx.clock.now();
    try {
      const status = await this.send(n);
      this.ctx.store.notifications.recordDelivery(n.id, now(), status, null);
      this.ctx.store.notifications.markSent(n.id, now());
      this.ctx.log.info({ job: n.jobId, event: n.event, channel: n.channel, to: n.target }, 'notification sent');
    } catch (err) {
      const message = toHopperError(err).message;
      const status = (err as { status?: number }).status ?? null;
      const attempts = n.attempts + 1;
      const next = now() + Math.min(this.retryBaseMs * 2 ** (attempts - 1), MAX_DELAY_MS);
      const dead = next > n.createdAt + this.retryFor(n);
      this.ctx.store.notifications.recordDelivery(n.id, now(), status, message);
      this.ctx.store.notifications.markFailed(n.id, message, dead ? null : next);
      this.ctx.log.warn({ job: n.jobId, event: n.event, channel: n.channel, to: n.target, attempts, dead, err: message }, dead ? 'notification dead: `hopper notify resend` sends it again' : 'notification failed; will retry');
    }
  }

  /** The config was reloaded: mail goes the new way from the next message on. */
  reconfigured(): void {
    const old = this.email;
    this.email = createEmailSender(this.ctx.config, this.ctx.paths.outbox);
    old.close();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // A mail server that hangs must not hold up the stop: unsent rows stay for the next start.
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.email.close();
  }
}
