import type { Context } from '../context.js';
import { toHopperError } from '../errors.js';
import type { EmailPayload, Notification } from '../store/notifications.js';
import { createEmailSender, type EmailSender } from './email.js';

const MAX_ATTEMPTS = 10;
const BASE_DELAY_MS = 30_000;
const MAX_DELAY_MS = 6 * 3_600_000;

/**
 * Sends the outbox rows the store holds, apart from the job lanes: a slow mail
 * server never holds up a job. Rows survive a restart; failures back off.
 */
export class Notifier {
  private readonly ctx: Context;
  private readonly email: EmailSender;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(ctx: Context, email?: EmailSender) {
    this.ctx = ctx;
    this.email = email ?? createEmailSender(ctx.config, ctx.paths.outbox);
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
    if (next === null) return;
    const wait = Math.min(Math.max(next - this.ctx.clock.now(), 0), 60_000);
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

  private async deliver(n: Notification): Promise<void> {
    try {
      if (n.channel === 'email') await this.email.send(n, n.payload as EmailPayload);
      else throw new Error(`${n.channel} notifications are not built yet`);
      this.ctx.store.notifications.markSent(n.id, this.ctx.clock.now());
      this.ctx.log.info({ job: n.jobId, event: n.event, channel: n.channel }, 'notification sent');
    } catch (err) {
      const message = toHopperError(err).message;
      const attempts = n.attempts + 1;
      const nextAt = attempts >= MAX_ATTEMPTS ? null : this.ctx.clock.now() + Math.min(BASE_DELAY_MS * 2 ** (attempts - 1), MAX_DELAY_MS);
      this.ctx.store.notifications.markFailed(n.id, message, nextAt);
      this.ctx.log.warn({ job: n.jobId, event: n.event, channel: n.channel, attempts, dead: nextAt === null, err: message }, 'notification failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // A mail server that hangs must not hold up the stop: unsent rows stay for the next start.
    await Promise.race([this.running, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.email.close();
  }
}
