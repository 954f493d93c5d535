import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HopperError } from '../src/errors.js';
import {
  lookup,
  placeholderProblem,
  placeholders,
  render,
  renderDeep,
  TEMPLATE_ROOTS,
  templateStrings,
  type TemplateScope,
} from '../src/template.js';

const scope: TemplateScope = {
  params: { url: 'https://example.org/a.csv', n: 42, ok: true, zero: 0, empty: '', none: null, list: ['a', 'b'], nested: { deep: { value: 'x' } } },
  request: { id: 'order-1', notify: { email: 'someone@example.org' } },
  recipe: { name: 'package-url' },
  job: { id: 'j1', attempt: 2 },
  output: { links: ['https://l/1', 'https://l/2'] },
};

function templateError(fn: () => unknown, includes: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HopperError);
    assert.equal(err.code, 'E_TEMPLATE');
    assert.ok(err.message.includes(includes), err.message);
    return true;
  });
}

describe('placeholders', () => {
  it('placeholders - lists every placeholder path in order', () => {
    assert.deepEqual(placeholders('{{params.url}} to {{job.id}}.zip'), ['params.url', 'job.id']);
  });

  it('placeholders - trims spaces inside the braces', () => {
    assert.deepEqual(placeholders('{{  params.url  }}|{{\tjob.id\n}}'), ['params.url', 'job.id']);
  });

  it('placeholders - finds none in plain text or in single braces', () => {
    assert.deepEqual(placeholders('no placeholders { here } {x}'), []);
    assert.deepEqual(placeholders(''), []);
  });

  it('placeholders - reports an empty placeholder as an empty path', () => {
    assert.deepEqual(placeholders('{{}}'), ['']);
    assert.deepEqual(placeholders('{{   }}'), ['']);
  });

  it('placeholders - does not match across nested braces', () => {
    assert.deepEqual(placeholders('{{ {{params.a}} }}'), ['params.a']);
  });

  it('placeholders - finds 10 000 placeholders in a large template quickly', () => {
    const text = Array.from({ length: 10_000 }, (_, i) => `x{{params.p${i}}}`).join(' ');
    const started = Date.now();
    const found = placeholders(text);
    assert.equal(found.length, 10_000);
    assert.equal(found[9999], 'params.p9999');
    assert.ok(Date.now() - started < 2000);
  });

  it('placeholders - an unclosed "{{" followed by many spaces is scanned in linear time', () => {
    // Regression: the old pattern /\{\{\s*([^{}]*?)\s*\}\}/ took ~3 s on 2000 spaces.
    const hostile = [`{{${' '.repeat(200_000)}`, `{{${'a '.repeat(100_000)}`, '{{ '.repeat(70_000), `{{${' '.repeat(100_000)}}${' '.repeat(100_000)}`];
    const started = Date.now();
    for (const text of hostile) {
      placeholders(text);
      render(text, scope);
    }
    assert.deepEqual(placeholders(`{{${' '.repeat(200_000)}`), []);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });
});

describe('placeholderProblem', () => {
  it('placeholderProblem - accepts every known root, alone or with a path', () => {
    for (const root of TEMPLATE_ROOTS) {
      assert.equal(placeholderProblem(root), null);
      assert.equal(placeholderProblem(`${root}.a.b-c.d_e.0`), null);
    }
  });

  it('placeholderProblem - names the unknown root and the known ones', () => {
    const p = placeholderProblem('foo.bar');
    assert.ok(p);
    assert.ok(p.includes('"foo"'), p);
    assert.ok(p.includes('params, request, recipe, job, output'), p);
  });

  it('placeholderProblem - rejects malformed paths', () => {
    for (const bad of ['', 'params.', '.params', 'params..url', 'params url', 'params.url()', 'params[0]', '1params', 'params.url | upper', '$params']) {
      const p = placeholderProblem(bad);
      assert.ok(p, `${JSON.stringify(bad)} should be refused`);
      assert.ok(p.includes('is not a placeholder'), p);
    }
  });

  it('placeholderProblem - roots are case-sensitive', () => {
    assert.ok(placeholderProblem('Params.url'));
  });

  it('placeholderProblem - rejects prototype names as roots', () => {
    assert.ok(placeholderProblem('__proto__.x'));
    assert.ok(placeholderProblem('constructor'));
  });
});

describe('lookup', () => {
  it('lookup - follows dotted paths through objects and arrays', () => {
    assert.equal(lookup(scope, 'params.nested.deep.value'), 'x');
    assert.equal(lookup(scope, 'params.list.1'), 'b');
    assert.equal(lookup(scope, 'params.zero'), 0);
  });

  it('lookup - gives undefined for missing keys and for paths through primitives', () => {
    assert.equal(lookup(scope, 'params.missing'), undefined);
    assert.equal(lookup(scope, 'params.url.length'), undefined);
    assert.equal(lookup(scope, 'params.none.x'), undefined);
    assert.equal(lookup(undefined, 'params'), undefined);
    assert.equal(lookup(null, 'params'), undefined);
  });

  it('lookup - never reads prototype keys (__proto__, constructor, toString, hasOwnProperty)', () => {
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
      assert.equal(lookup(scope, `params.${key}`), undefined, key);
      assert.equal(lookup(scope, `params.nested.${key}`), undefined, key);
      assert.equal(lookup(scope, key), undefined, key);
    }
    assert.equal(lookup(scope, 'params.constructor.name'), undefined);
    assert.equal(lookup(scope, 'params.__proto__.constructor'), undefined);
  });

  it('lookup - reads an own "__proto__" key as plain data', () => {
    const params = JSON.parse('{"__proto__": "mine"}') as Record<string, unknown>;
    assert.equal(lookup({ params }, 'params.__proto__'), 'mine');
  });
});

describe('render', () => {
  it('render - fills strings, numbers and booleans', () => {
    assert.equal(render('get {{params.url}} n={{params.n}} ok={{params.ok}} z={{params.zero}}', scope), 'get https://example.org/a.csv n=42 ok=true z=0');
  });

  it('render - joins arrays with newlines and writes objects as JSON', () => {
    assert.equal(render('{{output.links}}', scope), 'https://l/1\nhttps://l/2');
    assert.equal(render('{{params.nested}}', scope), '{"deep":{"value":"x"}}');
  });

  it('render - leaves text without placeholders unchanged', () => {
    assert.equal(render('plain { text } }}{{', scope), 'plain { text } }}{{');
  });

  it('render - lenient mode turns missing and null values into empty text', () => {
    assert.equal(render('[{{params.missing}}][{{params.none}}][{{nope.x}}]', scope), '[][][]');
  });

  it('render - strict mode throws E_TEMPLATE naming the missing placeholder', () => {
    templateError(() => render('{{params.missing}}', scope, { strict: true }), '{{params.missing}}');
    templateError(() => render('{{params.none}}', scope, { strict: true }), '{{params.none}}');
  });

  it('render - strict mode accepts empty strings, zero and false as values', () => {
    assert.equal(render('[{{params.empty}}][{{params.zero}}]', scope, { strict: true }), '[][0]');
    assert.equal(render('{{x.ok}}', { params: { ok: false } } as unknown as TemplateScope, { strict: false }), '');
    assert.equal(render('{{params.ok}}', { params: { ok: false } }, { strict: true }), 'false');
  });

  it('render - strict mode refuses prototype keys as values', () => {
    templateError(() => render('{{params.constructor}}', scope, { strict: true }), 'constructor');
    templateError(() => render('{{params.__proto__}}', scope, { strict: true }), '__proto__');
    assert.equal(render('{{params.toString}}', scope), '');
  });

  it('render - does not re-expand placeholders that appear inside parameter values', () => {
    const s: TemplateScope = { params: { a: '{{params.b}}', b: 'SECRET', c: '{{ job.id }}' }, job: { id: 'j' } };
    assert.equal(render('{{params.a}}', s), '{{params.b}}');
    assert.equal(render('{{params.a}}-{{params.c}}', s, { strict: true }), '{{params.b}}-{{ job.id }}');
  });

  it('render - does not interpret $ replacement patterns inside values', () => {
    const s: TemplateScope = { params: { v: "$& $1 $$ $` $'" } };
    assert.equal(render('<{{params.v}}>', s), "<$& $1 $$ $` $'>");
  });

  it('render - passes shell metacharacters through untouched (no quoting)', () => {
    const s: TemplateScope = { params: { v: '"; rm -rf / #\n$(id)' } };
    assert.equal(render('{{params.v}}', s), '"; rm -rf / #\n$(id)');
  });

  it('render - a value with a huge placeholder-like string is not expanded', () => {
    const value = '{{params.v}}'.repeat(50_000);
    const s: TemplateScope = { params: { v: value } };
    const started = Date.now();
    assert.equal(render('{{params.v}}', s), value);
    assert.ok(Date.now() - started < 2000);
  });

  it('render - a 1 MB value and a 1 MB template with 20 000 placeholders render quickly', () => {
    const big = 'x'.repeat(1_000_000);
    const s: TemplateScope = { params: { big, small: 'y' } };
    const started = Date.now();
    assert.equal(render('{{params.big}}', s).length, 1_000_000);
    const template = `${'z'.repeat(500_000)}${'{{params.small}}'.repeat(20_000)}`;
    assert.equal(render(template, s).length, 500_000 + 20_000);
    assert.ok(Date.now() - started < 3000);
  });
});

describe('renderDeep', () => {
  it('renderDeep - renders every string in nested objects and arrays, keeping the shape', () => {
    const value = { url: '{{params.url}}', argv: ['zip', '{{job.id}}.zip', 7, true, null], env: { A: '{{params.n}}' } };
    assert.deepEqual(renderDeep(value, scope), {
      url: 'https://example.org/a.csv',
      argv: ['zip', 'j1.zip', 7, true, null],
      env: { A: '42' },
    });
  });

  it('renderDeep - does not render object keys', () => {
    assert.deepEqual(renderDeep({ '{{params.n}}': 'v' }, scope), { '{{params.n}}': 'v' });
  });

  it('renderDeep - does not mutate its input', () => {
    const value = { a: ['{{params.n}}'] };
    const copy = structuredClone(value);
    renderDeep(value, scope);
    assert.deepEqual(value, copy);
  });

  it('renderDeep - strict mode throws on the first missing value anywhere', () => {
    templateError(() => renderDeep({ a: ['ok', { b: '{{params.missing}}' }] }, scope, { strict: true }), 'params.missing');
  });

  it('renderDeep - keeps an own "__proto__" key as data and never changes the prototype of the result', () => {
    const value = JSON.parse('{"__proto__": {"polluted": "{{params.n}}"}, "a": "b"}') as Record<string, unknown>;
    const out = renderDeep(value, scope);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal((out as Record<string, unknown>).polluted, undefined);
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.deepEqual(Object.keys(out), ['__proto__', 'a']);
  });

  it('renderDeep - returns primitives as they are', () => {
    assert.equal(renderDeep(5, scope), 5);
    assert.equal(renderDeep(null, scope), null);
    assert.equal(renderDeep(undefined, scope), undefined);
  });

  it('renderDeep - does not re-expand values that contain placeholders', () => {
    const s: TemplateScope = { params: { a: '{{params.b}}', b: 'no' } };
    assert.deepEqual(renderDeep(['{{params.a}}'], s), ['{{params.b}}']);
  });
});

describe('templateStrings', () => {
  it('templateStrings - lists strings with placeholders and their dotted location', () => {
    const steps = [{ fetch: { url: '{{params.url}}', to: 'data.csv' } }, { run: { command: ['echo', '{{job.id}}'] } }];
    assert.deepEqual(templateStrings(steps, 'steps'), [
      { at: 'steps[0].fetch.url', text: '{{params.url}}' },
      { at: 'steps[1].run.command[1]', text: '{{job.id}}' },
    ]);
  });

  it('templateStrings - finds nothing in plain values', () => {
    assert.deepEqual(templateStrings({ a: 'x', b: [1, 2], c: null }), []);
    assert.deepEqual(templateStrings(undefined), []);
  });

  it('templateStrings - a top-level string keeps the given location', () => {
    assert.deepEqual(templateStrings('{{x}}', 'notify'), [{ at: 'notify', text: '{{x}}' }]);
  });
});
