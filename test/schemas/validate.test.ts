import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidFileError, type Problem } from '../../src/errors.js';
import { laneFor } from '../../src/recipes/recipe.js';
import { readRecipeText } from '../../src/recipes/registry.js';
import { parseYaml } from '../../src/schemas/document.js';
import { dottedPath, pathSegments } from '../../src/schemas/messages.js';
import { compileParamsSchema, fileKind, paramsProblems, schemaProblems, type SchemaName } from '../../src/schemas/validate.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The problems an InvalidFileError carries; fails when fn does not throw one. */
function invalid(fn: () => unknown): Problem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidFileError, `expected InvalidFileError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    return err.problems;
  }
  assert.fail('expected an InvalidFileError, but nothing was thrown');
}

function problemsOf(name: SchemaName, text: string): Problem[] {
  return schemaProblems(name, parseYaml(text));
}

function only(problems: Problem[]): Problem {
  assert.equal(problems.length, 1, `expected one problem, got ${JSON.stringify(problems)}`);
  return problems[0];
}

/**
 * Runs a snippet in a fresh node process (so a hard crash cannot take the
 * test runner with it). The snippet gets `parseYaml` in scope and prints a result.
 */
function isolated(body: string, timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-validate-'));
  try {
    const script = path.join(dir, 'probe.mts');
    const documentUrl = pathToFileURL(path.join(repoRoot, 'src/schemas/document.ts')).href;
    writeFileSync(script, `import { parseYaml } from ${JSON.stringify(documentUrl)};\n${body}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, timeout: timeoutMs, encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const billionLaughs = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
  'h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]',
  'i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]',
].join('\n');

describe('parseYaml', () => {
  it('parseYaml - reads a YAML mapping', () => {
    assert.deepEqual(parseYaml('kind: request\nrecipe: pkg\nparams:\n  n: 5\n').value, { kind: 'request', recipe: 'pkg', params: { n: 5 } });
  });

  it('parseYaml - reads JSON as YAML', () => {
    assert.deepEqual(parseYaml('{"kind": "request", "recipe": "pkg", "params": {"a": [1, 2]}}').value, {
      kind: 'request',
      recipe: 'pkg',
      params: { a: [1, 2] },
    });
  });

  it('parseYaml - uses YAML 1.2: yes/no/on/off stay strings and 0777 is decimal', () => {
    assert.deepEqual(parseYaml('a: yes\nb: no\nc: on\nd: 0777\n').value, { a: 'yes', b: 'no', c: 'on', d: 777 });
  });

  it('parseYaml - accepts a byte order mark and CRLF line ends', () => {
    assert.deepEqual(parseYaml('\uFEFFa: 1\r\nb: 2\r\n').value, { a: 1, b: 2 });
  });

  it('parseYaml - an empty file is refused as empty', () => {
    for (const text of ['', '\n\n', '   \n', '# only a comment\n']) {
      const p = only(invalid(() => parseYaml(text)));
      assert.equal(p.message, 'the file is empty', JSON.stringify(text));
    }
  });

  it('parseYaml - a file holding only "---" or null parses to null (fileKind then refuses it)', () => {
    assert.equal(parseYaml('---\n').value, null);
    assert.equal(parseYaml('null\n').value, null);
  });

  it('parseYaml - refuses a binary file containing NUL bytes', () => {
    const p = only(invalid(() => parseYaml('kind: request\u0000\u0001\u0002')));
    assert.match(p.message, /binary/);
  });

  it('parseYaml - an escaped \\0 inside a quoted string is text, not binary', () => {
    assert.deepEqual(parseYaml('a: "x\\0y"\n').value, { a: 'x\u0000y' });
  });

  it('parseYaml - refuses more than one document and points at the second', () => {
    const p = only(invalid(() => parseYaml('a: 1\n---\nb: 2\n')));
    assert.match(p.message, /more than one YAML document/);
    assert.equal(p.line, 2);
    assert.equal(p.col, 1);
  });

  it('parseYaml - refuses duplicate keys with the line and column of the repeat', () => {
    const p = only(invalid(() => parseYaml('kind: request\nrecipe: a\nrecipe: b\n')));
    assert.match(p.message, /^YAML syntax: Map keys must be unique/);
    assert.equal(p.line, 3);
    assert.equal(p.col, 1);
  });

  it('parseYaml - refuses duplicate keys in nested mappings', () => {
    const p = only(invalid(() => parseYaml('params:\n  url: a\n  url: b\n')));
    assert.match(p.message, /unique/);
    assert.equal(p.line, 3);
    assert.equal(p.col, 3);
  });

  it('parseYaml - an unterminated quote is a syntax error with a position', () => {
    const p = only(invalid(() => parseYaml('kind: request\nrecipe: "unterminated\n')));
    assert.match(p.message, /^YAML syntax: Missing closing "quote/);
    assert.equal(typeof p.line, 'number');
    assert.equal(typeof p.col, 'number');
  });

  it('parseYaml - tab indentation is a syntax error at its line', () => {
    const p = only(invalid(() => parseYaml('a:\n\tb: 1\n')));
    assert.match(p.message, /Tabs are not allowed/);
    assert.equal(p.line, 2);
    assert.equal(p.col, 1);
  });

  it('parseYaml - an unclosed flow sequence is a syntax error at its line', () => {
    const p = only(invalid(() => parseYaml('a: 1\nb: [1, 2\nc: 3\n')));
    assert.match(p.message, /^YAML syntax: /);
    assert.ok(p.line !== undefined && p.line >= 2, JSON.stringify(p));
  });

  it('parseYaml - syntax messages are one line, without the source excerpt or " at line N"', () => {
    for (const text of ['a: 1\n  b: 2\n', 'a: [1\n', 'a: "x\n', 'k: v\nk: w\n']) {
      for (const p of invalid(() => parseYaml(text))) {
        assert.ok(!p.message.includes('\n'), JSON.stringify(p.message));
        assert.ok(!/ at line \d+/.test(p.message), p.message);
        assert.ok(p.line !== undefined, JSON.stringify(p));
      }
    }
  });

  it('parseYaml - an alias to an unknown anchor is refused', () => {
    const p = only(invalid(() => parseYaml('a: *nope\n')));
    assert.match(p.message, /alias/i);
  });

  it('parseYaml - a few aliases are fine', () => {
    assert.deepEqual(parseYaml('a: &x [1, 2]\nb: *x\nc: *x\n').value, { a: [1, 2], b: [1, 2], c: [1, 2] });
  });

  it('parseYaml - refuses a billion laughs alias bomb quickly', () => {
    const started = Date.now();
    const p = only(invalid(() => parseYaml(billionLaughs)));
    assert.match(p.message, /alias/i);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  });

  it('parseYaml - refuses an alias bomb hidden in a request params block quickly', () => {
    const text = `kind: request\nrecipe: pkg\nparams:\n${billionLaughs.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
    const started = Date.now();
    invalid(() => parseYaml(text));
    assert.ok(Date.now() - started < 1000);
  });

  it('parseYaml - accepts 64 levels of nesting and refuses 65', () => {
    assert.ok(parseYaml(`${'['.repeat(64)}${']'.repeat(64)}`).value);
    const p = only(invalid(() => parseYaml(`${'['.repeat(65)}${']'.repeat(65)}`)));
    assert.equal(p.message, 'nests deeper than 64 levels');
  });

  it('parseYaml - refuses 65 levels of block-mapping nesting', () => {
    const text = `${Array.from({ length: 65 }, (_, i) => `${'  '.repeat(i)}k:`).join('\n')} 1\n`;
    const p = only(invalid(() => parseYaml(text)));
    assert.equal(p.message, 'nests deeper than 64 levels');
  });

  it('parseYaml - 100 000 levels of flow nesting are refused in a fresh process, quickly and without a crash', () => {
    const r = isolated(`
      const t0 = Date.now();
      try { parseYaml('['.repeat(100000) + ']'.repeat(100000)); console.log('ACCEPTED'); }
      catch (e) { console.log(e && e.constructor && e.constructor.name, Date.now() - t0); }
    `);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const [name, ms] = r.stdout.trim().split(' ');
    assert.equal(name, 'InvalidFileError');
    assert.ok(Number(ms) < 10_000, r.stdout);
  });

  it(
    'parseYaml - very deep nesting (1000 levels) gives one clear "nests deeper" problem, not stack overflow messages',
    () => {
      const r = isolated(`
        try { parseYaml('['.repeat(1000) + ']'.repeat(1000)); console.log(JSON.stringify('ACCEPTED')); }
        catch (e) { console.log(JSON.stringify(e.problems)); }
      `);
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const problems = JSON.parse(r.stdout.trim()) as Problem[];
      assert.equal(problems.length, 1, r.stdout);
      assert.equal(problems[0].message, 'nests deeper than 64 levels');
    },
  );

  it(
    'parseYaml - a 50 000-level nested file read after a tab-indented file is refused, not a fatal crash of the process',
    () => {
      // At 50 000 levels the abort happened in 8 of 8 fresh processes here; try three to be sure.
      for (let run = 0; run < 3; run++) {
        const r = isolated(`
          try { parseYaml('a:\\n\\tb: 1\\n'); } catch {}
          try { parseYaml('['.repeat(50000) + ']'.repeat(50000)); console.log('ACCEPTED'); }
          catch (e) { console.log(e.constructor.name); }
        `);
        assert.equal(r.status, 0, `run ${run}: exit ${r.status}: ${r.stderr.split('\n').find((l) => l.includes('FATAL')) ?? r.stderr.slice(-500)}`);
        assert.equal(r.stdout.trim(), 'InvalidFileError');
      }
    },
  );

  it('parseYaml - tags do not build code or objects: !!js/function stays a string', () => {
    assert.equal(parseYaml('!!js/function "function () { return 1 }"\n').value, 'function () { return 1 }');
    assert.deepEqual(parseYaml('a: !custom x\n').value, { a: 'x' });
  });

  it('parseYaml - an own "__proto__" key stays data and does not change the prototype', () => {
    const value = parseYaml('__proto__: {polluted: yes}\n').value as Record<string, unknown>;
    assert.ok(Object.hasOwn(value, '__proto__'));
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('parseYaml - a 250 kB mapping of 5000 keys and a 1 MB string parse in reasonable time', () => {
    const text = `kind: request\nrecipe: pkg\nparams:\n${Array.from({ length: 5000 }, (_, i) => `  k${i}: ${'v'.repeat(40)}`).join('\n')}\n`;
    const started = Date.now();
    const value = parseYaml(text).value as { params: Record<string, string> };
    assert.equal(Object.keys(value.params).length, 5000);
    assert.equal((parseYaml(`a: "${'x'.repeat(1_000_000)}"\n`).value as { a: string }).a.length, 1_000_000);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });

  it('parseYaml - locate finds keys and values by path, and the nearest parent for missing ones', () => {
    const parsed = parseYaml('kind: request\nparams:\n  list:\n    - a\n    - b\n');
    assert.deepEqual(parsed.locate(['kind']), { line: 1, col: 7 });
    assert.deepEqual(parsed.locate(['kind'], true), { line: 1, col: 1 });
    assert.deepEqual(parsed.locate(['params', 'list', '1']), { line: 5, col: 7 });
    assert.deepEqual(parsed.locate(['params', 'nope']), { line: 3, col: 3 });
    assert.deepEqual(parsed.locate([]), { line: 1, col: 1 });
  });
});

describe('pathSegments and dottedPath', () => {
  it('pathSegments - splits a JSON pointer and unescapes ~1 and ~0', () => {
    assert.deepEqual(pathSegments(''), []);
    assert.deepEqual(pathSegments('/steps/0/fetch'), ['steps', '0', 'fetch']);
    assert.deepEqual(pathSegments('/a~1b/c~0d'), ['a/b', 'c~d']);
  });

  it('dottedPath - writes indexes in brackets and names with dots', () => {
    assert.equal(dottedPath(['steps', '0', 'fetch', 'to']), 'steps[0].fetch.to');
    assert.equal(dottedPath(['steps', 1, 'run']), 'steps[1].run');
    assert.equal(dottedPath([]), '');
    assert.equal(dottedPath(['0', 'a']), '[0].a');
  });
});

describe('fileKind', () => {
  it('fileKind - returns the kind of a request, cancel and recipe', () => {
    assert.equal(fileKind(parseYaml('kind: request\n')), 'request');
    assert.equal(fileKind(parseYaml('kind: cancel\n')), 'cancel');
    assert.equal(fileKind(parseYaml('kind: recipe\n')), 'recipe');
  });

  it('fileKind - a missing kind is required, listing the kinds', () => {
    const p = only(invalid(() => fileKind(parseYaml('recipe: pkg\n'))));
    assert.equal(p.path, 'kind');
    assert.equal(p.message, 'is required (one of request, cancel, recipe)');
  });

  it('fileKind - an unknown kind is named, with its line and column', () => {
    const p = only(invalid(() => fileKind(parseYaml('# hi\nkind: reqest\n'))));
    assert.equal(p.message, 'unknown kind "reqest" (expected one of request, cancel, recipe)');
    assert.equal(p.line, 2);
    assert.equal(p.col, 7);
  });

  it('fileKind - a non-string kind is unknown', () => {
    const p = only(invalid(() => fileKind(parseYaml('kind: [request]\n'))));
    assert.match(p.message, /^unknown kind \["request"\]/);
  });

  it('fileKind - a list, a scalar or null is not a mapping', () => {
    for (const text of ['- kind: request\n', 'just text\n', 'null\n', '42\n']) {
      const p = only(invalid(() => fileKind(parseYaml(text))));
      assert.match(p.message, /^must be a mapping with a "kind"/, text);
    }
  });

  it('fileKind - honours the allowed kinds', () => {
    const p = only(invalid(() => fileKind(parseYaml('kind: request\n'), ['recipe'])));
    assert.equal(p.message, 'unknown kind "request" (expected one of recipe)');
  });
});

describe('schemaProblems: request', () => {
  it('schemaProblems - a complete request has no problems', () => {
    const text = [
      'kind: request',
      'recipe: package-url',
      'id: order-4711',
      'params:',
      '  url: https://data.example.org/big.csv',
      'notify:',
      '  email: someone@example.org',
      '  webhook: https://client.example.org/hooks/hopper?token=abc',
      'priority: 5',
      'notBefore: 2026-12-01T03:00:00Z',
      '',
    ].join('\n');
    assert.deepEqual(problemsOf('request', text), []);
  });

  it('schemaProblems - an unknown key says "did you mean" and points at the key', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nparmas: {}\n'));
    assert.deepEqual(p, { path: 'parmas', message: 'unknown key (did you mean "params"?)', line: 3, col: 1 });
  });

  it('schemaProblems - a nested unknown key says "did you mean" with its own line and column', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nnotify:\n  webhok: https://x.org\n'));
    assert.deepEqual(p, { path: 'notify.webhok', message: 'unknown key (did you mean "webhook"?)', line: 4, col: 3 });
  });

  it('schemaProblems - an unknown key far from every known key lists the known keys', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nzzzzzz: 1\n'));
    assert.equal(p.path, 'zzzzzz');
    assert.equal(p.message, 'unknown key (known keys: kind, recipe, id, params, notify, priority, notBefore)');
  });

  it('schemaProblems - a missing required key is named and points at its parent', () => {
    const p = only(problemsOf('request', 'kind: request\nparams: {}\n'));
    assert.deepEqual(p, { path: 'recipe', message: 'is required', line: 1, col: 1 });
  });

  it('schemaProblems - a wrong type says what it must be, at the value', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\npriority: high\n'));
    assert.deepEqual(p, { path: 'priority', message: 'must be a whole number', line: 3, col: 11 });
  });

  it('schemaProblems - params must be a mapping', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nparams: [1, 2]\n'));
    assert.deepEqual(p, { path: 'params', message: 'must be a mapping (key: value)', line: 3, col: 9 });
  });

  it('schemaProblems - priority outside -1000..1000 is refused', () => {
    assert.equal(only(problemsOf('request', 'kind: request\nrecipe: pkg\npriority: 5000\n')).message, 'must be at most 1000');
    assert.equal(only(problemsOf('request', 'kind: request\nrecipe: pkg\npriority: -5000\n')).message, 'must be at least -1000');
  });

  it('schemaProblems - notify.webhook that is not a URI is refused at its line and column', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nnotify:\n  webhook: not a url\n'));
    assert.deepEqual(p, { path: 'notify.webhook', message: 'must be an http or https URL', line: 4, col: 12 });
  });

  it('schemaProblems - notify.webhook with another scheme (ftp, javascript, file) is refused', () => {
    for (const url of ['ftp://x.org/a', 'javascript:alert(1)', 'file:///etc/passwd']) {
      const p = only(problemsOf('request', `kind: request\nrecipe: pkg\nnotify:\n  webhook: "${url}"\n`));
      assert.equal(p.path, 'notify.webhook', url);
      assert.equal(p.message, 'must be an http or https URL', url);
    }
  });

  it('schemaProblems - notify.email must be an email address', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nnotify:\n  email: not-an-email\n'));
    assert.deepEqual(p, { path: 'notify.email', message: 'must be an email address', line: 4, col: 10 });
  });

  it('schemaProblems - notBefore must be a date and time', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nnotBefore: tomorrow\n'));
    assert.equal(p.path, 'notBefore');
    assert.equal(p.message, 'must be a date and time like 2026-12-01T03:00:00Z');
  });

  it('schemaProblems - a bad id explains the allowed characters', () => {
    const p = only(problemsOf('request', 'kind: request\nrecipe: pkg\nid: "has spaces"\n'));
    assert.equal(p.message, 'must be 1 to 128 letters, digits, dots, dashes, colons or underscores');
  });

  it('schemaProblems - a wrong kind value names what it must be', () => {
    const p = only(problemsOf('request', 'kind: cancel\nrecipe: pkg\n'));
    assert.deepEqual(p, { path: 'kind', message: 'must be "request"', line: 1, col: 7 });
  });

  it('schemaProblems - reports every problem of a file, not just the first', () => {
    const problems = problemsOf('request', 'kind: request\npriority: x\nextra: 1\nnotify:\n  webhook: nope\n');
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['extra', 'notify.webhook', 'priority', 'recipe']);
  });

  it('schemaProblems - a request that is not a mapping says so', () => {
    const p = only(problemsOf('request', '- a\n- b\n'));
    assert.equal(p.message, 'must be a mapping (key: value)');
  });
});

describe('schemaProblems: cancel and recipe', () => {
  it('schemaProblems - a cancel needs a job', () => {
    assert.deepEqual(problemsOf('cancel', 'kind: cancel\njob: j-1\n'), []);
    assert.deepEqual(only(problemsOf('cancel', 'kind: cancel\n')), { path: 'job', message: 'is required', line: 1, col: 1 });
    assert.equal(only(problemsOf('cancel', 'kind: cancel\njob: ""\n')).message, 'must not be empty');
    assert.equal(only(problemsOf('cancel', `kind: cancel\njob: ${'x'.repeat(129)}\n`)).message, 'must be at most 128 characters');
  });

  it('schemaProblems - an enum value lists the allowed values, at the value', () => {
    const p = only(problemsOf('recipe', 'kind: recipe\nname: pkg\nlane: medium\nsteps:\n  - run: {command: [echo]}\n'));
    assert.deepEqual(p, { path: 'lane', message: 'must be one of: "fast", "slow", "auto"', line: 3, col: 7 });
  });

  it('schemaProblems - a step with two kinds is refused with the step hint', () => {
    const problems = problemsOf('recipe', 'kind: recipe\nname: pkg\nsteps:\n  - fetch: {url: a, to: b}\n    zip: {from: a, to: b}\n');
    assert.deepEqual(only(problems), { path: 'steps[0]', message: 'a step is exactly one of: fetch, fetchPages, run, zip, container', line: 4, col: 5 });
  });

  it('schemaProblems - a missing step field is named with the step index', () => {
    const p = only(problemsOf('recipe', 'kind: recipe\nname: pkg\nsteps:\n  - fetch: {url: "https://x"}\n'));
    assert.deepEqual(p, { path: 'steps[0].fetch.to', message: 'is required', line: 4, col: 12 });
  });

  it('schemaProblems - an empty steps list is refused', () => {
    const p = only(problemsOf('recipe', 'kind: recipe\nname: pkg\nsteps: []\n'));
    assert.deepEqual(p, { path: 'steps', message: 'must have at least 1 item', line: 3, col: 8 });
  });

  it('schemaProblems - a bad duration and a bad size explain how to write them', () => {
    const problems = problemsOf('recipe', 'kind: recipe\nname: pkg\ntimeout: 10 parsecs\nresources: {memory: lots}\nsteps:\n  - run: {command: [echo]}\n');
    assert.deepEqual([...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)), [
      { path: 'timeout', message: 'must be a duration like 30s, 10m, 24h or 7d', line: 3, col: 10 },
      { path: 'resources.memory', message: 'must be a size like 512MiB, 2GiB or 1000', line: 4, col: 21 },
    ]);
  });

  it('schemaProblems - a negative integer size is refused', () => {
    const p = only(problemsOf('recipe', 'kind: recipe\nname: pkg\noutput: {minBytes: -1}\nsteps:\n  - run: {command: [echo]}\n'));
    assert.equal(p.path, 'output.minBytes');
    assert.equal(p.message, 'must be at least 0');
  });
});

describe('params schemas', () => {
  it('compileParamsSchema - compiles a draft 2020-12 schema and fills defaults', () => {
    const compiled = compileParamsSchema({ type: 'object', properties: { n: { type: 'integer', default: 3 } } });
    assert.ok('validate' in compiled);
    const params: Record<string, unknown> = {};
    assert.equal(compiled.validate(params), true);
    assert.deepEqual(params, { n: 3 });
  });

  it('compileParamsSchema - an invalid schema gives a reason instead of throwing', () => {
    const compiled = compileParamsSchema({ type: 'nope' });
    assert.ok('error' in compiled);
    assert.match(compiled.error, /^is not a usable JSON Schema/);
  });

  it('compileParamsSchema - a schema with its own $id can be compiled twice', () => {
    const schema = { $id: 'https://example.org/p.json', type: 'object' };
    assert.ok('validate' in compileParamsSchema(schema));
    assert.ok('validate' in compileParamsSchema(schema));
  });

  it('paramsProblems - prefixes problems with params and places them in the request file', () => {
    const compiled = compileParamsSchema({ type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } });
    assert.ok('validate' in compiled);
    const parsed = parseYaml('kind: request\nrecipe: pkg\nparams:\n  url: not a uri\n');
    const p = only(paramsProblems(compiled.validate, (parsed.value as { params: unknown }).params, parsed));
    assert.deepEqual(p, { path: 'params.url', message: 'must be a URI (like https://example.org/file.csv)', line: 4, col: 8 });
    const missing = only(paramsProblems(compiled.validate, {}));
    assert.deepEqual(missing, { path: 'params.url', message: 'is required' });
  });
});

describe('readRecipeText', () => {
  const valid = [
    'kind: recipe',
    'name: package-url',
    'description: Fetch a file, zip it, email the link',
    'params:',
    '  type: object',
    '  required: [url]',
    '  properties:',
    '    url: { type: string, format: uri }',
    '    apiKey: { type: string, writeOnly: true }',
    'lane: fast',
    'resources: { cpus: 1, memory: 512MiB, disk: 2GiB }',
    'timeout: 30m',
    'retries: { attempts: 3, backoff: exponential, delay: 10s }',
    'cache: 24h',
    'steps:',
    '  - fetch: { url: "{{params.url}}", to: in/data.csv, maxBytes: 5GiB }',
    '  - run: { command: [gzip, -k, in/data.csv], timeout: 5m }',
    '  - zip: { from: in, to: "{{job.id}}.zip", level: 6 }',
    'output:',
    '  files: ["*.zip"]',
    '  inlineBelow: 64KiB',
    'notify:',
    '  email:',
    '    to: "{{request.notify.email}}"',
    '    subject: "Your {{recipe.name}} is ready"',
    '    body: "Download: {{output.links}}"',
    '',
  ].join('\n');

  function recipeWithSteps(steps: string, head = ''): string {
    return `kind: recipe\nname: pkg\n${head}steps:\n${steps}`;
  }

  it('readRecipeText - a valid recipe loads with parsed sizes and durations', () => {
    const r = readRecipeText(valid);
    assert.equal(r.name, 'package-url');
    assert.equal(r.lane, 'fast');
    assert.equal(r.timeoutMs, 30 * 60_000);
    assert.equal(r.cacheMs, 24 * 3_600_000);
    assert.deepEqual(r.resources, { cpus: 1, memory: 512 * 1024 ** 2, disk: 2 * 1024 ** 3 });
    assert.deepEqual(r.retries, { attempts: 3, backoff: 'exponential', delayMs: 10_000 });
    assert.equal(r.steps.length, 3);
    assert.deepEqual(r.steps[0], {
      kind: 'fetch',
      url: '{{params.url}}',
      to: 'in/data.csv',
      maxBytes: 5 * 1024 ** 3,
      timeoutMs: 30 * 60_000,
      maxRedirects: 5,
      headers: {},
    });
    assert.deepEqual(r.notify.email?.to, ['{{request.notify.email}}']);
    assert.equal(r.output.inlineBelow, 64 * 1024);
    assert.match(r.version, /^[0-9a-f]{64}$/);
    assert.equal(r.validateParams({ url: 'https://x.org/a' }), true);
    assert.equal(r.validateParams({}), false);
  });

  it('readRecipeText - the version changes with the content and ignores key order', () => {
    const a = readRecipeText(recipeWithSteps('  - run: {command: [echo, a]}\n'));
    const b = readRecipeText(recipeWithSteps('  - run: {command: [echo, b]}\n'));
    const c = readRecipeText('steps:\n  - run: {command: [echo, a]}\nname: pkg\nkind: recipe\n');
    assert.notEqual(a.version, b.version);
    assert.equal(a.version, c.version);
  });

  it('readRecipeText - a literal "to: ../x" path is refused, mentioning ".."', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - fetch:\n      url: https://x.org/a\n      to: ../x\n'))));
    assert.equal(p.path, 'steps[0].fetch.to');
    assert.ok(p.message.includes('".."'), p.message);
    assert.equal(p.line, 6);
    assert.equal(p.col, 11);
  });

  it('readRecipeText - ".." hidden in the middle of a path or in zip.from is refused', () => {
    for (const steps of ['  - fetch: {url: "https://x", to: "a/../../x"}\n', '  - zip: {from: "out/..", to: a.zip}\n', '  - zip: {from: out, to: "a\\\\..\\\\..\\\\b.zip"}\n']) {
      const p = only(invalid(() => readRecipeText(recipeWithSteps(steps))));
      assert.ok(p.message.includes('".."'), `${steps}: ${p.message}`);
    }
  });

  it('readRecipeText - an absolute path is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - fetch:\n      url: https://x.org/a\n      to: /etc/cron.d/x\n'))));
    assert.equal(p.path, 'steps[0].fetch.to');
    assert.match(p.message, /must be relative to the job's work dir, not absolute/);
    assert.equal(p.line, 6);
  });

  it('readRecipeText - Windows drive and UNC paths are refused as absolute', () => {
    for (const to of ['C:\\\\x', '\\\\\\\\server\\\\share']) {
      const p = only(invalid(() => readRecipeText(recipeWithSteps(`  - zip: {from: out, to: "${to}"}\n`))));
      assert.match(p.message, /not absolute/, to);
    }
  });

  it('readRecipeText - a literal non-http fetch URL is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - fetch: {url: "file:///etc/passwd", to: x}\n'))));
    assert.equal(p.path, 'steps[0].fetch.url');
    assert.match(p.message, /must be an http or https URL/);
  });

  it('readRecipeText - a placeholder reading an unknown root ({{foo.bar}}) is refused with its position', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - fetch:\n      url: "{{foo.bar}}"\n      to: x\n'))));
    assert.deepEqual(p, {
      path: 'steps[0].fetch.url',
      message: '"{{foo.bar}}" reads "foo", which is not one of params, request, recipe, job, output',
      line: 5,
      col: 12,
    });
  });

  it('readRecipeText - a malformed placeholder is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo, "{{ params.a b }}"]}\n'))));
    assert.match(p.message, /is not a placeholder/);
  });

  it('readRecipeText - {{output.links}} in a step is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run:\n      command: [echo, "{{output.links}}"]\n'))));
    assert.equal(p.path, 'steps[0].run.command[1]');
    assert.match(p.message, /steps run before there is output/);
    assert.equal(p.line, 5);
  });

  it('readRecipeText - {{output.links}} in notify is allowed', () => {
    assert.doesNotThrow(() => readRecipeText(valid));
  });

  it('readRecipeText - a bad placeholder in notify is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo]}\nnotify:\n  email:\n    body: "{{secret.x}}"\n'))));
    assert.equal(p.path, 'notify.email.body');
  });

  it('readRecipeText - templated paths are not judged at load time', () => {
    assert.doesNotThrow(() => readRecipeText(recipeWithSteps('  - fetch: {url: "{{params.url}}", to: "{{params.name}}.csv"}\n')));
  });

  it('readRecipeText - an invalid params JSON Schema is refused at params', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'params:\n  type: nope\n'))));
    assert.equal(p.path, 'params');
    assert.match(p.message, /^is not a usable JSON Schema/);
    assert.equal(p.line, 4);
  });

  it('readRecipeText - a params schema with an unresolvable $ref is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'params:\n  $ref: "#/nowhere"\n'))));
    assert.match(p.message, /^is not a usable JSON Schema/);
  });

  it('readRecipeText - lane auto without slowWhen is refused', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'lane: auto\n'))));
    assert.deepEqual(p, { path: 'slowWhen', message: 'is required with lane: auto', line: 3, col: 7 });
  });

  it('readRecipeText - lane auto with slowWhen loads and picks the lane by the param', () => {
    const r = readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'lane: auto\nslowWhen: {param: limit, over: 100}\n'));
    assert.equal(laneFor(r, { limit: 100 }), 'fast');
    assert.equal(laneFor(r, { limit: 101 }), 'slow');
    assert.equal(laneFor(r, {}), 'slow');
    assert.equal(laneFor(r, { limit: 'many' }), 'slow');
  });

  it('readRecipeText - slowWhen.minus takes another param off first (limit - offset, as ckanpackager counts)', () => {
    const r = readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'lane: auto\nslowWhen: {param: limit, minus: offset, over: 100}\n'));
    assert.equal(laneFor(r, { limit: 150, offset: 60 }), 'fast');
    assert.equal(laneFor(r, { limit: 150, offset: 40 }), 'slow');
    assert.equal(laneFor(r, { limit: 90 }), 'fast', 'no offset: nothing taken off');
    assert.equal(laneFor(r, { offset: 10 }), 'slow', 'no limit: all rows');
    assert.equal(laneFor(r, { limit: 150, offset: 'x' }), 'slow');
  });

  it('readRecipeText - a bad name pattern is refused with the rule in words', () => {
    for (const name of ['Bad_Name', '-abc', 'a'.repeat(64), '"has space"', '""']) {
      const p = only(invalid(() => readRecipeText(`kind: recipe\nname: ${name}\nsteps:\n  - run: {command: [echo]}\n`)));
      assert.equal(p.path, 'name', name);
      assert.match(p.message, /lowercase letters, digits or dashes/, name);
      assert.equal(p.line, 2);
      assert.equal(p.col, 7);
    }
  });

  it('readRecipeText - the longest allowed name (63 characters) loads', () => {
    assert.equal(readRecipeText(`kind: recipe\nname: ${'a'.repeat(63)}\nsteps:\n  - run: {command: [echo]}\n`).name, 'a'.repeat(63));
  });

  it('readRecipeText - an unknown step kind lists the known ones', () => {
    const p = only(invalid(() => readRecipeText(recipeWithSteps('  - copy: {from: a}\n'))));
    assert.deepEqual(p, { path: 'steps[0].copy', message: 'unknown key (known keys: fetch, fetchPages, run, zip, container)', line: 4, col: 5 });
  });

  it('readRecipeText - there is no way to ask for privileges: unknown keys in a step are refused', () => {
    const problems = invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo], privileged: true}\n')));
    assert.ok(problems.some((p) => p.path === 'steps[0].run.privileged' && p.message.startsWith('unknown key')), JSON.stringify(problems));
  });

  it('readRecipeText - a request file is not a recipe', () => {
    const p = only(invalid(() => readRecipeText('kind: request\nrecipe: pkg\n')));
    assert.equal(p.message, 'unknown kind "request" (expected one of recipe)');
  });

  it('readRecipeText - problems are sorted by line', () => {
    const problems = invalid(() => readRecipeText('kind: recipe\nname: BAD\ntimeout: soon\nlane: x\nsteps: []\n'));
    const lines = problems.map((p) => p.line ?? 0);
    assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
    assert.equal(problems.length, 4);
  });

  it('readRecipeText - every size form the schema admits parses, like 512Mi', () => {
    const r = readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'resources: {memory: 512Mi}\n'));
    assert.equal(r.resources.memory, 512 * 1024 ** 2);
  });

  it(
    'readRecipeText - a size or duration too large to hold is an InvalidFileError with its field and line',
    () => {
      const p = only(invalid(() => readRecipeText(recipeWithSteps('  - run: {command: [echo]}\n', 'timeout: 999999999999999999999d\n'))));
      assert.equal(p.path, 'timeout');
      assert.equal(p.line, 3);
    },
  );

  it(
    'readRecipeText - reports bad paths together with bad placeholders (every problem at once)',
    () => {
      const problems = invalid(() =>
        readRecipeText(recipeWithSteps('  - zip: {from: out, to: "/b.zip"}\n  - run: {command: [echo, "{{nope}}"]}\n')),
      );
      assert.deepEqual(problems.map((p) => p.path).sort(), ['steps[0].zip.to', 'steps[1].run.command[1]']);
    },
  );
});
