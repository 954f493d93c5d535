import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Step } from '../../src/recipes/recipe.js';
import type { StepEnv } from '../../src/steps/step.js';
import { cleanupStepHarnesses, isCode, stepHarness, type StepHarness } from '../helpers/steps.js';
import { zipStep } from '../../src/steps/zip.js';
import yauzl from 'yauzl';
import { readZip } from '../helpers/zip.js';

type ZipStep = Extract<Step, { kind: 'zip' }>;

afterEach(cleanupStepHarnesses);

const harness = (scope: StepEnv['scope'] = { params: {} }): StepHarness => stepHarness({ scope });

const zipOf = (from: string, to: string, level = 6): ZipStep => ({ kind: 'zip', from, to, level });

const names = (m: Map<string, Buffer>): string[] => [...m.keys()].sort();

interface EntryInfo {
  name: string;
  method: number;
  mode: number;
  modified: Date;
}

/** What an independent reader (yauzl) says of each entry: name, compression method, Unix mode, time. */
function entryInfo(file: string): Promise<EntryInfo[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const out: EntryInfo[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        out.push({ name: e.fileName, method: e.compressionMethod, mode: (e.externalFileAttributes >>> 16) & 0o7777, modified: e.getLastModDate() });
        zip.readEntry();
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}
const text = (m: Map<string, Buffer>, name: string): string | undefined => m.get(name)?.toString('utf8');

describe('zipStep', () => {
  it('zips a folder with nested paths kept relative to it, and reports the zip it wrote', async () => {
    const h = harness();
    const blob = randomBytes(200_000);
    h.put('out/a.txt', 'alpha');
    h.put('out/sub/b.txt', 'beta');
    h.put('out/sub/deeper/c.bin', blob);
    h.put('out/.hidden', 'dot files count too');
    h.put('elsewhere.txt', 'not in out');
    const result = await zipStep(zipOf('out', 'result.zip'), h.env);
    assert.deepEqual(result, { zips: ['result.zip'] });
    const z = await readZip(path.join(h.workDir, 'result.zip'));
    assert.deepEqual(names(z), ['.hidden', 'a.txt', 'sub/b.txt', 'sub/deeper/c.bin']);
    assert.equal(text(z, 'a.txt'), 'alpha');
    assert.equal(text(z, 'sub/b.txt'), 'beta');
    assert.ok(z.get('sub/deeper/c.bin')!.equals(blob));
    assert.equal(existsSync(path.join(h.workDir, 'result.zip.part')), false);
    assert.match(await h.logText(), /zip: 4 file\(s\) into result\.zip/);
  });

  it('fills placeholders in from and to, and creates the folder of `to`', async () => {
    const h = harness({ params: { dir: 'out' }, job: { id: 'job-1' } });
    h.put('out/a.txt', 'a');
    const result = await zipStep(zipOf('{{params.dir}}', 'dist/{{job.id}}.zip'), h.env);
    assert.deepEqual(result, { zips: ['dist/job-1.zip'] });
    assert.deepEqual(names(await readZip(path.join(h.workDir, 'dist/job-1.zip'))), ['a.txt']);
  });

  it('zips the files a glob matches, named by their path in the work dir', async () => {
    const h = harness();
    h.put('a.csv', 'a');
    h.put('b.csv', 'b');
    h.put('c.txt', 'c');
    h.put('sub/d.csv', 'd');
    await zipStep(zipOf('*.csv', 'top.zip'), h.env);
    assert.deepEqual(names(await readZip(path.join(h.workDir, 'top.zip'))), ['a.csv', 'b.csv']);
    await zipStep(zipOf('**/*.csv', 'all.zip'), h.env);
    const all = await readZip(path.join(h.workDir, 'all.zip'));
    assert.deepEqual(names(all), ['a.csv', 'b.csv', 'sub/d.csv']);
    assert.equal(text(all, 'sub/d.csv'), 'd');
  });

  it('zips a single file under its base name', async () => {
    const h = harness();
    h.put('data/report 2024.csv', 'x,y\n1,2\n');
    await zipStep(zipOf('data/report 2024.csv', 'one.zip'), h.env);
    const z = await readZip(path.join(h.workDir, 'one.zip'));
    assert.deepEqual(names(z), ['report 2024.csv']);
    assert.equal(text(z, 'report 2024.csv'), 'x,y\n1,2\n');
  });

  it('fails with E_ZIP_EMPTY on an empty folder and writes no zip', async () => {
    const h = harness();
    mkdirSync(path.join(h.workDir, 'out/only/empty/dirs'), { recursive: true });
    await assert.rejects(zipStep(zipOf('out', 'x.zip'), h.env), isCode('E_ZIP_EMPTY', /out/));
    assert.equal(existsSync(path.join(h.workDir, 'x.zip')), false);
    assert.equal(existsSync(path.join(h.workDir, 'x.zip.part')), false);
  });

  it('fails with E_ZIP_EMPTY on a glob that matches nothing', async () => {
    const h = harness();
    h.put('a.txt', 'a');
    await assert.rejects(zipStep(zipOf('*.csv', 'x.zip'), h.env), isCode('E_ZIP_EMPTY'));
    assert.equal(existsSync(path.join(h.workDir, 'x.zip')), false);
  });

  it('fails with E_ZIP_SOURCE when the source does not exist', async () => {
    const h = harness();
    await assert.rejects(zipStep(zipOf('missing', 'x.zip'), h.env), isCode('E_ZIP_SOURCE', /missing/));
    assert.equal(existsSync(path.join(h.workDir, 'x.zip')), false);
  });

  it('refuses a from or to that leaves the work dir', async () => {
    const h = harness();
    writeFileSync(path.join(h.root, 'outside.txt'), 'outside');
    await assert.rejects(zipStep(zipOf('../outside.txt', 'x.zip'), h.env), isCode('E_PATH'));
    h.put('a.txt', 'a');
    await assert.rejects(zipStep(zipOf('a.txt', '../x.zip'), h.env), isCode('E_PATH'));
    await assert.rejects(zipStep(zipOf('a.txt', path.join(h.root, 'abs.zip')), h.env), isCode('E_PATH'));
    // Nothing was written beside the work dir (job.log may not be open yet: the checks are synchronous).
    assert.deepEqual(readdirSync(h.root).filter((n) => n !== 'job.log').sort(), ['outside.txt', 'work']);
  });

  describe('symlinks', () => {
    function withLinks(h: StepHarness): void {
      mkdirSync(path.join(h.root, 'secret-dir'));
      writeFileSync(path.join(h.root, 'secret-dir', 'loot.txt'), 'OUTSIDE-SECRET');
      writeFileSync(path.join(h.root, 'secret.txt'), 'OUTSIDE-SECRET');
      h.put('out/real.txt', 'real');
      symlinkSync(path.join(h.root, 'secret.txt'), path.join(h.workDir, 'out/file-link.txt'));
      symlinkSync(path.join(h.root, 'secret-dir'), path.join(h.workDir, 'out/dir-link'));
      symlinkSync('real.txt', path.join(h.workDir, 'out/inside-link.txt'));
      symlinkSync('/', path.join(h.workDir, 'out/root-link'));
    }

    it('skips symlinks inside a zipped folder instead of following them', async () => {
      const h = harness();
      withLinks(h);
      await zipStep(zipOf('out', 'x.zip'), h.env);
      const z = await readZip(path.join(h.workDir, 'x.zip'));
      assert.deepEqual(names(z), ['real.txt']);
      for (const [name, data] of z) assert.ok(!data.toString('latin1').includes('OUTSIDE-SECRET'), name);
    });

    it('fails with E_ZIP_EMPTY on a folder holding only symlinks', async () => {
      const h = harness();
      writeFileSync(path.join(h.root, 'secret.txt'), 'OUTSIDE-SECRET');
      mkdirSync(path.join(h.workDir, 'out'));
      symlinkSync(path.join(h.root, 'secret.txt'), path.join(h.workDir, 'out/link.txt'));
      await assert.rejects(zipStep(zipOf('out', 'x.zip'), h.env), isCode('E_ZIP_EMPTY'));
    });

    it('never zips what a symlink matched by a glob points to', async () => {
      const h = harness();
      withLinks(h);
      try {
        await zipStep(zipOf('out/**', 'x.zip'), h.env);
      } catch (err) {
        // Refusing a link that leads out is as good as skipping it.
        isCode('E_PATH')(err);
        return;
      }
      const z = await readZip(path.join(h.workDir, 'x.zip'));
      for (const [name, data] of z) assert.ok(!data.toString('latin1').includes('OUTSIDE-SECRET'), name);
      assert.ok(names(z).includes('out/real.txt'));
    });

    it('refuses a source folder reached through a symlink out of the work dir', async () => {
      const h = harness();
      withLinks(h);
      await assert.rejects(zipStep(zipOf('out/dir-link', 'x.zip'), h.env), isCode('E_PATH'));
    });
  });

  it('never writes through a symlink planted at its destination', async () => {
    const h = harness();
    h.put('in/a.txt', 'data');
    const victim = path.join(h.root, 'victim.txt');
    writeFileSync(victim, 'precious');
    symlinkSync(victim, path.join(h.workDir, 'out.zip'));
    await assert.rejects(zipStep(zipOf('in', 'out.zip', 0), h.env), isCode('E_PATH'));
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
  });

  describe('never includes itself', () => {
    it('when zipping the whole work dir into it, even when the zip already exists', async () => {
      const h = harness();
      h.put('a.txt', 'a');
      h.put('sub/b.txt', 'b');
      await zipStep(zipOf('.', 'all.zip'), h.env);
      assert.deepEqual(names(await readZip(path.join(h.workDir, 'all.zip'))), ['a.txt', 'sub/b.txt']);
      await zipStep(zipOf('.', 'all.zip'), h.env); // all.zip is now in the folder
      assert.deepEqual(names(await readZip(path.join(h.workDir, 'all.zip'))), ['a.txt', 'sub/b.txt']);
    });

    it('when the zip is written into the zipped folder', async () => {
      const h = harness();
      h.put('out/a.txt', 'a');
      await zipStep(zipOf('out', 'out/packed.zip'), h.env);
      await zipStep(zipOf('out', 'out/packed.zip'), h.env);
      assert.deepEqual(names(await readZip(path.join(h.workDir, 'out/packed.zip'))), ['a.txt']);
    });

    it('when a glob matches the zip', async () => {
      const h = harness();
      h.put('a.txt', 'a');
      await zipStep(zipOf('*', 'star.zip'), h.env);
      await zipStep(zipOf('*', 'star.zip'), h.env);
      assert.deepEqual(names(await readZip(path.join(h.workDir, 'star.zip'))), ['a.txt']);
    });
  });

  it('level 0 stores the files uncompressed and they read back intact', async () => {
    const h = harness();
    const zeros = Buffer.alloc(200_000);
    h.put('out/zeros.bin', zeros);
    h.put('out/t.txt', 'text');
    await zipStep(zipOf('out', 'stored.zip', 0), h.env);
    await zipStep(zipOf('out', 'deflated.zip', 9), h.env);
    const stored = await readZip(path.join(h.workDir, 'stored.zip'));
    assert.ok(stored.get('zeros.bin')!.equals(zeros));
    assert.equal(text(stored, 't.txt'), 'text');
    assert.ok(statSync(path.join(h.workDir, 'stored.zip')).size > zeros.length, 'level 0 does not compress');
    assert.ok(statSync(path.join(h.workDir, 'deflated.zip')).size < 10_000, 'level 9 does compress');
    assert.ok((await readZip(path.join(h.workDir, 'deflated.zip'))).get('zeros.bin')!.equals(zeros));
  });

  it('small inputs (zipped in memory): nested and non-ASCII names, contents, permission bits and times read back', async () => {
    const h = harness();
    h.put('out/données/été.csv', 'a,b\n1,2\n');
    h.put('out/run.sh', '#!/bin/sh\necho hi\n');
    chmodSync(path.join(h.workDir, 'out/run.sh'), 0o750);
    const when = new Date('2026-03-04T05:06:08Z');
    utimesSync(path.join(h.workDir, 'out/run.sh'), when, when);
    await zipStep(zipOf('out', 'small.zip'), h.env);
    await zipStep(zipOf('out', 'small-stored.zip', 0), h.env);
    const zip = await readZip(path.join(h.workDir, 'small.zip'));
    assert.deepEqual(names(zip), ['données/été.csv', 'run.sh']);
    assert.equal(text(zip, 'données/été.csv'), 'a,b\n1,2\n');
    const info = await entryInfo(path.join(h.workDir, 'small.zip'));
    const run = info.find((e) => e.name === 'run.sh')!;
    assert.equal(run.method, 8, 'deflated');
    assert.equal(run.mode, 0o750);
    assert.ok(Math.abs(run.modified.getTime() - when.getTime()) <= 2000, `time kept (zip times have 2 s steps): ${run.modified.toISOString()}`);
    assert.deepEqual((await entryInfo(path.join(h.workDir, 'small-stored.zip'))).map((e) => e.method), [0, 0], 'level 0 stores');
    assert.equal(text(await readZip(path.join(h.workDir, 'small-stored.zip')), 'run.sh'), '#!/bin/sh\necho hi\n');
  });

  it('one input of 1 MiB or more streams the whole zip (archiver), and it reads back intact', async () => {
    const h = harness();
    const big = randomBytes(1024 * 1024);
    h.put('out/big.bin', big);
    h.put('out/small.txt', 'small');
    await zipStep(zipOf('out', 'mixed.zip'), h.env);
    const zip = await readZip(path.join(h.workDir, 'mixed.zip'));
    assert.ok(zip.get('big.bin')!.equals(big));
    assert.equal(text(zip, 'small.txt'), 'small');
  });

  it("a job aborted before a small zip starts gets the signal's reason, and no zip", async () => {
    const h = harness();
    h.put('out/a.txt', 'a');
    const reason = new Error('canceled');
    h.abort.abort(reason);
    await assert.rejects(zipStep(zipOf('out', 'x.zip'), h.env), (err) => err === reason);
    assert.equal(existsSync(path.join(h.workDir, 'x.zip')), false);
  });

  for (const when of ['before it starts', 'mid-zip'] as const) {
    it(
      `rethrows the job signal's reason when the job is aborted ${when}, leaving no zip`,
      async () => {
        const h = harness();
        for (let i = 0; i < 10; i++) h.put(`out/f${i}.bin`, randomBytes(2_000_000));
        const reason = new Error('canceled');
        if (when === 'before it starts') h.abort.abort(reason);
        const step = zipStep(zipOf('out', 'x.zip'), h.env);
        if (when === 'mid-zip') setTimeout(() => h.abort.abort(reason), 5);
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('the zip step did not settle within 3 s of the abort')), 3000);
        });
        try {
          await assert.rejects(Promise.race([step, hung]), (err) => err === reason);
        } finally {
          clearTimeout(timer);
        }
        assert.equal(existsSync(path.join(h.workDir, 'x.zip')), false);
        assert.equal(existsSync(path.join(h.workDir, 'x.zip.part')), false);
      },
    );
  }
});
