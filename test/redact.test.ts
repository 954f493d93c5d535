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

  it('maskParams - masks writeOnly values declared under additionalProperties (a map of secrets)', () => {
    const s = { type: 'object', properties: { headers: { type: 'object', additionalProperties: { type: 'string', writeOnly: true } } } };
    const p = { headers: { Authorization: 'Bearer top-secret' } };
    assert.deepEqual(maskParams(p, s), { headers: { Authorization: MASK } });
    assert.deepEqual(secretValues(p, s), ['Bearer top-secret']);
  });

  it('maskParams - masks writeOnly values reached through $ref or allOf', () => {
    const s = {
      $defs: { secret: { type: 'string', writeOnly: true } },
      properties: { a: { $ref: '#/$defs/secret' }, b: { allOf: [{ type: 'string' }, { writeOnly: true }] } },
    };
    const out = maskParams({ a: 'ref-secret', b: 'allof-secret' }, s);
    assert.deepEqual(out, { a: MASK, b: MASK });
  });
});

describe('maskParams: where a schema can put writeOnly', () => {
  it('maskParams - masks values matched by patternProperties', () => {
    const s = { patternProperties: { '^key_': { writeOnly: true } } };
    assert.deepEqual(maskParams({ key_a: 'secret-a', other: 'shown' }, s), { key_a: MASK, other: 'shown' });
  });

  it('maskParams - additionalProperties only applies to keys that properties and patternProperties do not name', () => {
    const s = { properties: { name: { type: 'string' } }, additionalProperties: { writeOnly: true } };
    assert.deepEqual(maskParams({ name: 'ann', token: 'secret-t' }, s), { name: 'ann', token: MASK });
  });

  it('maskParams - masks by position with prefixItems and by items after them', () => {
    const s = { properties: { list: { prefixItems: [{ type: 'string' }, { writeOnly: true }], items: { writeOnly: true } } } };
    assert.deepEqual(maskParams({ list: ['shown', 'secret-1', 'secret-2'] }, s), { list: ['shown', MASK, MASK] });
  });

  it('maskParams - masks when any anyOf or oneOf branch says writeOnly', () => {
    const s = {
      properties: {
        a: { anyOf: [{ type: 'number' }, { type: 'string', writeOnly: true }] },
        b: { oneOf: [{ writeOnly: true }, { type: 'null' }] },
      },
    };
    assert.deepEqual(maskParams({ a: 'secret-a', b: 'secret-b' }, s), { a: MASK, b: MASK });
  });

  it('maskParams - follows a $ref into $defs', () => {
    const s = {
      $defs: { creds: { type: 'object', properties: { password: { writeOnly: true } } } },
      properties: { login: { $ref: '#/$defs/creds' } },
    };
    assert.deepEqual(maskParams({ login: { user: 'u', password: 'secret-p' } }, s), { login: { user: 'u', password: MASK } });
  });

  it('maskParams - keywords beside a $ref apply too (writeOnly next to the $ref)', () => {
    const s = { $defs: { str: { type: 'string' } }, properties: { a: { $ref: '#/$defs/str', writeOnly: true } } };
    assert.deepEqual(maskParams({ a: 'secret-a' }, s), { a: MASK });
  });

  it(
    'maskParams - properties beside a $ref add to the referenced properties instead of replacing them',
    () => {
      const s = {
        $defs: { creds: { type: 'object', properties: { password: { writeOnly: true } } } },
        properties: { login: { $ref: '#/$defs/creds', properties: { otp: { writeOnly: true } } } },
      };
      assert.deepEqual(maskParams({ login: { user: 'u', password: 'secret-p', otp: 'secret-o' } }, s), {
        login: { user: 'u', password: MASK, otp: MASK },
      });
      assert.deepEqual(secretValues({ login: { password: 'secret-p', otp: 'secret-o' } }, s).sort(), ['secret-o', 'secret-p']);
    },
  );

  it('maskParams - a $ref with an escaped pointer (~1, %25) is followed', () => {
    const s = { $defs: { 'a/b': { writeOnly: true }, 'c%d': { writeOnly: true } }, properties: { x: { $ref: '#/$defs/a~1b' }, y: { $ref: '#/$defs/c%25d' } } };
    assert.deepEqual(maskParams({ x: 'secret-x', y: 'secret-y' }, s), { x: MASK, y: MASK });
  });

  it('maskParams - a $ref that points nowhere or outside the document is ignored, not thrown on', () => {
    const s = { properties: { a: { $ref: '#/$defs/missing' }, b: { $ref: 'https://example.org/schema.json' } } };
    assert.deepEqual(maskParams({ a: 'x', b: 'y' }, s), { a: 'x', b: 'y' });
  });

  it('maskParams - a $ref cycle terminates', () => {
    const s = { $defs: { loop: { $ref: '#/$defs/loop' } }, properties: { a: { $ref: '#/$defs/loop' } } };
    const started = Date.now();
    assert.deepEqual(maskParams({ a: 'x' }, s), { a: 'x' });
    assert.ok(Date.now() - started < 1000);
  });

  it('maskParams - a recursive schema masks secrets at each level', () => {
    const s = {
      $defs: { node: { type: 'object', properties: { pin: { writeOnly: true }, child: { $ref: '#/$defs/node' } } } },
      $ref: '#/$defs/node',
    };
    const out = maskParams({ pin: 'secret-0', child: { pin: 'secret-1', child: { pin: 'secret-2' } } }, s);
    assert.deepEqual(out, { pin: MASK, child: { pin: MASK, child: { pin: MASK } } });
  });

  it('maskParams - a patternProperties regex that does not compile is skipped, not thrown on', () => {
    assert.deepEqual(maskParams({ a: 'x' }, { patternProperties: { '(': { writeOnly: true } } }), { a: 'x' });
  });

  it('maskParams - an own "__proto__" key in params stays data in the masked copy', () => {
    const p = JSON.parse('{"__proto__": {"x": 1}, "apiKey": "secret-k"}') as Record<string, unknown>;
    const out = maskParams(p, schema);
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(out.apiKey, MASK);
  });

  it(
    'maskParams - a secret deeper than the depth limit is masked (fail closed), not shown',
    () => {
      const s = {
        $defs: { node: { type: 'object', properties: { pin: { type: 'string', writeOnly: true }, child: { $ref: '#/$defs/node' } } } },
        $ref: '#/$defs/node',
      };
      let p: Record<string, unknown> = { pin: 'deepest-secret' };
      for (let i = 0; i < 40; i++) p = { child: p, pin: `level-${i}-secret` };
      const text = JSON.stringify(maskParams(p, s));
      assert.ok(!text.includes('deepest-secret'), 'the deepest secret leaked');
      assert.ok(!/level-\d+-secret/.test(text), 'a level secret leaked');
    },
  );

  it(
    'maskParams - a small schema whose allOf branches double through $ref is masked quickly and without throwing',
    () => {
      const $defs: Record<string, unknown> = { s0: { type: 'string', writeOnly: true } };
      for (let i = 1; i <= 20; i++) $defs[`s${i}`] = { allOf: [{ $ref: `#/$defs/s${i - 1}` }, { $ref: `#/$defs/s${i - 1}` }] };
      const s = { $defs, properties: { a: { $ref: '#/$defs/s20' }, b: { type: 'string' } } };
      const started = Date.now();
      assert.deepEqual(maskParams({ a: 'secret-a', b: 'shown' }, s), { a: MASK, b: 'shown' });
      assert.deepEqual(secretValues({ a: 'secret-a', b: 'shown' }, s), ['secret-a']);
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
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

  it('scrub - masks a secret as it appears percent-encoded in a URL', () => {
    assert.equal(scrub('https://x.org/?k=a%20b%2Fc', ['a b/c']), `https://x.org/?k=${MASK}`);
    assert.equal(scrub('https://x.org/a%20b/c', ['a b/c']), `https://x.org/${MASK}`);
  });

  it('scrub - an empty secret is ignored instead of masking between every character', () => {
    assert.equal(scrub('abc', ['']), 'abc');
  });

  it('scrub - handles a 1 MB text with many occurrences quickly', () => {
    const text = 'prefix sk-1234 '.repeat(70_000);
    const started = Date.now();
    const out = scrub(text, ['sk-1234']);
    assert.ok(!out.includes('sk-1234'));
    assert.ok(Date.now() - started < 2000);
  });

  it('scrub - masks a secret fully even when a shorter secret is a prefix of it', () => {
    assert.equal(scrub('token abcdef', ['abcd', 'abcdef']), `token ${MASK}`);
  });
});
