import { createHmac } from 'node:crypto';
import { HopperError } from '../errors.js';
import { failureReason } from '../net/get.js';

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
 * not followed: a receiver that moved must be reconfigured, not guessed.
 */
export async function postWebhook(
  url: string,
  body: string,
  o: { event: string; secret: string | Buffer; deliveryId: number; timeoutMs: number },
): Promise<WebhookResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'hopper-webhook',
        'X-Hopper-Event': o.event,
        'X-Hopper-Delivery': String(o.deliveryId),
        [SIGNATURE_HEADER]: signature(o.secret, body),
      },
      body,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (err) {
    throw new HopperError('E_WEBHOOK', `POST ${new URL(url).origin} failed: ${failureReason(err, `no answer within ${o.timeoutMs / 1000}s`)}`);
  }
  await res.body?.cancel().catch(() => {});
  if (res.status < 200 || res.status >= 300) {
    throw Object.assign(new HopperError('E_WEBHOOK', `POST ${new URL(url).origin} answered ${res.status}`), { status: res.status });
  }
  return { status: res.status };
}
