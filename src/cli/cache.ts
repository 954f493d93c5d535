import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { openStore } from '../store/store.js';
import { CliError, configFor, EXIT, rootPaths } from './common.js';

export function registerCache(program: Command): void {
  const cache = program.command('cache').description("manage the output cache of recipes with 'cache:'");
  cache
    .command('clear')
    .argument('[recipe]', 'only this recipe (default: all)')
    .description('forget cached outputs: the next identical request runs again (delivered files stay downloadable)')
    .action((recipe: string | undefined, _opts: unknown, cmd: Command) => {
      configFor(cmd);
      const paths = rootPaths(cmd);
      if (!existsSync(paths.db)) throw new CliError(`no hopper database at ${paths.db}`, EXIT.failure);
      const store = openStore(paths.db);
      try {
        const n = store.jobs.clearCache(recipe);
        process.stdout.write(`forgot ${n} cached output${n === 1 ? '' : 's'}${recipe ? ` of ${recipe}` : ''}\n`);
      } finally {
        store.close();
      }
    });
}
