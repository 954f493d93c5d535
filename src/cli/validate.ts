import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig, type Config } from '../config/config.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { problemLines } from '../inbox/files.js';
import { whyNever } from '../inbox/intake.js';
import { requestFromFile } from '../inbox/request.js';
import { silentLogger } from '../log.js';
import { recipeFromFile, type Recipe } from '../recipes/recipe.js';
import { readRecipeText, RecipeRegistry } from '../recipes/registry.js';
import { parseYaml } from '../schemas/document.js';
import { assertNoProblems, fileKind, schemaProblems } from '../schemas/validate.js';
import { formatBytes } from '../units.js';
import { CliError, configFor, EXIT, globals, rootPaths, say } from './common.js';

type Verdict = { ok: true; what: string } | { ok: false; problems: Problem[] };

const MAX_BYTES = 16 * 1024 * 1024;

interface Lookup {
  get(name: string): Recipe | undefined;
  all(): Recipe[];
}

/** A file's text, or why it cannot be a hopper file. */
function readText(file: string): { text: string } | { problems: Problem[] } {
  try {
    const st = statSync(file);
    if (!st.isFile()) return { problems: [{ path: '', message: 'is not a regular file' }] };
    if (st.size > MAX_BYTES) return { problems: [{ path: '', message: `is ${formatBytes(st.size)}; too large for a hopper file` }] };
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    return { problems: [{ path: '', message: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message }] };
  }
}

/** Checks one file as the daemon would take it; a request also against this host's config, as intake does. */
function checkText(file: string, text: string, recipes: Lookup, config: Config | undefined, isConfig: boolean): Verdict {
  try {
    if (isConfig) {
      parseConfig(text, file);
      return { ok: true, what: 'config' };
    }
    const parsed = parseYaml(text);
    const kind = fileKind(parsed);
    if (kind === 'recipe') return { ok: true, what: `recipe ${recipeFromFile(parsed).name}` };
    if (kind === 'cancel') {
      assertNoProblems(schemaProblems('cancel', parsed));
      return { ok: true, what: 'cancel' };
    }
    const { recipe, input } = requestFromFile(parsed, recipes, path.basename(file));
    const refused = config && whyNever(config, recipe);
    if (refused) return { ok: false, problems: [{ path: 'recipe', message: refused, ...parsed.locate(['recipe']) }] };
    return { ok: true, what: `request for ${recipe.name} (${input.lane} lane)` };
  } catch (err) {
    if (err instanceof InvalidFileError) return { ok: false, problems: err.problems };
    if (err instanceof ConfigError) return { ok: false, problems: err.problems };
    return { ok: false, problems: [{ path: '', message: (err as Error).message }] };
  }
}

/** The root's config; when that is one of the files being checked and it is bad, none (its problems are reported with it). */
function configUnlessChecked(cmd: Command, isChecked: (file: string) => boolean): Config | undefined {
  try {
    return configFor(cmd);
  } catch (err) {
    const g = globals(cmd);
    if (err instanceof CliError && isChecked(g.config ?? path.join(rootPaths(cmd).root, 'hopper.yaml'))) return undefined;
    throw err;
  }
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .argument('<file...>', 'request, cancel, recipe or config (hopper.yaml) files')
    .description('check files as the daemon would; prints FILE:LINE:COL: message; exit 1 if any is bad')
    .action((files: string[], _opts: unknown, cmd: Command) => {
      const configFile = globals(cmd).config;
      const isConfig = (f: string): boolean => path.basename(f) === 'hopper.yaml' || (configFile !== undefined && path.resolve(f) === path.resolve(configFile));
      const config = configUnlessChecked(cmd, (f) => files.some((x) => isConfig(x) && path.resolve(x) === path.resolve(f)));
      const registry = new RecipeRegistry(rootPaths(cmd).recipes, silentLogger());
      registry.loadAll();
      const texts = new Map(files.map((f) => [f, readText(f)]));
      // Recipes named on the command line stand in for installed ones of the same name.
      const given = new Map<string, Recipe>();
      for (const [f, read] of texts) {
        if (!('text' in read) || isConfig(f)) continue;
        try {
          const r = readRecipeText(read.text);
          given.set(r.name, r);
        } catch {
          /* not a (good) recipe: reported below */
        }
      }
      const lookup: Lookup = {
        get: (n) => given.get(n) ?? registry.get(n),
        all: () => [...new Map([...registry.all(), ...given.values()].map((r) => [r.name, r])).values()],
      };
      let bad = 0;
      for (const [f, read] of texts) {
        const verdict: Verdict = 'text' in read ? checkText(f, read.text, lookup, config, isConfig(f)) : { ok: false, problems: read.problems };
        if (verdict.ok) say(`${f}: ok (${verdict.what})\n`);
        else {
          bad++;
          for (const line of problemLines(f, verdict.problems)) say(`${line}\n`);
        }
      }
      process.exitCode = bad ? EXIT.failure : EXIT.ok;
    });
}
