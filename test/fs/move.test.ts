import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { moveFile } from '../../src/fs/move.js';

describe('moveFile', () => {
  it('moves a file within one file system', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-move-'));
    try {
      writeFileSync(path.join(dir, 'a'), 'content');
      await moveFile(path.join(dir, 'a'), path.join(dir, 'b'));
      assert.equal(readFileSync(path.join(dir, 'b'), 'utf8'), 'content');
      assert.ok(!existsSync(path.join(dir, 'a')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const shm = '/dev/shm';
  const crossDevice = existsSync(shm) && statSync(shm).dev !== statSync(os.tmpdir()).dev;
  it('moves a file across file systems (copy, then remove)', { skip: crossDevice ? false : `${shm} and ${os.tmpdir()} are one file system here` }, async () => {
    const from = mkdtempSync(path.join(shm, 'hopper-move-'));
    const to = mkdtempSync(path.join(os.tmpdir(), 'hopper-move-'));
    try {
      writeFileSync(path.join(from, 'a'), 'across');
      await moveFile(path.join(from, 'a'), path.join(to, 'b'));
      assert.equal(readFileSync(path.join(to, 'b'), 'utf8'), 'across');
      assert.ok(!existsSync(path.join(from, 'a')));
      assert.ok(!existsSync(path.join(to, 'b.part')));
    } finally {
      rmSync(from, { recursive: true, force: true });
      rmSync(to, { recursive: true, force: true });
    }
  });
});
