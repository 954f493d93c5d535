import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { zipBuffer } from '../../src/steps/zipbuffer.js';
import { readZip } from '../helpers/zip.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hopper-zipbuffer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `zip` to a file and reads it back with an independent reader (yauzl). */
async function readBack(zip: Buffer, name: string): Promise<Map<string, Buffer>> {
  const file = path.join(dir, name);
  writeFileSync(file, zip);
  return readZip(file);
}

describe('zipBuffer', () => {
  const mtime = new Date('2026-11-24T10:33:56Z');
  const entry = (name: string, text: string | Buffer) => ({ name, data: Buffer.from(text), mtime, mode: 0o100644 });

  it('builds a zip an independent reader reads back, in the order given, deflated or stored', async () => {
    const csv = 'id,value\n' + Array.from({ length: 500 }, (_, i) => `${i},${i * 7}`).join('\n');
    for (const level of [0, 1, 6, 9]) {
      const zip = zipBuffer([entry('data.csv', csv), entry('sub/b.txt', 'hello'), entry('empty', '')], level);
      const back = await readBack(zip, `l${level}.zip`);
      assert.deepEqual([...back.keys()], ['data.csv', 'sub/b.txt', 'empty']);
      assert.equal(back.get('data.csv')!.toString(), csv);
      assert.equal(back.get('sub/b.txt')!.toString(), 'hello');
      assert.equal(back.get('empty')!.length, 0);
      if (level === 0) assert.ok(zip.length > csv.length, 'stored, not compressed');
      else assert.ok(zip.length < csv.length * 0.8, `level ${level} compresses: ${zip.length} of ${csv.length}`);
    }
  });

  it('marks names as UTF-8 so readers show non-ASCII names as written', async () => {
    const back = await readBack(zipBuffer([entry('résumé/日本.txt', 'x')], 6), 'utf8.zip');
    assert.deepEqual([...back.keys()], ['résumé/日本.txt']);
  });

  it('keeps binary content byte for byte', async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));
    const back = await readBack(zipBuffer([{ name: 'b.bin', data: bytes, mtime, mode: 0o100600 }], 6), 'bin.zip');
    assert.ok(back.get('b.bin')!.equals(bytes));
  });
});
