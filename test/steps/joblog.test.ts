import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { JobLog } from '../../src/steps/joblog.js';

async function logged(secrets: string[], chunks: Array<string | Buffer>, limits?: ConstructorParameters<typeof JobLog>[2]): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-joblog-'));
  try {
    const log = new JobLog(path.join(dir, 'job.log'), secrets, limits);
    const sink = log.sink();
    for (const c of chunks) sink.write(c);
    await new Promise<void>((resolve) => sink.end(resolve));
    await log.close();
    return readFileSync(path.join(dir, 'job.log'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('JobLog', () => {
  const secret = 'hunter2-very-secret-token';

  it('a secret in a line longer than 64 KiB is masked, wherever the line is cut', async () => {
    // The command's output arrives in pieces; the secret is split between two of them,
    // after the line has grown past the length at which it is written out in parts.
    for (const before of [64 * 1024 - 5, 64 * 1024 + 3, 200_000]) {
      const text = await logged([secret], [`${'a'.repeat(before)}${secret.slice(0, 7)}`, `${secret.slice(7)}${'b'.repeat(100_000)}`, '\nend\n']);
      assert.ok(!text.includes(secret), `secret shown with ${before} bytes before it`);
      assert.ok(!text.includes('hunter2'), `part of the secret shown with ${before} bytes before it`);
      assert.match(text, /\*\*\*/);
      assert.equal(text.replace(/\n/g, '').length, before + '***'.length + 100_000 + 'end'.length, 'nothing else lost');
    }
  });

  it('a secret split across chunks, and across a character cut in two, is masked', async () => {
    const line = `x${'é'.repeat(40_000)}${secret}${'é'.repeat(40_000)}\n`;
    const bytes = Buffer.from(line);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 4093) chunks.push(bytes.subarray(i, i + 4093));
    const text = await logged([secret], chunks);
    assert.ok(!text.includes(secret));
    assert.ok(!text.includes('\ufffd'), 'no character was broken');
  });

  it('a flood of short lines keeps the head and the tail exactly, counts what it skipped, and takes linear time', async () => {
    // 500,000 lines: the tail used to drop its oldest line with Array#shift, 24 s for a 12 MB flood.
    const lines = Array.from({ length: 500_000 }, (_, i) => `line ${String(i).padStart(6, '0')}\n`);
    const chunks: string[] = [];
    for (let i = 0; i < lines.length; i += 1000) chunks.push(lines.slice(i, i + 1000).join(''));
    const t0 = performance.now();
    const text = await logged([], chunks, { headBytes: 1024 * 1024, tailBytes: 1024 * 1024 });
    const ms = performance.now() - t0;
    const [head, rest] = text.split(/\[\.\.\. (\d+) bytes of output skipped[^\n]*\n/).filter((_, i) => i !== 1);
    const skipped = Number(/\[\.\.\. (\d+) bytes of output skipped/.exec(text)![1]);
    const perLine = lines[0].length;
    assert.equal(head, lines.slice(0, (1024 * 1024) / perLine).join(''), 'the head is the first MiB, whole lines');
    assert.ok(rest.endsWith('line 499999\n'), 'the tail ends with the last line');
    assert.equal(rest, lines.slice(lines.length - rest.length / perLine).join(''), 'the tail is the last lines, in order, none missing');
    assert.equal(head.length + skipped + rest.length, lines.length * perLine, 'head + skipped + tail is all of it');
    assert.ok(ms < 10_000, `took ${ms.toFixed(0)} ms (quadratic: minutes)`);
  });
});
