import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HopperError } from '../src/errors.js';
import { createAjv } from '../src/schemas/ajv.js';
import { formatBytes, formatDuration, parseDuration, parseSize } from '../src/units.js';

function throwsCode(fn: () => unknown, code: string, includes?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HopperError, `expected a HopperError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (includes !== undefined) assert.ok(err.message.includes(includes), `"${err.message}" should include "${includes}"`);
    return true;
  });
}

describe('parseSize', () => {
  it('parseSize - reads plain byte counts as a string or a number', () => {
    assert.equal(parseSize('1000'), 1000);
    assert.equal(parseSize(1000), 1000);
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize(0), 0);
  });

  it('parseSize - reads binary units (KiB, MiB, GiB, TiB) as powers of 1024', () => {
    assert.equal(parseSize('64KiB'), 64 * 1024);
    assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
    assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
    assert.equal(parseSize('1TiB'), 1024 ** 4);
  });

  it('parseSize - reads decimal units (k, KB, MB, GB, TB) as powers of 1000', () => {
    assert.equal(parseSize('1k'), 1000);
    assert.equal(parseSize('1KB'), 1000);
    assert.equal(parseSize('3MB'), 3e6);
    assert.equal(parseSize('3M'), 3e6);
    assert.equal(parseSize('2GB'), 2e9);
    assert.equal(parseSize('1TB'), 1e12);
    assert.equal(parseSize('7b'), 7);
    assert.equal(parseSize('7B'), 7);
  });

  it('parseSize - ignores the case of the unit', () => {
    assert.equal(parseSize('1kib'), 1024);
    assert.equal(parseSize('1KIB'), 1024);
    assert.equal(parseSize('1mIb'), 1024 ** 2);
  });

  it('parseSize - allows spaces around the number and between number and unit', () => {
    assert.equal(parseSize('  512 MiB  '), 512 * 1024 ** 2);
    assert.equal(parseSize('\t1\tKiB\n'), 1024);
  });

  it('parseSize - rounds fractional sizes down to whole bytes', () => {
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('0.5b'), 0);
    assert.equal(parseSize(10.9), 10);
  });

  it('parseSize - rejects negative numbers and negative strings', () => {
    throwsCode(() => parseSize(-1), 'E_SIZE');
    throwsCode(() => parseSize('-1'), 'E_SIZE');
    throwsCode(() => parseSize('-5MiB'), 'E_SIZE');
  });

  it('parseSize - rejects NaN and the infinities', () => {
    throwsCode(() => parseSize(Number.NaN), 'E_SIZE');
    throwsCode(() => parseSize(Number.POSITIVE_INFINITY), 'E_SIZE');
    throwsCode(() => parseSize(Number.NEGATIVE_INFINITY), 'E_SIZE');
    throwsCode(() => parseSize('NaN'), 'E_SIZE');
    throwsCode(() => parseSize('Infinity'), 'E_SIZE');
  });

  it('parseSize - rejects exponent notation like 1e9', () => {
    throwsCode(() => parseSize('1e9'), 'E_SIZE');
    throwsCode(() => parseSize('1E3'), 'E_SIZE');
  });

  it('parseSize - rejects unknown units like 10 parsecs and 5PB', () => {
    throwsCode(() => parseSize('10 parsecs'), 'E_SIZE', '10 parsecs');
    throwsCode(() => parseSize('5PB'), 'E_SIZE');
    throwsCode(() => parseSize('5 bytes'), 'E_SIZE');
  });

  it('parseSize - rejects empty, blank and unit-only strings', () => {
    throwsCode(() => parseSize(''), 'E_SIZE');
    throwsCode(() => parseSize('   '), 'E_SIZE');
    throwsCode(() => parseSize('MiB'), 'E_SIZE');
  });

  it('parseSize - rejects non-ASCII digits (Arabic-Indic, full-width)', () => {
    throwsCode(() => parseSize('\u0661\u0662'), 'E_SIZE');
    throwsCode(() => parseSize('\uFF11\uFF10MiB'), 'E_SIZE');
  });

  it('parseSize - rejects trailing garbage and two numbers', () => {
    throwsCode(() => parseSize('10MiB!'), 'E_SIZE');
    throwsCode(() => parseSize('10 10'), 'E_SIZE');
    throwsCode(() => parseSize('1.2.3'), 'E_SIZE');
    throwsCode(() => parseSize('.5MiB'), 'E_SIZE');
    throwsCode(() => parseSize('5.MiB'), 'E_SIZE');
  });

  it('parseSize - the error message tells how to write a size', () => {
    throwsCode(() => parseSize('lots'), 'E_SIZE', '512MiB');
  });

  it('parseSize - a 100 kB string of digits and letters fails fast', () => {
    const started = Date.now();
    throwsCode(() => parseSize(`${'1'.repeat(50_000)}${'x'.repeat(50_000)}!`), 'E_SIZE');
    assert.ok(Date.now() - started < 1000);
  });

  it('parseSize - never returns a number that is not a finite safe integer', () => {
    throwsCode(() => parseSize('9'.repeat(400)), 'E_SIZE');
    throwsCode(() => parseSize('99999999999TiB'), 'E_SIZE');
    throwsCode(() => parseSize(2 ** 60), 'E_SIZE');
    throwsCode(() => parseSize(String(Number.MAX_SAFE_INTEGER + 1)), 'E_SIZE');
    assert.equal(parseSize(String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
    assert.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });

  it('parseSize - the too-large message does not echo a huge input in full', () => {
    assert.throws(() => parseSize('9'.repeat(10_000)), (err: Error) => err.message.length < 200);
  });

  it('parseSize - accepts every unit the size format admits, like 512Mi', () => {
    const valid = createAjv().compile({ type: 'string', format: 'size' });
    for (const text of ['512Mi', '1Ki', '2Gi', '1Ti']) {
      assert.ok(valid(text), `${text} passes the schema`);
      assert.doesNotThrow(() => parseSize(text), `${text} passes the schema, so it must parse`);
    }
  });
});

describe('parseDuration', () => {
  it('parseDuration - reads each unit', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 7 * 86_400_000);
    assert.equal(parseDuration('2w'), 14 * 86_400_000);
  });

  it('parseDuration - adds up compound durations like 1h30m and 1d 2h 3m 4s 5ms', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1d 2h 3m 4s 5ms'), 86_400_000 + 7_200_000 + 180_000 + 4000 + 5);
    assert.equal(parseDuration('1m1m'), 120_000);
  });

  it('parseDuration - reads a number as milliseconds', () => {
    assert.equal(parseDuration(1500), 1500);
    assert.equal(parseDuration(0), 0);
    assert.equal(parseDuration(1.9), 1);
  });

  it('parseDuration - reads fractional amounts and rounds down to whole milliseconds', () => {
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('0.5s'), 500);
    assert.equal(parseDuration('1.0005s'), 1000);
  });

  it('parseDuration - allows surrounding whitespace', () => {
    assert.equal(parseDuration('  30s  '), 30_000);
    assert.equal(parseDuration('10 m'), 600_000);
  });

  it('parseDuration - distinguishes ms from m', () => {
    assert.equal(parseDuration('5ms'), 5);
    assert.equal(parseDuration('5m'), 300_000);
  });

  it('parseDuration - rejects trailing garbage', () => {
    throwsCode(() => parseDuration('30s!'), 'E_DURATION');
    throwsCode(() => parseDuration('30sx'), 'E_DURATION');
    throwsCode(() => parseDuration('1h-30m'), 'E_DURATION');
  });

  it('parseDuration - rejects leading garbage', () => {
    throwsCode(() => parseDuration('x30s'), 'E_DURATION');
    throwsCode(() => parseDuration('-30s'), 'E_DURATION');
  });

  it('parseDuration - rejects a bare number string with no unit', () => {
    throwsCode(() => parseDuration('30'), 'E_DURATION');
  });

  it('parseDuration - rejects unknown units like 10 parsecs, 1y and 5 minutes', () => {
    throwsCode(() => parseDuration('10 parsecs'), 'E_DURATION', '10 parsecs');
    throwsCode(() => parseDuration('1y'), 'E_DURATION');
    throwsCode(() => parseDuration('5 minutes'), 'E_DURATION');
    throwsCode(() => parseDuration('5S'), 'E_DURATION');
  });

  it('parseDuration - rejects empty and blank strings', () => {
    throwsCode(() => parseDuration(''), 'E_DURATION');
    throwsCode(() => parseDuration('   '), 'E_DURATION');
  });

  it('parseDuration - rejects negative, NaN and infinite numbers', () => {
    throwsCode(() => parseDuration(-1), 'E_DURATION');
    throwsCode(() => parseDuration(Number.NaN), 'E_DURATION');
    throwsCode(() => parseDuration(Number.POSITIVE_INFINITY), 'E_DURATION');
  });

  it('parseDuration - rejects exponent notation like 1e9s', () => {
    throwsCode(() => parseDuration('1e9s'), 'E_DURATION');
    throwsCode(() => parseDuration('1e9'), 'E_DURATION');
  });

  it('parseDuration - rejects non-ASCII digits', () => {
    throwsCode(() => parseDuration('\u0663s'), 'E_DURATION');
    throwsCode(() => parseDuration('\uFF13\uFF10s'), 'E_DURATION');
  });

  it('parseDuration - the error message tells how to write a duration', () => {
    throwsCode(() => parseDuration('soon'), 'E_DURATION', '30s');
  });

  it('parseDuration - a 100 kB hostile string fails fast', () => {
    const started = Date.now();
    throwsCode(() => parseDuration(`${'1m'.repeat(50_000)}!`), 'E_DURATION');
    throwsCode(() => parseDuration(`${'1'.repeat(100_000)}`), 'E_DURATION');
    assert.ok(Date.now() - started < 2000);
  });

  it('parseDuration - the duration format and parseDuration agree on good and bad values', () => {
    const valid = createAjv().compile({ type: 'string', format: 'duration' });
    for (const good of ['30s', '1h30m', ' 7d ', '250ms', '1.5h', '1d 2h']) {
      assert.ok(valid(good), `${good} passes the format`);
      assert.doesNotThrow(() => parseDuration(good));
    }
    for (const bad of ['', '30', 'x', '10 parsecs', '1e9s', '-1s', '1y']) {
      assert.ok(!valid(bad), `${JSON.stringify(bad)} fails the format`);
      assert.throws(() => parseDuration(bad));
    }
  });

  it('parseDuration - never returns a number that is not a finite safe integer', () => {
    throwsCode(() => parseDuration(`${'9'.repeat(400)}s`), 'E_DURATION');
    throwsCode(() => parseDuration('99999999999999w'), 'E_DURATION');
    throwsCode(() => parseDuration(2 ** 60), 'E_DURATION');
    assert.equal(parseDuration(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });
});

describe('formatBytes', () => {
  it('formatBytes - shows small counts in bytes without decimals', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1), '1 B');
    assert.equal(formatBytes(1023), '1023 B');
  });

  it('formatBytes - switches units at each power of 1024 with one decimal', () => {
    assert.equal(formatBytes(1024), '1.0 KiB');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(1024 ** 2), '1.0 MiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(formatBytes(1024 ** 4), '1.0 TiB');
  });

  it('formatBytes - stays in TiB beyond the largest unit', () => {
    assert.equal(formatBytes(2048 * 1024 ** 4), '2048.0 TiB');
  });

  it('formatBytes - round-trips with parseSize for whole binary units', () => {
    for (const [text, shown] of [['1KiB', '1.0 KiB'], ['512MiB', '512.0 MiB'], ['2GiB', '2.0 GiB']]) {
      assert.equal(formatBytes(parseSize(text)), shown);
    }
  });
});

describe('formatDuration', () => {
  it('formatDuration - shows less than a second in milliseconds', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(999), '999ms');
  });

  it('formatDuration - composes days, hours, minutes and seconds and skips zero parts', () => {
    assert.equal(formatDuration(1000), '1s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000), '1h');
    assert.equal(formatDuration(3_601_000), '1h1s');
    assert.equal(formatDuration(86_400_000 + 7_200_000 + 180_000 + 4000), '1d2h3m4s');
  });

  it('formatDuration - rounds to the nearest second', () => {
    assert.equal(formatDuration(1499), '1s');
    assert.equal(formatDuration(1500), '2s');
    assert.equal(formatDuration(59_999), '1m');
  });

  it('formatDuration - round-trips with parseDuration', () => {
    for (const text of ['30s', '10m', '24h', '7d', '1h30m', '1d2h3m4s']) {
      assert.equal(formatDuration(parseDuration(text)), text === '24h' ? '1d' : text);
    }
  });
});
