import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { objectPrefix } from '../../src/delivery/deliver.js';
import { HopperError, InvalidFileError } from '../../src/errors.js';
import { recipeFromFile } from '../../src/recipes/recipe.js';
import { parseYaml } from '../../src/schemas/document.js';
import { echoRecipe } from '../helpers/recipes.js';

const scope = (params: Record<string, unknown>) => ({ params, job: { id: 'J1' }, recipe: { name: 'r' }, request: {} });

describe('objectPrefix', () => {
  it('fills placeholders into a plain relative key prefix', () => {
    assert.equal(objectPrefix('farm/{{params.name}}/', scope({ name: 'wiki' })), 'farm/wiki/');
    assert.equal(objectPrefix('', scope({})), '');
  });

  it('refuses a prefix that would climb, start at the root, hide control characters or run long', () => {
    for (const [name, words] of [
      ['..', /\. or \.\. segments/],
      ['a/../../b', /\. or \.\. segments/],
      ['/etc', /must not start with \//],
      ['a\nb', /control characters/],
      ['a\\b', /backslashes/],
      ['x'.repeat(600), /longer than 512/],
    ] as const) {
      const template = name.startsWith('/') ? '{{params.name}}/' : 'out/{{params.name}}/';
      assert.throws(() => objectPrefix(template, scope({ name })), (e: unknown) => e instanceof HopperError && e.code === 'E_S3_PREFIX' && words.test(e.message), JSON.stringify(name).slice(0, 30));
    }
    assert.throws(() => objectPrefix('{{params.missing}}/', scope({})), /has no value/);
  });
});

describe('recipe notify.webhook.url', () => {
  it('is refused at load when it is neither an http(s) URL nor a placeholder', () => {
    const load = (url: string) => recipeFromFile(parseYaml(stringify(echoRecipe('hook', { notify: { webhook: { url } } }))));
    assert.throws(() => load('ftp://x/'), (e: unknown) => e instanceof InvalidFileError && /notify\.webhook\.url: must be an http\(s\) URL/.test(e.message));
    assert.throws(() => load('not a url'), InvalidFileError);
    load('https://ops.example.org/hooks');
    load('{{params.text}}');
  });
});
