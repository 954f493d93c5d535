import { closeSync, lstatSync, mkdirSync, openSync, realpathSync, rmSync, writevSync, type Stats } from 'node:fs';
import { Writable } from 'node:stream';
import path from 'node:path';
import { HopperError } from '../errors.js';
import { writeAll } from '../fs/write.js';

/**
 * Every path a step touches is relative to the job's work dir and stays in it:
 * no absolute paths, no `..`, no symlink that leads out.
 */
export function pathProblem(rel: string): string | null {
  if (rel.length === 0) return 'is empty';
  if (rel.includes('\u0000')) return 'contains a NUL byte';
  if (rel.length > 1024) return 'is longer than 1024 characters';
  if (path.isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel) || rel.startsWith('\\')) {
    return `must be relative to the job's work dir, not absolute ("${rel}")`;
  }
  if (rel.split(/[\\/]/).includes('..')) return `must not contain ".." (it would leave the job's work dir: "${rel}")`;
  return null;
}

// Path checks and creates here are synchronous. A look-up (lstat) is answered
// from the kernel's caches in a microsecond or two; a create (mkdir, open) takes
// ~10-20 µs on a journaled ext4. Sent through libuv's thread pool instead, each
// cost a round trip between threads several times that, and at hundreds of
// jobs a second those hand-overs were a tenth of the process's CPU.

function realOrNull(p: string): string | null {
  try {
    return realpathSync.native(p);
  } catch {
    return null;
  }
}

export function lstatOrNull(p: string): Stats | null {
  try {
    // A missing entry is the common answer here (a folder or file not made yet):
    // without throwIfNoEntry each one cost an Error with its stack, ~15 µs.
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The real path of the deepest part of `p` that exists (a symlink anywhere above resolves outside). */
function deepestReal(root: string, p: string): string | null {
  let probe = p;
  let real = realOrNull(probe);
  while (real === null && probe !== root && probe !== path.dirname(probe)) {
    probe = path.dirname(probe);
    real = realOrNull(probe);
  }
  return real;
}

function leadsOut(rel: string): HopperError {
  return new HopperError('E_PATH', `path "${rel}" leads out of the job's work dir (through a symlink)`);
}

/**
 * The folders from `root` down to `target`'s: 'plain' when each that exists is
 * a real folder (not a link) and `missing` is the first that does not; 'links'
 * when one is a link (or not a folder), or `root` is gone, which the slower
 * check by real paths judges.
 */
function foldersBetween(root: string, target: string): { kind: 'plain'; missing: string | null } | { kind: 'links' } {
  // The work dir itself first: a command may have moved it away and left a link in its place.
  if (!lstatOrNull(root)?.isDirectory()) return { kind: 'links' };
  const parts = path.relative(root, path.dirname(target));
  if (parts === '') return { kind: 'plain', missing: null };
  let dir = root;
  for (const part of parts.split(path.sep)) {
    dir = path.join(dir, part);
    const st = lstatOrNull(dir);
    if (st === null) return { kind: 'plain', missing: dir };
    if (!st.isDirectory()) return { kind: 'links' };
  }
  return { kind: 'plain', missing: null };
}

/**
 * The absolute path for `rel` inside `workDir` (a real path: runSteps takes
 * it once per attempt, so a work dir swapped for a link later is not followed),
 * after checking that no existing part of it is a symlink leading out. With
 * `forWrite`, parent folders are created (only after that check) and a symlink
 * at the target itself is refused.
 */
export async function resolveInside(workDir: string, rel: string, forWrite = false): Promise<string> {
  const problem = pathProblem(rel);
  if (problem) throw new HopperError('E_PATH', `path ${problem}`);
  const root = workDir;
  const target = path.resolve(root, rel);
  if (target === root) {
    if (forWrite) throw new HopperError('E_PATH', `path "${rel}" is the work dir itself; name a file in it`);
    return root;
  }
  const folders = foldersBetween(root, target);
  if (folders.kind === 'plain') {
    // The usual case: real folders all the way (checked one by one from the work dir down).
    if (folders.missing !== null) {
      // Nothing exists below the missing folder, so there is no link to follow.
      if (forWrite) mkdirSync(path.dirname(target), { recursive: true });
      return target;
    }
  } else {
    // A link among the folders: it may point anywhere, so judge where the path really leads.
    const parent = path.dirname(target);
    const before = deepestReal(root, forWrite ? parent : target);
    if (before === null || !inside(root, before)) throw leadsOut(rel);
    if (forWrite) {
      mkdirSync(parent, { recursive: true });
      const after = realOrNull(parent);
      if (after === null || !inside(root, after)) throw leadsOut(rel);
    }
  }
  const link = lstatOrNull(target);
  if (link?.isSymbolicLink()) {
    if (forWrite) throw new HopperError('E_PATH', `path "${rel}" is a symlink; hopper does not write through links`);
    // A dangling link is judged by where it points, not taken for a missing file.
    const real = realOrNull(target);
    if (real === null || !inside(root, real)) throw leadsOut(rel);
  }
  return target;
}

/** Runs a synchronous write for a stream callback: `done` with its error, if any. */
function settle(done: (err?: Error | null) => void, write: () => void): void {
  try {
    write();
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}

/** What FileWriter gathers before it writes. */
const GATHER_BYTES = 64 * 1024;

/**
 * A file written with synchronous calls on the thread that runs the step. A
 * write goes to the page cache in microseconds; fs.WriteStream sends each one
 * through libuv's thread pool, and on this 2-core machine each such hand-over
 * between threads cost tens of microseconds of CPU (measured: a small file
 * opened, written twice and closed took ~30 µs of CPU synchronously, 80-270
 * through the pool). A step thread runs nothing that must answer in the meantime.
 */
class FileWriter extends Writable {
  /** Small writes gathered (a zip's headers come a few bytes at a time), written together. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;

  constructor(private readonly fd: number) {
    super({ highWaterMark: GATHER_BYTES });
  }

  private gather(chunk: Buffer): void {
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.length;
    if (this.gatheredBytes >= GATHER_BYTES) this.writeGathered();
  }

  private writeGathered(): void {
    const buffers = this.gathered;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (buffers.length === 0) return;
    // One call for all; should the kernel take less, the rest goes one by one.
    let written = writevSync(this.fd, buffers);
    for (const b of buffers) {
      if (written >= b.length) written -= b.length;
      else {
        writeAll(this.fd, b.subarray(written));
        written = 0;
      }
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    settle(done, () => this.gather(chunk));
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    settle(done, () => {
      for (const c of chunks) this.gather(c.chunk);
    });
  }

  override _final(done: (err?: Error | null) => void): void {
    settle(done, () => this.writeGathered());
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed already */
    }
    done(err);
  }
}

/**
 * A write stream on a new file at `file` (a checked destination), created
 * exclusively, so no link is ever followed: whatever stands there already (a
 * file of an earlier step, a planted symlink) is removed first.
 */
export function createFresh(file: string): Writable {
  return new FileWriter(openFresh(file));
}

/** As createFresh, for content that is all at hand: written at once, and closed. */
export function writeFresh(file: string, data: Buffer): void {
  const fd = openFresh(file);
  try {
    writeAll(fd, data);
  } catch (err) {
    closeSync(fd);
    rmSync(file, { force: true });
    throw err;
  }
  closeSync(fd);
}

function openFresh(file: string): number {
  try {
    return openSync(file, 'wx', 0o666);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    rmSync(file, { force: true, recursive: true });
    return openSync(file, 'wx', 0o666);
  }
}
