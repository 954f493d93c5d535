import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../config/config.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { problemLines } from '../inbox/files.js';
import { requestFromFile } from '../inbox/request.js';
import { silentLogger } from '../log.js';
import type { Recipe } from '../recipes/recipe.js';
import { readRecipeText, RecipeRegistry } from '../recipes/registry.js';
import { parseYaml } from '../schemas/document.js';
import { assertNoProblems, fileKind, schemaProblems } from '../schemas/validate.js';
import { formatBytes } from '../units.js';
import { configFor, EXIT, globals, rootPaths } from './common.js';

type Verdict = { ok: true; what: string } | { ok: false; problems: Problem[] };

const MAX_BYTES = 16 * 1024 * 1024;

function checkFile(file: string, recipes: { get(n: string): Recipe | undefined; all(): Recipe[] }, isConfig: boolean): Verdict {
  try {
    const st = statSync(file);
    if (!st.isFile()) return { ok: false, problems: [{ path: '', message: 'is not a regular file' }] };
    if (st.size > MAX_BYTES) return { ok: false, problems: [{ path: '', message: `is ${formatBytes(st.size)}; too large for a hopper file` }] };
    const text = readFileSync(file, 'utf8');
    if (isConfig) {
      parseConfig(text, file);
      return { ok: true, what: 'config' };
    }
    const parsed = parseYaml(text);
    const kind = fileKind(parsed);
    if (kind === 'recipe') return { ok: true, what: `recipe ${readRecipeText(text).name}` };
    if (kind === 'cancel') {
      assertNoProblems(schemaProblems('cancel', parsed));
      return { ok: true, what: 'cancel' };
    }
    const { recipe, input } = requestFromFile(parsed, recipes, path.basename(file));
    return { ok: true, what: `request for ${recipe.name} (${input.lane} lane)` };
  } catch (err) {
    if (err instanceof InvalidFileError) return { ok: false, problems: err.problems };
    if (err instanceof ConfigError) return { ok: false, problems: [{ path: '', message: err.message.split('\n').map((l) => l.replace(`${file}`, '').replace(/^:\s*/, '')).join('; ') }] };
    return { ok: false, problems: [{ path: '', message: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message }] };
  }
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .argument('<file...>', 'request, cancel, recipe or config (hopper.yaml) files')
    .description('check files as the daemon would; prints FILE:LINE:COL: message; exit 1 if any is bad')
    .action((files: string[], _opts: unknown, cmd: Command) => {
      configFor(cmd);
      const registry = new RecipeRegistry(rootPaths(cmd).recipes, silentLogger());
      registry.loadAll();
      // Recipes named on the command line stand in for installed ones of the same name.
      const given = new Map<string, Recipe>();
      for (const f of files) {
        try {
          const r = readRecipeText(readFileSync(f, 'utf8'));
          given.set(r.name, r);
        } catch {
          /* not a (good) recipe: reported below */
        }
      }
      const lookup = {
        get: (n: string) => given.get(n) ?? registry.get(n),
        all: () => [...new Map([...registry.all(), ...given.values()].map((r) => [r.name, r])).values()],
      };
      const configFile = globals(cmd).config;
      let bad = 0;
      for (const f of files) {
        const isConfig = path.basename(f) === 'hopper.yaml' || (configFile !== undefined && path.resolve(f) === path.resolve(configFile));
        const verdict = checkFile(f, lookup, isConfig);
        if (verdict.ok) process.stdout.write(`${f}: ok (${verdict.what})\n`);
        else {
          bad++;
          for (const line of problemLines(f, verdict.problems)) process.stdout.write(`${line}\n`);
        }
      }
      process.exitCode = bad ? EXIT.failure : EXIT.ok;
    });
}
