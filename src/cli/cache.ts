import type { Command } from 'commander';
import { withRootStore } from './common.js';

export function registerCache(program: Command): void {
  const cache = program.command('cache').description("manage the output cache of recipes with 'cache:'");
  cache
    .command('clear')
    .argument('[recipe]', 'only this recipe (default: all)')
    .description('forget cached outputs: the next identical request runs again (delivered files stay downloadable)')
    .action((recipe: string | undefined, _opts: unknown, cmd: Command) => {
      withRootStore(cmd, (store) => {
        const n = store.jobs.clearCache(recipe);
        process.stdout.write(`forgot ${n} cached output${n === 1 ? '' : 's'}${recipe ? ` of ${recipe}` : ''}\n`);
      });
    });
}
