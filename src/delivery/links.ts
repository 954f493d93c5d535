import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Local download links: `/downloads/JOB/FILE?expires=UNIX&sig=HMAC`, signed
 * with state/link.key; anyone without it cannot make or stretch a link.
 */
function signature(key: Buffer, job: string, file: string, expires: number): string {
  return createHmac('sha256', key).update(`${job}\n${file}\n${expires}`).digest('hex');
}

export function signedLink(base: string, key: Buffer, job: string, file: string, expiresAt: number): string {
  const expires = Math.floor(expiresAt / 1000);
  const sig = signature(key, job, file, expires);
  return `${base}/downloads/${encodeURIComponent(job)}/${encodeURIComponent(file)}?expires=${expires}&sig=${sig}`;
}

export type LinkCheck = { ok: true } | { ok: false; reason: string };

export function checkLink(key: Buffer, job: string, file: string, expires: string | null, sig: string | null, now: number): LinkCheck {
  if (!expires || !sig || !/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(sig)) {
    return { ok: false, reason: 'this link is incomplete or malformed' };
  }
  const want = Buffer.from(signature(key, job, file, Number(expires)), 'hex');
  if (!timingSafeEqual(want, Buffer.from(sig, 'hex'))) return { ok: false, reason: 'this link is not valid' };
  if (Number(expires) * 1000 < now) return { ok: false, reason: 'this link has expired' };
  return { ok: true };
}
