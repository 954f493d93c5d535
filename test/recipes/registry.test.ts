import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { silentLogger } from '../../src/log.js';
import { readRecipeText, RecipeRegistry } from '../../src/recipes/registry.js';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

/** A recipe whose output says which version made it. */
function versioned(v: string): Record<string, unknown> {
  return {
    kind: 'recipe',
    name: 'versioned',
    steps: [{ run: { command: ['sh', '-c', `printf ${v} > out.txt`] } }],
    output: { files: ['out.txt'] },
  };
}

describe('recipes: hot reload', () => {
  let d: TestDaemon;
  let file: string;
  before(async () => {
    d = await testDaemon({ recipes: { versioned: versioned('v1') } });
    file = path.join(d.root, 'recipes', 'versioned.yaml');
  });
  after(() => d.cleanup());

  async function outputOf(id: string): Promise<string> {
    d.drop(`${id}.yaml`, request('versioned', {}, { id }));
    const job = await d.job(id, ended);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    return readFileSync(path.join(d.root, 'outputs', job.id, 'out.txt'), 'utf8');
  }

  it('a broken edit is reported and the last good version stays in force; a good edit takes over', async () => {
    assert.equal(await outputOf('r1'), 'v1');

    writeFileSync(file, 'kind: recipe\nname: versioned\nsteps: [ { run: { command: [oops } ]\n');
    await waitFor('the broken edit to be reported', () => d.recipes.errors().get('versioned.yaml'));
    assert.match(d.recipes.errors().get('versioned.yaml')!, /YAML syntax/);
    assert.equal(await outputOf('r2'), 'v1', 'the last good version still runs');

    writeFileSync(file, stringify({ ...versioned('v1'), steps: [{ fetch: { url: 'http://x', to: '../escape' } }] }));
    await waitFor('the unsafe edit to be reported', () => /must not contain ".."/.test(d.recipes.errors().get('versioned.yaml') ?? ''));
    assert.equal(await outputOf('r3'), 'v1');

    writeFileSync(file, stringify(versioned('v2')));
    await waitFor('the good edit to load', () => !d.recipes.errors().has('versioned.yaml') && d.recipes.get('versioned')?.source.steps !== undefined && JSON.stringify(d.recipes.get('versioned')!.source).includes('v2'));
    assert.equal(await outputOf('r4'), 'v2');
  });

  it('a job keeps the recipe version it was accepted with', async () => {
    const jobs = ['r1', 'r4'].map((id) => d.ctx.store.jobs.find(id)!);
    assert.notEqual(jobs[0].recipeVersion, jobs[1].recipeVersion);
  });

  it('a new recipe file is loaded and a removed one is gone', async () => {
    writeFileSync(path.join(d.root, 'recipes', 'fresh.yaml'), stringify(echoRecipe('fresh')));
    await waitFor('fresh to load', () => d.recipes.get('fresh'));
    unlinkSync(path.join(d.root, 'recipes', 'fresh.yaml'));
    await waitFor('fresh to be removed', () => !d.recipes.get('fresh'));
  });

  it('a second file defining the same name is refused and the first stays', async () => {
    writeFileSync(path.join(d.root, 'recipes', 'copy.yaml'), stringify(versioned('v9')));
    await waitFor('the duplicate to be reported', () => d.recipes.errors().get('copy.yaml'));
    assert.match(d.recipes.errors().get('copy.yaml')!, /already defined in versioned\.yaml/);
    assert.equal(await outputOf('r5'), 'v2');
  });
});

describe('recipes: files shipped beside a recipe', () => {
  it('count in its version: a changed script gives a new version, so cached outputs of the old one are not reused', () => {
    const { root, cleanup } = tempRoot();
    try {
      const dir = path.join(root, 'recipes');
      mkdirSync(path.join(dir, 'scripted', 'lib'), { recursive: true });
      writeFileSync(path.join(dir, 'scripted.yaml'), stringify(echoRecipe('scripted')));
      writeFileSync(path.join(dir, 'plain.yaml'), stringify(echoRecipe('plain')));
      const plainAlone = readRecipeText(readFileSync(path.join(dir, 'plain.yaml'), 'utf8')).version;
      const load = (): RecipeRegistry => {
        const r = new RecipeRegistry(dir, silentLogger());
        r.loadAll();
        return r;
      };
      writeFileSync(path.join(dir, 'scripted', 'run.mjs'), 'console.log(1)\n');
      writeFileSync(path.join(dir, 'scripted', 'lib', 'util.mjs'), 'export {}\n');
      const v1 = load().get('scripted')!.version;
      assert.equal(load().get('scripted')!.version, v1, 'the same files, the same version');
      writeFileSync(path.join(dir, 'scripted', 'lib', 'util.mjs'), 'export const x = 2;\n');
      const v2 = load().get('scripted')!.version;
      assert.notEqual(v2, v1, 'a changed file in a subfolder');
      writeFileSync(path.join(dir, 'scripted', '.editor-swap'), 'x');
      assert.equal(load().get('scripted')!.version, v2, 'hidden files do not count');
      assert.equal(load().get('plain')!.version, plainAlone, 'no folder: the version of the YAML alone');
    } finally {
      cleanup();
    }
  });
});
