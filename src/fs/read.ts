import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { HopperError } from '../errors.js';

/**
 * The text of `file` if it is a regular file, read through one handle opened
 * without following a symlink (a link planted in its place is refused, not
 * read through). ENOENT passes through as it is, for callers that expect it.
 */
export function readRegularFileSync(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new HopperError('E_NOT_REGULAR', 'is a symbolic link; hopper reads only regular files here');
    throw err;
  }
  try {
    if (!fstatSync(fd).isFile()) throw new HopperError('E_NOT_REGULAR', 'is not a regular file');
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
