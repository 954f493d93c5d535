import { createHmac } from 'node:crypto';
import { HopperError } from '../errors.js';
import type { IncomingMessage } from 'node:http';
import { failureReason, send } from '../net/client.js';
import { OutboundError, type OutboundPolicy } from '../net/outbound.js';

export const SIGNATURE_HEADER = 'X-Hopper-Signature';

/** `sha256=<hex HMAC-SHA256 of the body>`, what a receiver recomputes with the shared secret. */
export function signature(secret: string | Buffer, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface WebhookResult {
  status: number;
}

/**
 * POSTs one event. A 2xx is delivered; anything else (or no answer within
 * `timeoutMs`) is an error carrying the status, to be retried. Redirects are
 * not followed: a receiver that moved must be reconfigured, not guessed. A
 * receiver at an address the outbound policy refuses fails with E_OUTBOUND
 * (an OutboundError, which the notifier does not retry: it is dead at once),
 * before anything is sent.
 */
export async function postWebhook(
  url: string,
  body: string,
  o: { event: string; secret: string | Buffer; deliveryId: number; timeoutMs: number; policy: OutboundPolicy },
): Promise<WebhookResult> {
  let res: IncomingMessage;
  try {
    res = await send(new URL(url), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'hopper-webhook',
        'X-Hopper-Event': o.event,
        'X-Hopper-Delivery': String(o.deliveryId),
        [SIGNATURE_HEADER]: signature(o.secret, body),
      },
      body,
      signal: AbortSignal.timeout(o.timeoutMs),
      policy: o.policy,
    });
  } catch (err) {
    if (err instanceof OutboundError) throw err;
    throw new HopperError('E_WEBHOOK', `POST ${new URL(url).origin} failed: ${failureReason(err, `no answer within ${o.timeoutMs / 1000}s`)}`);
  }
  res.resume();
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    throw Object.assign(new HopperError('E_WEBHOOK', `POST ${new URL(url).origin} answered ${status}`), { status });
  }
  return { status };
}
