import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Decodes a quoted-printable body (what nodemailer writes for long lines). */
export function decodeQuotedPrintable(text: string): string {
  const bytes = text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export interface Eml {
  file: string;
  headers: Record<string, string>;
  body: string;
}

export function readEml(file: string): Eml {
  const raw = readFileSync(file, 'utf8');
  const split = raw.indexOf('\n\n');
  const head = raw.slice(0, split).replace(/\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const line of head.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.slice(split + 2);
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) body = decodeQuotedPrintable(body);
  if (/base64/i.test(headers['content-transfer-encoding'] ?? '')) body = Buffer.from(body, 'base64').toString('utf8');
  return { file, headers, body };
}

export function emlFiles(outbox: string): string[] {
  try {
    return readdirSync(outbox).filter((n) => n.endsWith('.eml')).map((n) => path.join(outbox, n));
  } catch {
    return [];
  }
}
