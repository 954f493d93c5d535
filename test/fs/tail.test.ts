import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_LINE_CHARS, tailLines } from '../../src/fs/tail.js';

describe('tailLines', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hopper-tail-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('gives the last non-empty lines, without carriage returns', () => {
    const f = file('a.log', 'one\r\ntwo\n\n  \nthree\nfour\n');
    assert.deepEqual(tailLines(f, 2), ['three', 'four']);
    assert.deepEqual(tailLines(f, 10), ['one', 'two', 'three', 'four']);
  });

  it('has no lines for a missing file, an empty one, a folder, a symlink (not followed) or a FIFO (not waited on)', () => {
    const target = file('target.log', 'secret line\n');
    symlinkSync(target, path.join(dir, 'link.log'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.log')]);
    for (const name of ['missing.log', 'link.log', 'fifo.log']) assert.deepEqual(tailLines(path.join(dir, name), 5), [], name);
    assert.deepEqual(tailLines(file('empty.log', ''), 5), []);
    assert.deepEqual(tailLines(dir, 5), []);
  });

  it('reads at most maxBytes from the end, and drops the line the read began inside', () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}`);
    const f = file('big.log', `${lines.join('\n')}\n`);
    const got = tailLines(f, 1000, 100);
    assert.ok(got.length < 20 && got.length > 5, String(got.length));
    assert.deepEqual(got, lines.slice(-got.length), 'whole lines only, the last ones');
  });

  it('cuts a long line with "…", and shows the end of a last line that begins before the window', () => {
    const long = 'a'.repeat(MAX_LINE_CHARS + 500);
    assert.deepEqual(tailLines(file('long.log', `${long}\n`), 1), [`${'a'.repeat(MAX_LINE_CHARS)}…`]);
    const huge = `start${'b'.repeat(50_000)}end`;
    const [only] = tailLines(file('huge.log', `${huge}\n`), 3, 10_000);
    assert.ok(only.startsWith('…') && only.endsWith('bend') && only.length === MAX_LINE_CHARS + 1, only.slice(0, 20));
  });

  it('masks each whole line before a long one is cut: a secret across the cut is still masked', () => {
    const secret = 'sk-TAIL-SECRET-0042';
    const f = file('masked.log', `${'x'.repeat(MAX_LINE_CHARS - 5)}${secret}\n`);
    const [line] = tailLines(f, 1, undefined, (l) => l.replaceAll(secret, '***'));
    assert.equal(line, `${'x'.repeat(MAX_LINE_CHARS - 5)}***`);
    const [unmasked] = tailLines(f, 1);
    assert.ok(unmasked.includes(secret.slice(0, 5)) && !unmasked.includes(secret), 'without the mask the cut shows part of it');
  });
});
