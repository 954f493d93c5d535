import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A 32-byte secret kept in a file readable only by hopper's user (state/link.key,
 * state/webhook.key): made on the first start, the same ever after. The file
 * holds exactly the hex text and no newline: a webhook receiver uses that
 * text, as it is, as its HMAC key. (A file an older hopper wrote with a
 * newline is rewritten without it; the key stays the same.)
 */
export function loadOrMakeKey(file: string): Buffer {
  try {
    const text = readFileSync(file, 'utf8');
    const key = Buffer.from(text.trim(), 'hex');
    if (key.length >= 32) {
      if (text !== text.trim()) write(file, text.trim());
      return key;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomBytes(32);
  write(file, key.toString('hex'));
  return key;
}

function write(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600, flag: 'w' });
  chmodSync(file, 0o600);
}

/** The key that signs webhook bodies: hopper.yaml's webhooks.secret, else state/webhook.key's text. */
export function webhookKeyFor(secret: string | undefined, stateDir: string): string {
  return secret ?? loadOrMakeKey(path.join(stateDir, 'webhook.key')).toString('hex');
}
