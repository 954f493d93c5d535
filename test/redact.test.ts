import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MASK, maskParams, scrub, secretValues } from '../src/redact.js';

const schema = {
  type: 'object',
  properties: {
    url: { type: 'string', format: 'uri' },
    apiKey: { type: 'string', writeOnly: true },
    auth: {
      type: 'object',
      properties: {
        user: { type: 'string' },
        password: { type: 'string', writeOnly: true },
        deeper: { type: 'object', properties: { pin: { type: 'string', writeOnly: true }, label: { type: 'string' } } },
      },
    },
    tokens: { type: 'array', items: { type: 'string', writeOnly: true } },
    accounts: {
      type: 'array',
      items: { type: 'object', properties: { name: { type: 'string' }, secret: { type: 'string', writeOnly: true } } },
    },
    whole: { type: 'object', writeOnly: true },
    count: { type: 'integer', writeOnly: true },
  },
};

const params = {
  url: 'https://example.org/data.csv',
  apiKey: 'sk-live-0123456789',
  auth: { user: 'ann', password: 'correct horse battery', deeper: { pin: '98765', label: 'home' } },
  tokens: ['tok-aaaa', 'tok-bbbb'],
  accounts: [
    { name: 'a', secret: 'acct-secret-1' },
    { name: 'b', secret: 'acct-secret-2' },
  ],
  whole: { k: 'whole-object-secret' },
  count: 123456,
  extra: 'not in schema',
};

describe('maskParams', () => {
  it('maskParams - replaces top-level writeOnly values with the mask', () => {
    const out = maskParams(params, schema);
    assert.equal(out.apiKey, MASK);
    assert.equal(out.url, params.url);
  });

  it('maskParams - masks writeOnly values nested in objects at any depth', () => {
    const out = maskParams(params, schema) as { auth: { user: string; password: string; deeper: { pin: string; label: string } } };
    assert.equal(out.auth.user, 'ann');
    assert.equal(out.auth.password, MASK);
    assert.equal(out.auth.deeper.pin, MASK);
    assert.equal(out.auth.deeper.label, 'home');
  });

  it('maskParams - masks each element of an array whose items are writeOnly', () => {
    const out = maskParams(params, schema);
    assert.deepEqual(out.tokens, [MASK, MASK]);
  });

  it('maskParams - masks writeOnly fields of objects inside arrays', () => {
    const out = maskParams(params, schema);
    assert.deepEqual(out.accounts, [
      { name: 'a', secret: MASK },
      { name: 'b', secret: MASK },
    ]);
  });

  it('maskParams - masks a whole writeOnly object and a non-string writeOnly value', () => {
    const out = maskParams(params, schema);
    assert.equal(out.whole, MASK);
    assert.equal(out.count, MASK);
  });

  it('maskParams - keeps keys the schema does not describe', () => {
    assert.equal(maskParams(params, schema).extra, 'not in schema');
  });

  it('maskParams - no secret value survives anywhere in the JSON of the masked params', () => {
    const text = JSON.stringify(maskParams(params, schema));
    for (const secret of ['sk-live-0123456789', 'correct horse battery', '98765', 'tok-aaaa', 'tok-bbbb', 'acct-secret-1', 'acct-secret-2', 'whole-object-secret', '123456']) {
      assert.ok(!text.includes(secret), `${secret} leaked in ${text}`);
    }
  });

  it('maskParams - does not modify the stored params', () => {
    const copy = structuredClone(params);
    maskParams(params, schema);
    assert.deepEqual(params, copy);
  });

  it('maskParams - returns params unchanged when the schema is missing, not an object or has no secrets', () => {
    assert.deepEqual(maskParams({ a: 1 }, undefined), { a: 1 });
    assert.deepEqual(maskParams({ a: 1 }, null), { a: 1 });
    assert.deepEqual(maskParams({ a: 1 }, 'nonsense'), { a: 1 });
    assert.deepEqual(maskParams({ a: 1 }, { type: 'object' }), { a: 1 });
  });

  it('maskParams - masks a writeOnly key even when its value is empty or null', () => {
    const out = maskParams({ apiKey: '', auth: { password: null } }, schema);
    assert.equal(out.apiKey, MASK);
    assert.deepEqual(out.auth, { password: MASK });
  });

  it('maskParams - a value with the wrong shape for its schema is kept, not crashed on', () => {
    const out = maskParams({ auth: 'just a string', tokens: 'not an array', accounts: [null, 5] }, schema);
    assert.equal(out.auth, 'just a string');
    assert.equal(out.tokens, 'not an array');
    assert.deepEqual(out.accounts, [null, 5]);
  });

  it('maskParams - writeOnly: "true" (a string) is not treated as a secret marker', () => {
    assert.deepEqual(maskParams({ a: 'x' }, { properties: { a: { writeOnly: 'true' } } }), { a: 'x' });
  });

  it('maskParams - ignores inherited property names in the schema (constructor, toString)', () => {
    const out = maskParams({ constructor: 'c', toString: 't' }, { properties: {} });
    assert.deepEqual(out, { constructor: 'c', toString: 't' });
  });

  it(
    'maskParams - masks writeOnly values declared under additionalProperties (a map of secrets)',
    {
      todo:
        'BUG: src/redact.ts maskValue/secretValues only descend through properties and items; a schema like {additionalProperties: {writeOnly: true}} (e.g. a map of API tokens) is shown unmasked in views, emails and webhooks, and never scrubbed from logs. Also handle patternProperties.',
    },
    () => {
      const s = { type: 'object', properties: { headers: { type: 'object', additionalProperties: { type: 'string', writeOnly: true } } } };
      const p = { headers: { Authorization: 'Bearer top-secret' } };
      assert.deepEqual(maskParams(p, s), { headers: { Authorization: MASK } });
      assert.deepEqual(secretValues(p, s), ['Bearer top-secret']);
    },
  );

  it(
    'maskParams - masks writeOnly values reached through $ref or allOf',
    {
      todo:
        'BUG: src/redact.ts does not follow $ref (to $defs) or allOf/anyOf/oneOf, so {apiKey: {$ref: "#/$defs/secret"}} with $defs.secret.writeOnly leaks the key in every view. Resolve local $refs and treat writeOnly in any applicator subschema as a secret.',
    },
    () => {
      const s = {
        $defs: { secret: { type: 'string', writeOnly: true } },
        properties: { a: { $ref: '#/$defs/secret' }, b: { allOf: [{ type: 'string' }, { writeOnly: true }] } },
      };
      const out = maskParams({ a: 'ref-secret', b: 'allof-secret' }, s);
      assert.deepEqual(out, { a: MASK, b: MASK });
    },
  );
});

describe('secretValues', () => {
  it('secretValues - collects every writeOnly value at any depth, in arrays too', () => {
    const found = secretValues(params, schema);
    for (const secret of ['sk-live-0123456789', 'correct horse battery', '98765', 'tok-aaaa', 'tok-bbbb', 'acct-secret-1', 'acct-secret-2']) {
      assert.ok(found.includes(secret), `${secret} missing from ${JSON.stringify(found)}`);
    }
  });

  it('secretValues - writes non-string secrets as JSON', () => {
    const found = secretValues(params, schema);
    assert.ok(found.includes('{"k":"whole-object-secret"}'));
    assert.ok(found.includes('123456'));
  });

  it('secretValues - leaves out secrets shorter than 4 characters', () => {
    const s = { properties: { a: { writeOnly: true }, b: { writeOnly: true } } };
    assert.deepEqual(secretValues({ a: 'abc', b: 'abcd' }, s), ['abcd']);
  });

  it('secretValues - skips missing and null secrets and non-secret values', () => {
    assert.deepEqual(secretValues({ url: 'https://x', auth: { password: null } }, schema), []);
    assert.deepEqual(secretValues(undefined, schema), []);
    assert.deepEqual(secretValues({ apiKey: 'long-enough' }, undefined), []);
  });
});

describe('scrub', () => {
  it('scrub - replaces every occurrence of each secret', () => {
    assert.equal(scrub('key=sk-1234 again sk-1234 and pw-5678', ['sk-1234', 'pw-5678']), `key=${MASK} again ${MASK} and ${MASK}`);
  });

  it('scrub - leaves text without secrets unchanged', () => {
    assert.equal(scrub('nothing here', ['sk-1234']), 'nothing here');
    assert.equal(scrub('nothing here', []), 'nothing here');
  });

  it('scrub - treats secrets as literal text, not regular expressions', () => {
    assert.equal(scrub('a.b*c a-b-c', ['a.b*c']), `${MASK} a-b-c`);
    assert.equal(scrub('x$&y', ['$&']), `x${MASK}y`);
  });

  it('scrub - removes secrets spread over multiple lines', () => {
    assert.equal(scrub('begin\nline1\nline2\nend', ['line1\nline2']), `begin\n${MASK}\nend`);
  });

  it('scrub - works with secrets found by secretValues on command output', () => {
    const secrets = secretValues(params, schema);
    const output = `curl -H "X-Key: sk-live-0123456789" -u ann:correct horse battery https://example.org/data.csv`;
    const clean = scrub(output, secrets);
    assert.ok(!clean.includes('sk-live-0123456789'));
    assert.ok(!clean.includes('correct horse battery'));
    assert.ok(clean.includes('https://example.org/data.csv'));
  });

  it('scrub - handles a 1 MB text with many occurrences quickly', () => {
    const text = 'prefix sk-1234 '.repeat(70_000);
    const started = Date.now();
    const out = scrub(text, ['sk-1234']);
    assert.ok(!out.includes('sk-1234'));
    assert.ok(Date.now() - started < 2000);
  });

  it(
    'scrub - masks a secret fully even when a shorter secret is a prefix of it',
    {
      todo:
        'BUG: src/redact.ts scrub replaces secrets in the given order, so with ["abcd", "abcdef"] the text "abcdef" becomes "***ef" and the tail of the longer secret leaks. Sort secrets by length, longest first, before replacing.',
    },
    () => {
      assert.equal(scrub('token abcdef', ['abcd', 'abcdef']), `token ${MASK}`);
    },
  );
});
