import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { OutboundPolicy } from './outbound.js';

// A command a recipe runs may handle URLs a requester named (link-check does).
// It must refuse the same addresses hopper's own steps refuse, decided by the
// same code, not a copy of the range list that drifts. So every run step gets
// the policy in its environment: the allow list as JSON, and the file URL of a
// plain JavaScript module exporting this OutboundPolicy, which a `node` child
// imports:
//
//   const { OutboundPolicy } = await import(process.env.HOPPER_OUTBOUND_MODULE);
//   const policy = new OutboundPolicy(JSON.parse(process.env.HOPPER_OUTBOUND_ALLOW));
//   http.request(url, { lookup: policy.lookup, agent: policy.agent(url) })  // after policy.checkLiteral(url)

/** JSON of hopper.yaml's `outbound.allow`, as the step's policy has it. */
export const ALLOW_VAR = 'HOPPER_OUTBOUND_ALLOW';
/** The file URL of a module exporting OutboundPolicy (and nonPublic, OutboundError). */
export const MODULE_VAR = 'HOPPER_OUTBOUND_MODULE';

/** Where a bundle of the TypeScript source goes, under the root's state/. */
const BUNDLE_NAME = 'outbound-policy.mjs';

/**
 * The file URL of this OutboundPolicy as plain JavaScript. Running from the
 * build (dist/), that is the very outbound.js the daemon loaded. Running its
 * TypeScript under tsx (tests, or an edit not yet built), the source is
 * bundled into `stateDir`/outbound-policy.mjs (rewritten when it differs).
 */
export async function outboundModuleUrl(stateDir: string): Promise<string> {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js')) return new URL('./outbound.js', import.meta.url).href;
  const source = path.join(path.dirname(self), 'outbound.ts');
  // Only here: a daemon running its build never loads the bundler.
  const { bundledSource } = await import('../bundle.js');
  const text = `// Built by hopper from ${path.basename(source)} for the commands its run steps start; rewritten as needed.\n${bundledSource(source)}`;
  const target = path.join(stateDir, BUNDLE_NAME);
  let current: string | undefined;
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== text) {
    mkdirSync(stateDir, { recursive: true });
    const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, target);
  }
  return pathToFileURL(target).href;
}

/**
 * The variables a command gets: the policy's allow list and the module that
 * applies it. When the module cannot be made, `problem` says why and the
 * module's variable is left out: a script that needs it refuses to run.
 */
export async function policyEnv(policy: OutboundPolicy, stateDir: string): Promise<{ vars: Record<string, string>; problem?: string }> {
  const vars: Record<string, string> = { [ALLOW_VAR]: JSON.stringify(policy.allow) };
  try {
    vars[MODULE_VAR] = await outboundModuleUrl(stateDir);
    return { vars };
  } catch (err) {
    return { vars, problem: (err as Error).message.split('\n')[0] };
  }
}
