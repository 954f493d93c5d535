import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** A line longer than this is cut (with "…"): a log tail is for reading, not for copying megabytes. */
export const MAX_LINE_CHARS = 2000;

/**
 * The last `lines` non-empty lines of a file, reading at most `maxBytes` from
 * its end (a job.log can be large). A missing file, or anything that is not a
 * regular file (a symlink is not followed), has no lines. The first line read
 * is dropped when the read began inside it, so no line is shown cut at the
 * start (nor a UTF-8 character split), unless it is the only one: then its end
 * is shown after "…". `mask` is applied to each whole line before a long one is
 * cut, so a secret across the cut is still masked.
 */
export function tailLines(file: string, lines: number, maxBytes = 256 * 1024, mask: (line: string) => string = (l) => l): string[] {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size === 0) return [];
    const bytes = Math.min(stat.size, maxBytes);
    const buf = Buffer.alloc(bytes);
    const read = readSync(fd, buf, 0, bytes, stat.size - bytes);
    let text = buf.subarray(0, read).toString('utf8');
    let cutAtStart = false;
    if (bytes < stat.size) {
      const firstEnd = text.indexOf('\n');
      // A line that starts before the window and has other lines after it is dropped; alone, its end is kept.
      if (firstEnd >= 0 && text.slice(firstEnd + 1).trim() !== '') text = text.slice(firstEnd + 1);
      else cutAtStart = true;
    }
    const found = text
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => mask(l));
    if (cutAtStart && found.length > 0) found[0] = `…${found[0].slice(-MAX_LINE_CHARS)}`;
    return found.map((l) => (l.length > MAX_LINE_CHARS + 1 ? `${l.slice(0, MAX_LINE_CHARS)}…` : l));
  } finally {
    closeSync(fd);
  }
}
