import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { HopperError } from '../../src/errors.js';
import { once } from 'node:events';
import { createFresh, pathProblem, resolveInside } from '../../src/steps/workdir.js';

async function refused(promise: Promise<unknown>, includes?: RegExp): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HopperError, `expected a HopperError, got ${String(err)}`);
    assert.equal(err.code, 'E_PATH');
    if (includes) assert.match(err.message, includes);
    return err.message;
  }
  assert.fail('expected the path to be refused, but it was accepted');
}

describe('pathProblem', () => {
  it('pathProblem - accepts plain relative paths, subfolders and dotted names', () => {
    for (const ok of ['data.csv', 'out/data.csv', 'a/b/c/d.zip', './data.csv', '.hidden', '...', 'a..b', '..foo', 'foo..', 'dir/', 'a//b', 'ünïcødé/файл.txt', 'name with spaces.csv']) {
      assert.equal(pathProblem(ok), null, ok);
    }
  });

  it('pathProblem - refuses an empty path', () => {
    assert.equal(pathProblem(''), 'is empty');
  });

  it('pathProblem - refuses a NUL byte', () => {
    assert.equal(pathProblem('a\u0000b'), 'contains a NUL byte');
  });

  it('pathProblem - refuses paths longer than 1024 characters and accepts exactly 1024', () => {
    assert.equal(pathProblem('a'.repeat(1024)), null);
    assert.equal(pathProblem('a'.repeat(1025)), 'is longer than 1024 characters');
    assert.equal(pathProblem('a'.repeat(1_000_000)), 'is longer than 1024 characters');
  });

  it('pathProblem - refuses absolute POSIX paths', () => {
    for (const abs of ['/etc/passwd', '/', '//server/share']) {
      assert.match(pathProblem(abs) ?? '', /must be relative to the job's work dir, not absolute/, abs);
    }
  });

  it('pathProblem - refuses Windows drive and UNC paths', () => {
    for (const abs of ['C:\\Windows\\x', 'c:/x', '\\\\server\\share', '\\x']) {
      assert.match(pathProblem(abs) ?? '', /not absolute/, abs);
    }
  });

  it('pathProblem - refuses ".." as any segment, with / or \\ separators', () => {
    for (const bad of ['..', '../x', 'a/../b', 'a/..', 'a/b/../../..', '..\\x', 'a\\..\\b', 'a/..\\b']) {
      const p = pathProblem(bad);
      assert.ok(p?.includes('must not contain ".."'), `${bad}: ${p}`);
    }
  });

  it('pathProblem - the message names the offending path', () => {
    assert.ok(pathProblem('../secret')?.includes('"../secret"'));
  });
});

describe('resolveInside', () => {
  let base: string;
  let work: string;
  let outside: string;

  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'hopper-workdir-')));
    work = path.join(base, 'work');
    outside = path.join(base, 'outside');
    mkdirSync(work);
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'secret.txt'), 'top secret');
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  it('resolveInside - gives the absolute path of an existing file', async () => {
    writeFileSync(path.join(work, 'data.csv'), 'x');
    assert.equal(await resolveInside(work, 'data.csv'), path.join(work, 'data.csv'));
  });

  it('resolveInside - accepts nested paths that exist', async () => {
    mkdirSync(path.join(work, 'a/b/c'), { recursive: true });
    writeFileSync(path.join(work, 'a/b/c/d.txt'), 'x');
    assert.equal(await resolveInside(work, 'a/b/c/d.txt'), path.join(work, 'a/b/c/d.txt'));
  });

  it('resolveInside - accepts a path that does not exist yet, for reading, without creating anything', async () => {
    assert.equal(await resolveInside(work, 'not/yet/there.txt'), path.join(work, 'not/yet/there.txt'));
    assert.equal(existsSync(path.join(work, 'not')), false);
  });

  it('resolveInside - creates the parent folders of a write target', async () => {
    const target = await resolveInside(work, 'x/y/z/out.csv', true);
    assert.equal(target, path.join(work, 'x/y/z/out.csv'));
    assert.ok(statSync(path.join(work, 'x/y/z')).isDirectory());
    assert.equal(existsSync(target), false);
  });

  it('resolveInside - normalizes "./" and "a/./b" inside the work dir', async () => {
    assert.equal(await resolveInside(work, './a/./b.txt', true), path.join(work, 'a/b.txt'));
  });

  it('resolveInside - a work dir swapped for a link after its real path was taken is not written through', async () => {
    // runSteps takes the work dir's real path once; a command that then moves the
    // work dir away and leaves a link to elsewhere in its place leads nowhere.
    mkdirSync(path.join(work, 'sub'));
    const moved = path.join(base, 'moved');
    renameSync(work, moved);
    symlinkSync(outside, work);
    mkdirSync(path.join(outside, 'sub'), { recursive: true });
    await refused(resolveInside(work, 'sub/f.txt', true), /leads out of the job's work dir/);
    await refused(resolveInside(work, 'sub'), /leads out of the job's work dir/);
    assert.equal(existsSync(path.join(outside, 'sub', 'f.txt')), false);
  });

  it('resolveInside - refuses ".." and absolute paths before touching the disk', async () => {
    await refused(resolveInside(work, '../outside/secret.txt'), /must not contain "\.\."/);
    await refused(resolveInside(work, path.join(outside, 'secret.txt')), /not absolute/);
    await refused(resolveInside(work, '../x/new.txt', true), /must not contain "\.\."/);
    assert.equal(existsSync(path.join(base, 'x')), false);
  });

  it('resolveInside - accepts a symlink that stays inside the work dir', async () => {
    mkdirSync(path.join(work, 'real'));
    writeFileSync(path.join(work, 'real/f.txt'), 'x');
    symlinkSync(path.join(work, 'real'), path.join(work, 'inner-link'));
    assert.equal(await resolveInside(work, 'inner-link/f.txt'), path.join(work, 'inner-link/f.txt'));
  });

  it('resolveInside - refuses reading a file that is a symlink leading out of the work dir', async () => {
    symlinkSync(path.join(outside, 'secret.txt'), path.join(work, 'leak.txt'));
    await refused(resolveInside(work, 'leak.txt'), /leads out of the job's work dir/);
  });

  it('resolveInside - refuses a path through a symlinked folder leading out', async () => {
    symlinkSync(outside, path.join(work, 'out-link'));
    await refused(resolveInside(work, 'out-link/secret.txt'), /leads out/);
    await refused(resolveInside(work, 'out-link/does/not/exist.txt'), /leads out/);
  });

  it('resolveInside - refuses a relative symlink that climbs out with ../', async () => {
    symlinkSync('../outside', path.join(work, 'climb'));
    await refused(resolveInside(work, 'climb/secret.txt'), /leads out/);
  });

  it('resolveInside - refuses a symlink to the filesystem root', async () => {
    symlinkSync('/', path.join(work, 'root'));
    await refused(resolveInside(work, 'root/etc/passwd'), /leads out/);
  });

  it('resolveInside - refuses a chain of symlinks that ends outside', async () => {
    symlinkSync(outside, path.join(work, 'hop2'));
    symlinkSync(path.join(work, 'hop2'), path.join(work, 'hop1'));
    await refused(resolveInside(work, 'hop1/secret.txt'), /leads out/);
  });

  it('resolveInside - refuses writing through a symlinked folder leading out, and writes nothing there', async () => {
    symlinkSync(outside, path.join(work, 'out-link'));
    await refused(resolveInside(work, 'out-link/new.txt', true), /leads out/);
    assert.equal(existsSync(path.join(outside, 'new.txt')), false);
  });

  it('resolveInside - refuses writing through a symlink at the target, even one pointing inside', async () => {
    writeFileSync(path.join(work, 'real.txt'), 'x');
    symlinkSync(path.join(work, 'real.txt'), path.join(work, 'inside-link.txt'));
    await refused(resolveInside(work, 'inside-link.txt', true), /is a symlink; hopper does not write through links/);
  });

  it('resolveInside - refuses writing through a symlink at the target that leads out', async () => {
    symlinkSync(path.join(outside, 'secret.txt'), path.join(work, 'data.csv'));
    await refused(resolveInside(work, 'data.csv', true), /symlink/);
    assert.equal(readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'top secret');
  });

  it('resolveInside - refuses writing through a dangling symlink at the target', async () => {
    symlinkSync(path.join(outside, 'will-be-created.txt'), path.join(work, 'dangling.txt'));
    await refused(resolveInside(work, 'dangling.txt', true), /symlink/);
  });

  it('resolveInside - refuses a symlink loop instead of hanging', async () => {
    symlinkSync(path.join(work, 'loop-b'), path.join(work, 'loop-a'));
    symlinkSync(path.join(work, 'loop-a'), path.join(work, 'loop-b'));
    // A loop cannot be resolved; whatever the answer, it must come back quickly and not point outside.
    const started = Date.now();
    try {
      const p = await resolveInside(work, 'loop-a/x.txt');
      assert.ok(p.startsWith(work + path.sep));
    } catch (err) {
      assert.ok(err instanceof Error);
    }
    assert.ok(Date.now() - started < 2000);
  });

  it('resolveInside - a missing work dir is an error', async () => {
    await assert.rejects(resolveInside(path.join(base, 'no-such-work'), 'a.txt'));
  });

  it(
    'resolveInside - refusing a write through a symlinked folder creates no folders outside the work dir',
    async () => {
      symlinkSync(outside, path.join(work, 'out-link'));
      await refused(resolveInside(work, 'out-link/newdir/deeper/f.txt', true), /leads out/);
      assert.equal(existsSync(path.join(outside, 'newdir')), false, 'a folder was created outside the work dir');
    },
  );

  it(
    'resolveInside - accepts a folder inside the work dir whose name starts with ".." (like "..data")',
    async () => {
      mkdirSync(path.join(work, '..data'));
      assert.equal(await resolveInside(work, '..data/x.csv', true), path.join(work, '..data/x.csv'));
      writeFileSync(path.join(work, '..data/x.csv'), 'x');
      assert.equal(await resolveInside(work, '..data/x.csv'), path.join(work, '..data/x.csv'));
    },
  );

  it(
    'resolveInside - refuses reading a dangling symlink that points out of the work dir',
    async () => {
      symlinkSync(path.join(outside, 'later.txt'), path.join(work, 'dangling.txt'));
      await refused(resolveInside(work, 'dangling.txt'), /leads out|symlink/);
    },
  );

  it('resolveInside - refuses to write to the work dir itself', async () => {
    await refused(resolveInside(work, '.', true), /the work dir itself/);
    await refused(resolveInside(work, 'a/..', true), /must not contain/);
  });

  it('resolveInside - a folder made by a write target is a real folder, and a later read through it is accepted', async () => {
    const target = await resolveInside(work, 'x/y/z.txt', true);
    assert.ok(statSync(path.join(work, 'x', 'y')).isDirectory());
    writeFileSync(target, 'z');
    assert.equal(await resolveInside(work, 'x/y/z.txt'), target);
  });
});

describe('createFresh', () => {
  let base: string;
  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'hopper-fresh-')));
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  async function write(file: string, text: string): Promise<void> {
    const out = createFresh(file);
    out.end(text);
    await once(out, 'close');
  }

  it('createFresh - replaces a symlink standing at the file, never writing through it', async () => {
    const victim = path.join(base, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path.join(base, 'f.txt'));
    await write(path.join(base, 'f.txt'), 'new');
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.equal(readFileSync(path.join(base, 'f.txt'), 'utf8'), 'new');
  });

  it('createFresh - replaces a file or a folder of an earlier step', async () => {
    writeFileSync(path.join(base, 'a.txt'), 'a much longer old content');
    await write(path.join(base, 'a.txt'), 'short');
    assert.equal(readFileSync(path.join(base, 'a.txt'), 'utf8'), 'short');
    mkdirSync(path.join(base, 'd', 'sub'), { recursive: true });
    await write(path.join(base, 'd'), 'now a file');
    assert.equal(readFileSync(path.join(base, 'd'), 'utf8'), 'now a file');
  });
});
