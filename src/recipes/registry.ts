import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readRegularFileSync } from '../fs/read.js';
import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/write.js';
import path from 'node:path';
import { InvalidFileError, toHopperError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseYaml } from '../schemas/document.js';
import { fileKind } from '../schemas/validate.js';
import { fingerprint, recipeFromFile, type Recipe } from './recipe.js';

export const RECIPE_FILE = /\.(ya?ml|json)$/i;

/** The recipe with the files shipped beside it (recipes/NAME/) counted in its version. */
function withShipped(recipe: Recipe, recipesDir: string): Recipe {
  const shipped = shippedDigest(path.join(recipesDir, recipe.name));
  return shipped === undefined ? recipe : { ...recipe, version: fingerprint({ recipe: recipe.version, shipped }) };
}

/** Reads and fully validates one recipe file; throws InvalidFileError with every problem. */
export function readRecipeText(text: string): Recipe {
  const parsed = parseYaml(text);
  fileKind(parsed, ['recipe']);
  return recipeFromFile(parsed);
}

const SHIPPED_MAX_FILES = 500;
/** Files beside a recipe larger than this count by size and time, not content. */
const SHIPPED_HASH_BYTES = 1024 * 1024;

/**
 * A digest of the files shipped beside a recipe in recipes/NAME/ (scripts, URL
 * lists), or undefined when there is no such folder. It goes into the recipe's
 * version, so a changed script makes cached outputs of the old one stale.
 */
export function shippedDigest(dir: string): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return undefined;
  }
  const hash = createHash('sha256');
  const files = entries.filter((rel) => !rel.split(path.sep).some((part) => part.startsWith('.'))).sort();
  for (const rel of files.slice(0, SHIPPED_MAX_FILES)) {
    try {
      const file = path.join(dir, rel);
      const st = statSync(file);
      if (!st.isFile()) continue;
      hash.update(`${rel}\0`);
      hash.update(st.size <= SHIPPED_HASH_BYTES ? readFileSync(file) : `${st.size} ${st.mtimeMs}`);
      hash.update('\0');
    } catch {
      /* gone meanwhile */
    }
  }
  return hash.digest('hex');
}

/**
 * The recipes in force, by name, loaded from recipes/. A file that breaks on
 * an edit is reported and its last good version stays in force.
 */
export class RecipeRegistry {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly byFile = new Map<string, Recipe>();
  private readonly problems = new Map<string, string>();

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.log = log;
  }

  get(name: string): Recipe | undefined {
    for (const r of this.byFile.values()) if (r.name === name) return r;
    return undefined;
  }

  all(): Recipe[] {
    return [...this.byFile.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Files whose current text is broken, with why (their last good version may still be in force). */
  errors(): Map<string, string> {
    return new Map(this.problems);
  }

  loadAll(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.dir).filter((n) => RECIPE_FILE.test(n) && !n.startsWith('.')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const n of names) this.loadFile(path.join(this.dir, n));
  }

  /** (Re)loads one file; returns the recipe now in force for it, if any. */
  loadFile(file: string): Recipe | undefined {
    const key = path.basename(file);
    try {
      const recipe = withShipped(readRecipeText(readRegularFileSync(file)), this.dir);
      const owner = [...this.byFile.entries()].find(([f, r]) => r.name === recipe.name && f !== key);
      if (owner) throw new InvalidFileError([{ path: 'name', message: `recipe "${recipe.name}" is already defined in ${owner[0]}` }]);
      const previous = this.byFile.get(key);
      this.byFile.set(key, recipe);
      this.problems.delete(key);
      if (previous?.version !== recipe.version) this.log.info({ recipe: recipe.name, file: key, version: recipe.version.slice(0, 12) }, previous ? 'recipe reloaded' : 'recipe loaded');
      return recipe;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.remove(file);
        return undefined;
      }
      const message = toHopperError(err).message;
      this.problems.set(key, message);
      const kept = this.byFile.get(key);
      this.log.error({ file: key, problems: message, kept: kept?.name ?? null }, kept ? 'recipe file is broken; its last good version stays in force' : 'recipe file is broken');
      return kept;
    }
  }

  remove(file: string): void {
    const key = path.basename(file);
    const gone = this.byFile.get(key);
    this.byFile.delete(key);
    this.problems.delete(key);
    if (gone) this.log.info({ recipe: gone.name, file: key }, 'recipe removed');
  }

  /** Installs a recipe that arrived through the inbox as recipes/NAME.yaml (atomically). */
  async install(recipe: Recipe, text: string): Promise<string> {
    const existing = [...this.byFile.entries()].find(([, r]) => r.name === recipe.name)?.[0];
    const target = path.join(this.dir, existing ?? `${recipe.name}.yaml`);
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(target, text);
    this.loadFile(target);
    return target;
  }
}
