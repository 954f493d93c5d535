import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOG = path.join(repoRoot, 'src', 'log.ts');

/** A child that logs `lines` through the daemon's logger (stdout a pipe), then does `then`. */
function script(lines: number, then: string): string {
  return `import { createLogger } from ${JSON.stringify(LOG)};
    const log = createLogger();
    for (let i = 0; i < ${lines}; i++) log.info({ i }, 'line');
    ${then}`;
}

const parse = (out: string): Array<{ i: number; msg: string }> =>
  out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { i: number; msg: string });

describe('log: lines gathered and written together', () => {
  it('a line reaches the reader within a few milliseconds while the process goes on', { timeout: 20_000 }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(3, 'setTimeout(() => {}, 10_000);')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const got = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no log lines within 5 s of start; got: ${out}`)), 5_000);
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.split('\n').length > 3) {
            clearTimeout(timer);
            resolve(out);
          }
        });
      });
      assert.deepEqual(parse(got).map((l) => l.i), [0, 1, 2]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('lines logged just before process.exit() are all written', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(2000, 'process.exit(3);')], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 3, r.stderr);
    const lines = parse(r.stdout);
    assert.equal(lines.length, 2000);
    assert.deepEqual(lines.at(-1), { ...lines.at(-1), i: 1999, msg: 'line' });
  });

  it('lines logged before an uncaught exception are all written', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(5, "throw new Error('boom');")], { cwd: repoRoot, encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.deepEqual(parse(r.stdout).map((l) => l.i), [0, 1, 2, 3, 4]);
  });
});
