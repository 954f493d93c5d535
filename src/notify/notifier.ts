import type { Context } from '../context.js';
import { printable } from '../text.js';
import { toHopperError } from '../errors.js';
import type { EmailPayload, Notification } from '../store/notifications.js';
import { createEmailSender, type EmailSender } from './email.js';
import type { WebhookPayload } from './plan.js';
import { policyFor } from '../net/outbound.js';
import { postWebhook } from './webhook.js';

const MAX_DELAY_MS = 3_600_000;
/** Even with nothing due, look again this often: `hopper notify resend` writes rows from outside. */
const POLL_MS = 5000;
const WEBHOOK_TIMEOUT_MS = 10_000;
/** Deliveries at once, across receivers. */
const MAX_PARALLEL = 8;
const DUE_BATCH = 50;

/** Who receives a notification, one delivery at a time: a webhook URL, or the mail server for all email. */
function receiverOf(n: Pick<Notification, 'channel' | 'target'>): string {
  return n.channel === 'email' ? 'email' : `webhook ${n.target}`;
}

/** After an unexpected failure (the database refusing writes), a row waits this long before it is tried again. */
const COOLDOWN_MS = 5000;

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
  private stopped = false;
  private readonly retryBaseMs: number;
  /** Deliveries under way, by notification id. */
  private readonly inFlight = new Map<number, Promise<void>>();
  /** Receivers with a delivery under way: one at a time each, so a job's events reach it in order. */
  private readonly busy = new Set<string>();
  /** Rows whose last try failed unexpectedly, until when they rest (no hot loop on a failing database). */
  private readonly cooldown = new Map<number, number>();

  constructor(ctx: Context, options: NotifierOptions = {}) {
    this.ctx = ctx;
    this.email = createEmailSender(ctx.config, ctx.paths.outbox);
    this.retryBaseMs = options.retryBaseMs ?? 10_000;
  }

  /**
   * Starts what is due now, up to MAX_PARALLEL at once and one per receiver:
   * a receiver that hangs for its whole timeout holds up only its own rows.
   */
  kick(): void {
    if (this.stopped) return;
    let due: Array<Pick<Notification, 'id' | 'channel' | 'target'>>;
    try {
      due = this.ctx.store.notifications.dueByReceiver(this.ctx.clock.now(), DUE_BATCH);
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'could not read the notifications due; will try again');
      due = [];
    }
    const now = this.ctx.clock.now();
    for (const [id, until] of this.cooldown) if (until <= now) this.cooldown.delete(id);
    for (const n of due) {
      if (this.inFlight.size >= MAX_PARALLEL) break;
      const receiver = receiverOf(n);
      if (this.inFlight.has(n.id) || this.busy.has(receiver) || this.cooldown.has(n.id)) continue;
      this.busy.add(receiver);
      const task = this.deliverRow(n.id)
        .catch((err: unknown) => {
          this.cooldown.set(n.id, this.ctx.clock.now() + COOLDOWN_MS);
          this.ctx.log.error({ err: (err as Error).message, notification: n.id }, 'notification failed unexpectedly; will try again');
        })
        .finally(() => {
          this.inFlight.delete(n.id);
          this.busy.delete(receiver);
          this.kick();
        });
      this.inFlight.set(n.id, task);
    }
    this.arm();
  }

  /** Reads the whole row (its payload) and delivers it, if it is still pending. */
  private async deliverRow(id: number): Promise<void> {
    const n = this.ctx.store.notifications.get(id);
    if (n?.state === 'pending') await this.deliver(n);
  }

  /** Wakes for the next row that falls due later (rows due now start when a slot frees). */
  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const now = this.ctx.clock.now();
    let next: number | null;
    try {
      next = this.ctx.store.notifications.nextDueAfter(now);
    } catch {
      next = now + 5000;
    }
    const wait = next === null ? POLL_MS : Math.min(Math.max(next - now, 0), POLL_MS);
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  private async send(n: Notification): Promise<number | null> {
    if (n.channel === 'email') {
      await this.email.send(n, n.payload as EmailPayload);
      return null;
    }
    const { url, document } = n.payload as WebhookPayload;
    const body = JSON.stringify(document);
    return (await postWebhook(url, body, { event: n.event, secret: this.ctx.webhookKey, deliveryId: n.id, timeoutMs: WEBHOOK_TIMEOUT_MS, policy: policyFor(this.ctx.config) })).status;
  }

  private retryFor(n: Notification): number {
    return n.channel === 'webhook' ? this.ctx.config.webhooks.retryForMs : (this.ctx.config.smtp?.retryForMs ?? 86_400_000);
  }

  /**
   * One try; every try is recorded. A failure backs off, and is dead once past
   * the channel's retryFor; a receiver the outbound policy refuses is dead at once.
   */
  private async deliver(n: Notification): Promise<void> {
    const now = (): number => this.ctx.clock.now();
    try {
      const status = await this.send(n);
      await this.ctx.store.later(() => {
        this.ctx.store.notifications.recordDelivery(n.id, now(), status, null);
        this.ctx.store.notifications.markSent(n.id, now());
      });
      this.ctx.log.info({ job: n.jobId, event: n.event, channel: n.channel, to: n.target }, 'notification sent');
    } catch (err) {
      const failure = toHopperError(err);
      const message = printable(failure.message);
      const status = (err as { status?: number }).status ?? null;
      const attempts = n.attempts + 1;
      const next = now() + Math.min(this.retryBaseMs * 2 ** (attempts - 1), MAX_DELAY_MS);
      // An address the outbound policy refuses stays refused until an admin
      // changes outbound.allow: trying again for retryFor would only repeat it.
      const refused = failure.code === 'E_OUTBOUND';
      const dead = refused || next > n.createdAt + this.retryFor(n);
      await this.ctx.store.later(() => {
        this.ctx.store.notifications.recordDelivery(n.id, now(), status, message);
        this.ctx.store.notifications.markFailed(n.id, message, dead ? null : next);
      });
      const why = refused
        ? 'notification dead: its receiver is an address outbound.allow does not name; after allowing it, `hopper notify resend` sends it again'
        : dead
          ? 'notification dead: `hopper notify resend` sends it again'
          : 'notification failed; will retry';
      this.ctx.log.warn({ job: n.jobId, event: n.event, channel: n.channel, to: n.target, attempts, dead, err: message }, why);
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
    await Promise.race([Promise.all(this.inFlight.values()), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.email.close();
  }
}
