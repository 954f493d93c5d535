import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { outboundModuleUrl } from '../../src/net/childPolicy.js';
import { OutboundPolicy } from '../../src/net/outbound.js';
import { tempRoot } from '../helpers/daemon.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Plain node (no tsx), bounded: runs an ESM snippet and returns what it printed. */
function plainNode(code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** What a child's OutboundPolicy from `moduleUrl` says about a few addresses. */
async function childAnswers(moduleUrl: string, allow: string[]): Promise<Record<string, string | null>> {
  return JSON.parse(
    await plainNode(`
      const { OutboundPolicy } = await import(${JSON.stringify(moduleUrl)});
      const p = new OutboundPolicy(${JSON.stringify(allow)});
      const out = {};
      for (const a of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '::ffff:7f00:1', '93.184.215.14']) out[a] = p.refusal(a, a) ?? null;
      console.log(JSON.stringify(out));`),
  ) as Record<string, string | null>;
}

function parentAnswers(allow: string[]): Record<string, string | null> {
  const p = new OutboundPolicy(allow);
  return Object.fromEntries(['127.0.0.1', '10.0.0.1', '169.254.169.254', '::ffff:7f00:1', '93.184.215.14'].map((a) => [a, p.refusal(a, a) ?? null]));
}

describe('the outbound policy for commands (HOPPER_OUTBOUND_MODULE)', () => {
  const cleanups: Array<() => void> = [];
  after(() => cleanups.forEach((c) => c()));

  it('running from the TypeScript source: a bundle in state/ that plain node imports, deciding as the daemon does; a changed copy is rewritten', { timeout: 30_000 }, async () => {
    const t = tempRoot();
    cleanups.push(t.cleanup);
    const state = path.join(t.root, 'state');
    const url = await outboundModuleUrl(state);
    assert.equal(url, pathToFileURL(path.join(state, 'outbound-policy.mjs')).href);
    for (const allow of [[], ['127.0.0.1', '10.0.0.0/8']]) assert.deepEqual(await childAnswers(url, allow), parentAnswers(allow));
    // A copy that was altered (or made by an older hopper) is replaced before the next command runs.
    writeFileSync(fileURLToPath(url), 'export class OutboundPolicy { refusal() {} }\n');
    assert.equal(await outboundModuleUrl(state), url);
    assert.match(readFileSync(fileURLToPath(url), 'utf8'), /a link-local address \(where clouds serve instance metadata\)/);
    assert.deepEqual(await childAnswers(url, []), parentAnswers([]));
  });

  it('running from the build (dist/): the very outbound.js the daemon loaded, nothing written', { timeout: 30_000 }, async () => {
    const t = tempRoot();
    cleanups.push(t.cleanup);
    const dist = path.join(t.root, 'dist');
    // As `npm run build` does, for the files involved.
    await build({ entryPoints: ['net/childPolicy.ts', 'net/outbound.ts', 'errors.ts'].map((f) => path.join(SRC, f)), outbase: SRC, outdir: dist, platform: 'node', format: 'esm', target: 'node24', logLevel: 'silent' });
    const state = path.join(t.root, 'state');
    const url = await plainNode(`const m = await import(${JSON.stringify(pathToFileURL(path.join(dist, 'net', 'childPolicy.js')).href)}); console.log(await m.outboundModuleUrl(${JSON.stringify(state)}));`);
    assert.equal(url, pathToFileURL(path.join(dist, 'net', 'outbound.js')).href);
    assert.deepEqual(await childAnswers(url, []), parentAnswers([]));
    assert.throws(() => readFileSync(path.join(state, 'outbound-policy.mjs')), /ENOENT/);
  });
});
