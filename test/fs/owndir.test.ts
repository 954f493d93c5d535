import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { holdOwnFolder, inOwnFolder } from '../../src/fs/owndir.js';
import { writeFileAtomic } from '../../src/fs/write.js';

describe('holdOwnFolder', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-owndir-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('makes a missing folder with the mode asked for, whatever the umask', async () => {
    const old = process.umask(0o022);
    try {
      await inOwnFolder(path.join(dir, 'made'), 0o700, async () => {});
      assert.equal(statSync(path.join(dir, 'made')).mode & 0o777, 0o700);
    } finally {
      process.umask(old);
    }
  });

  it('refuses a symlink, even to a real folder of its own', async () => {
    mkdirSync(path.join(dir, 'real'));
    symlinkSync('real', path.join(dir, 'link'));
    await assert.rejects(holdOwnFolder(path.join(dir, 'link'), 0o700), { code: 'E_UNSAFE_FOLDER', message: /is a symbolic link/ });
  });

  it('refuses a file where a folder should be', async () => {
    writeFileSync(path.join(dir, 'file'), 'x');
    await assert.rejects(holdOwnFolder(path.join(dir, 'file'), 0o700), { code: 'E_UNSAFE_FOLDER', message: /is not a folder/ });
  });

  it('a folder swapped for a symlink after the check is not written through', async () => {
    const held = path.join(dir, 'held');
    const victim = path.join(dir, 'victim');
    mkdirSync(victim);
    const folder = await holdOwnFolder(held, 0o700);
    try {
      renameSync(held, path.join(dir, 'held-moved'));
      symlinkSync(victim, held);
      writeFileSync(path.join(dir, 'payload'), 'p');
      await rename(path.join(dir, 'payload'), folder.at('payload'));
      await writeFileAtomic(folder.at('note.txt'), 'n');
      assert.deepEqual(readdirSync(victim), []);
      assert.deepEqual(readdirSync(path.join(dir, 'held-moved')).sort(), ['note.txt', 'payload']);
    } finally {
      await folder.close();
    }
  });

  it('names inside a held folder are plain names', async () => {
    await inOwnFolder(path.join(dir, 'plain'), 0o700, async (folder) => {
      for (const bad of ['../x', 'a/b', '..', '.', '']) assert.throws(() => folder.at(bad), { code: 'E_PATH' });
    });
  });
});

describe('writeFileAtomic', () => {
  it('writes through no symlink planted where a temporary name could be guessed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-write-'));
    try {
      const victim = path.join(dir, 'victim.txt');
      writeFileSync(victim, 'keep');
      // The names the old code used, and a few more of that shape.
      for (const pid of [process.pid, process.pid + 1]) symlinkSync(victim, path.join(dir, `.req.yaml.${pid}.tmp`));
      await writeFileAtomic(path.join(dir, 'req.yaml'), 'kind: request\n', 0o640);
      assert.equal(readFileSync(victim, 'utf8'), 'keep');
      assert.equal(readFileSync(path.join(dir, 'req.yaml'), 'utf8'), 'kind: request\n');
      assert.equal(statSync(path.join(dir, 'req.yaml')).mode & 0o777, 0o640);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
