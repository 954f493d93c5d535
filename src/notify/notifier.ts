import TinyQueue from 'tinyqueue';
import type { Context } from '../context.js';
import { printable } from '../text.js';
import { toHopperError } from '../errors.js';
import type { Due, EmailPayload, Notification } from '../store/notifications.js';
import { createEmailSender, type EmailSender } from './email.js';
import type { WebhookPayload } from './plan.js';
import { policyFor } from '../net/outbound.js';
import { postWebhook } from './webhook.js';

const MAX_DELAY_MS = 3_600_000;
/** Even with nothing due, look again this often: `hopper notify resend` writes rows from outside. */
const POLL_MS = 5000;
const WEBHOOK_TIMEOUT_MS = 10_000;
/**
 * Deliveries at once, across receivers, by kind: over the network (webhooks,
 * the mail server), and mail written to outbox/, a local file each. A written
 * email waits for the shared sync, then for the step thread, ~20-25 ms in all
 * under load: at 8 at once that capped a burst of trivial jobs at ~350 emails
 * a second while the jobs themselves ended at ~600 (measured: the last email
 * came 2 s after the last job ended).
 */
const MAX_PARALLEL: Record<Kind, number> = { net: 8, local: 64 };

type Kind = 'net' | 'local';

/**
 * Who receives a notification, one delivery at a time, so each gets a job's
 * events in order: a webhook URL; the mail server, for all email; or, with
 * mail written to outbox/ (no server to wait for), each job's own mail.
 */
function receiverOf(n: Pick<Due, 'jobId' | 'channel' | 'target'>, smtp: boolean): { receiver: string; kind: Kind } {
  if (n.channel === 'webhook') return { receiver: `webhook ${n.target}`, kind: 'net' };
  return smtp ? { receiver: 'email', kind: 'net' } : { receiver: `outbox ${n.jobId}`, kind: 'local' };
}

const KINDS: readonly Kind[] = ['net', 'local'];

/** After an unexpected failure (the database refusing writes), a row waits this long before it is tried again. */
const COOLDOWN_MS = 5000;

export interface NotifierOptions {
  /** The first retry waits this long; each next one twice as long (up to an hour). @default 10000 */
  retryBaseMs?: number;
}

/** Where a row stands in the notifier's schedule. */
interface Slot extends Due {
  receiver: string;
  kind: Kind;
  /** Whether it has an entry in `heads` (one at most: whether it counts is judged when it is met). */
  inHeap?: boolean;
}

const byDue = (a: Due, b: Due): number => a.nextAt - b.nextAt || a.id - b.id;

/**
 * Sends the outbox rows the store holds, apart from the job lanes: a slow mail
 * server never holds up a job. Rows survive a restart; failures back off.
 *
 * The schedule is kept in memory, one queue per receiver in the order rows
 * fall due: the store hands over each row it inserts (`takeFresh`), so a send
 * costs no query over the table. The whole pending set is read at start and
 * every POLL_MS, for rows that another process (`hopper notify resend`) wrote.
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
  /** Rows waiting, per receiver, soonest first. */
  private readonly queues = new Map<string, Slot[]>();
  /** Where each waiting row is queued. */
  private readonly queued = new Map<number, Slot>();
  /**
   * The head of each idle receiver's queue, soonest first: what kick() takes
   * and arm() waits for, without a walk over every receiver (with mail to
   * outbox/, one per job). Entries go stale when a head leaves or its
   * receiver gets busy; they are dropped when met (see ready()).
   */
  private readonly heads: Record<Kind, TinyQueue<Slot>> = { net: new TinyQueue<Slot>([], byDue), local: new TinyQueue<Slot>([], byDue) };
  /** Deliveries under way, by kind. */
  private readonly running: Record<Kind, number> = { net: 0, local: 0 };
  private nextScanAt = 0;
  /** The store's outsideVersion() at the last full look. */
  private seenVersion: number | undefined;

  constructor(ctx: Context, options: NotifierOptions = {}) {
    this.ctx = ctx;
    this.email = createEmailSender(ctx.config, ctx.paths.outbox, ctx.offload);
    this.retryBaseMs = options.retryBaseMs ?? 10_000;
  }

  /**
   * Starts what is due now, up to MAX_PARALLEL of each kind at once and one per
   * receiver: a receiver that hangs for its whole timeout holds up only its own rows.
   */
  kick(): void {
    if (this.stopped) return;
    const now = this.ctx.clock.now();
    this.learn(now);
    for (const kind of KINDS) {
      for (let slot = this.ready(kind); slot && slot.nextAt <= now && this.running[kind] < MAX_PARALLEL[kind]; slot = this.ready(kind)) {
        this.popHead(kind);
        this.unqueue(slot);
        this.start(slot);
      }
    }
    this.arm(now);
  }

  /** The soonest head of an idle receiver of this kind (stale entries dropped on the way), left in place. */
  private ready(kind: Kind): Slot | undefined {
    const heads = this.heads[kind];
    for (let top = heads.peek(); top; top = heads.peek()) {
      if (this.queues.get(top.receiver)?.[0] === top && !this.busy.has(top.receiver)) return top;
      this.popHead(kind);
    }
    return undefined;
  }

  private popHead(kind: Kind): void {
    const top = this.heads[kind].pop();
    if (top) top.inHeap = false;
  }

  /**
   * A receiver's head changed or it became idle: its head goes among the
   * ready ones, unless it is there already (an entry that went stale counts
   * again once its slot is head again: one entry per slot, however often a
   * long queue's head changes).
   */
  private offerHead(receiver: string): void {
    const head = this.queues.get(receiver)?.[0];
    if (!head || head.inHeap || this.busy.has(receiver)) return;
    head.inHeap = true;
    this.heads[head.kind].push(head);
  }

  /** Takes in the rows the store wrote since the last look, and now and then all pending rows. */
  private learn(now: number): void {
    const notes = this.ctx.store.notifications;
    for (const due of notes.takeFresh()) this.enqueue(due);
    if (now < this.nextScanAt) return;
    try {
      // After the first look, only another process (`hopper notify resend`) adds pending rows unseen.
      const version = this.ctx.store.outsideVersion();
      if (version !== this.seenVersion) {
        for (const due of notes.pending()) if (!this.queued.has(due.id)) this.enqueue(due);
        this.seenVersion = version;
      }
      this.nextScanAt = now + POLL_MS;
    } catch (err) {
      this.ctx.log.error({ err: (err as Error).message }, 'could not read the notifications due; will try again');
      this.nextScanAt = now + COOLDOWN_MS;
    }
  }

  /** Puts a row in its receiver's queue (again, if it was there: a later word on a row wins). */
  private enqueue(due: Due): void {
    if (this.inFlight.has(due.id)) return; // its delivery reads the row as it is then
    const old = this.queued.get(due.id);
    if (old) this.unqueue(old);
    const slot: Slot = { ...due, ...receiverOf(due, this.ctx.config.smtp !== undefined), inHeap: false };
    let queue = this.queues.get(slot.receiver);
    if (!queue) this.queues.set(slot.receiver, (queue = []));
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byDue(queue[mid], slot) < 0) lo = mid + 1;
      else hi = mid;
    }
    queue.splice(lo, 0, slot);
    this.queued.set(slot.id, slot);
    if (lo === 0) this.offerHead(slot.receiver);
  }

  private unqueue(slot: Slot): void {
    this.queued.delete(slot.id);
    const queue = this.queues.get(slot.receiver);
    if (!queue) return;
    // Mostly the head (a row that falls due), which indexOf finds first.
    const i = queue.indexOf(slot);
    if (i < 0) return;
    queue.splice(i, 1);
    if (queue.length === 0) this.queues.delete(slot.receiver);
    else if (i === 0) this.offerHead(slot.receiver);
  }

  private start(slot: Slot): void {
    this.busy.add(slot.receiver);
    this.running[slot.kind]++;
    const task = this.deliverRow(slot.id)
      .catch((err: unknown) => {
        this.ctx.log.error({ err: (err as Error).message, notification: slot.id }, 'notification failed unexpectedly; will try again');
        // No hot loop on a failing database: the row rests, then is tried again.
        return this.ctx.clock.now() + COOLDOWN_MS;
      })
      .then((again) => {
        this.inFlight.delete(slot.id);
        this.running[slot.kind]--;
        this.busy.delete(slot.receiver);
        this.offerHead(slot.receiver);
        if (again !== null) this.enqueue({ ...slot, nextAt: again });
        this.kick();
      });
    this.inFlight.set(slot.id, task);
  }

  /** Reads the whole row (its payload) and delivers it if it is still pending; returns when to try again, if ever. */
  private async deliverRow(id: number): Promise<number | null> {
    const n = this.ctx.store.notifications.get(id);
    if (n?.state !== 'pending') return null;
    // What it tells (a job's end, a link) is on disk before it leaves hopper.
    await this.ctx.store.sync();
    return this.deliver(n);
  }

  /** Wakes for the next row that falls due (rows due now start when a slot frees), and at the next scan. */
  private arm(now: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    // With every delivery slot of a kind taken, the next one's end kicks: no timer for its rows due now.
    let next = this.nextScanAt;
    for (const kind of KINDS) if (this.running[kind] < MAX_PARALLEL[kind]) next = Math.min(next, this.ready(kind)?.nextAt ?? Infinity);
    this.timer = setTimeout(() => this.kick(), Math.min(Math.max(next - now, 0), POLL_MS));
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
  private async deliver(n: Notification): Promise<number | null> {
    const now = (): number => this.ctx.clock.now();
    try {
      const status = await this.send(n);
      // Nothing waits on the mark: it joins the next commit (the row is no longer scheduled here meanwhile).
      await this.ctx.store.soon(() => {
        this.ctx.store.notifications.recordDelivery(n.id, now(), status, null);
        this.ctx.store.notifications.markSent(n.id, now());
      });
      this.ctx.log.info({ job: n.jobId, event: n.event, channel: n.channel, to: n.target }, 'notification sent');
      return null;
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
      await this.ctx.store.soon(() => {
        this.ctx.store.notifications.recordDelivery(n.id, now(), status, message);
        this.ctx.store.notifications.markFailed(n.id, message, dead ? null : next);
      });
      const why = refused
        ? 'notification dead: its receiver is an address outbound.allow does not name; after allowing it, `hopper notify resend` sends it again'
        : dead
          ? 'notification dead: `hopper notify resend` sends it again'
          : 'notification failed; will retry';
      this.ctx.log.warn({ job: n.jobId, event: n.event, channel: n.channel, to: n.target, attempts, dead, err: message }, why);
      return dead ? null : next;
    }
  }

  /** The config was reloaded: mail goes the new way from the next message on. */
  reconfigured(): void {
    const old = this.email;
    this.email = createEmailSender(this.ctx.config, this.ctx.paths.outbox, this.ctx.offload);
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
