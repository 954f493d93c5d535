import { HopperError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1e3, kb: 1e3, ki: 1024, kib: 1024,
  m: 1e6, mb: 1e6, mi: 1024 ** 2, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gi: 1024 ** 3, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** `512MiB`, `2GiB`, `64KiB`, `1000` (bytes) → bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(Math.floor(value)) || value < 0) throw new HopperError('E_SIZE', `not a size: ${value}`);
    return Math.floor(value);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new HopperError('E_SIZE', `not a size: "${value}" (write it like 512MiB, 2GiB or 1000)`);
  }
  return safe(Math.floor(Number(m[1]) * unit), value, 'E_SIZE');
}

function safe(n: number, value: string, code: string): number {
  if (!Number.isSafeInteger(n)) throw new HopperError(code, `"${value.slice(0, 40)}" is too large`);
  return n;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000,
};

/** `30m`, `1h30m`, `7d`, `250ms`, or a number of milliseconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(Math.floor(value)) || value < 0) throw new HopperError('E_DURATION', `not a duration: ${value}`);
    return Math.floor(value);
  }
  const text = value.trim();
  const re = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (!text || consumed !== text.length) {
    throw new HopperError('E_DURATION', `not a duration: "${value}" (write it like 30s, 10m, 24h or 7d)`);
  }
  return safe(Math.floor(total), value, 'E_DURATION');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** Node fires a timer longer than 2^31-1 ms (about 24.8 days) at once; longer waits are cut to that. */
export function timerMs(ms: number): number {
  return Math.min(Math.max(ms, 0), 2 ** 31 - 1);
}
