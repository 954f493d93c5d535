import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { test } from 'node:test';
import { pump } from '../../src/fs/pump.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hopper-pump-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const upper = (): Transform =>
  new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, chunk.toString().toUpperCase());
    },
  });

test('pump() - a source through a transform into a file resolves once the file is closed, with every byte in it', async (t) => {
  const file = path.join(tempDir(t), 'out.txt');
  const sink = createWriteStream(file);
  await pump([Readable.from(['a', 'b', 'c'.repeat(100_000)]), upper(), sink]);
  assert.equal(sink.closed, true);
  assert.equal(readFileSync(file, 'utf8'), `AB${'C'.repeat(100_000)}`);
});

test('pump() - a hash as the sink (a Duplex never read) counts once everything is written', async () => {
  const hash = createHash('sha256');
  await pump([Readable.from([Buffer.from('abc'), Buffer.from('def')]), hash]);
  assert.equal(hash.digest('hex'), createHash('sha256').update('abcdef').digest('hex'));
});

test('pump() - an error of the source rejects with it and destroys every stream', async () => {
  const source = new Readable({ read() {} });
  const through = new PassThrough();
  const sink = new PassThrough();
  const done = pump([source, through, sink]);
  source.push('some');
  source.destroy(new Error('the server went away'));
  await assert.rejects(done, /the server went away/);
  assert.equal(through.destroyed, true);
  assert.equal(sink.destroyed, true);
});

test('pump() - an error of the sink rejects and destroys the source', async () => {
  const source = new Readable({ read() {} });
  const sink = new Writable({
    write(_chunk, _enc, done) {
      done(new Error('disk full'));
    },
  });
  const done = pump([source, sink]);
  source.push('x');
  await assert.rejects(done, /disk full/);
  assert.equal(source.destroyed, true);
});

test('pump() - a source closed before its end rejects as a premature close', async () => {
  const source = new Readable({ read() {} });
  const sink = new PassThrough();
  sink.resume();
  const done = pump([source, sink]);
  source.push('half');
  source.destroy();
  await assert.rejects(done, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
});

test('pump() - an abort rejects with the signal reason and destroys every stream', async () => {
  const source = new Readable({ read() {} });
  const sink = new PassThrough();
  const controller = new AbortController();
  const done = pump([source, sink], controller.signal);
  controller.abort(new Error('canceled by request'));
  await assert.rejects(done, /canceled by request/);
  assert.equal(source.destroyed, true);
  assert.equal(sink.destroyed, true);
});

test('pump() - a signal aborted before the call rejects at once and leaves nothing open', async () => {
  const source = Readable.from(['never read']);
  const sink = new PassThrough();
  await assert.rejects(pump([source, sink], AbortSignal.abort(new Error('too late'))), /too late/);
  assert.equal(source.destroyed, true);
  assert.equal(sink.destroyed, true);
});

test('pump() - an abort after success changes nothing', async () => {
  const controller = new AbortController();
  const sink = new PassThrough();
  sink.resume();
  await pump([Readable.from(['ok']), sink], controller.signal);
  controller.abort(new Error('later'));
  assert.equal(sink.destroyed, true); // closed by its own end (autoDestroy), not by the abort
});
