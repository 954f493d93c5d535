import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Step } from '../../src/recipes/recipe.js';
import { csvField, fetchPagesStep } from '../../src/steps/fetchPages.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { afterStep, cleanupStepHarnesses, isCode, stepHarness } from '../helpers/steps.js';

type PagesStep = Extract<Step, { kind: 'fetchPages' }>;

afterEach(cleanupStepHarnesses);

const row = (i: number): Record<string, unknown> => ({ _id: i, name: `row ${i}`, note: i % 7 === 0 ? 'has, a comma and "quotes"\nand a newline' : 'plain', value: i * 1.5 });

/** A CKAN datastore_search in miniature: offset/limit, result.records and result.total. */
async function datastore(total: number, fail: (offset: number, hit: number) => boolean = () => false): Promise<TestServer & { pages: string[] }> {
  const pages: string[] = [];
  let hits = 0;
  const s = await httpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const offset = Number(url.searchParams.get('offset'));
    const limit = Number(url.searchParams.get('limit'));
    pages.push(url.search);
    if (fail(offset, hits++)) return void res.writeHead(503).end('busy');
    const records = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, k) => row(offset + k));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ success: true, result: { records, total } }));
  });
  afterStep(() => s.close());
  return Object.assign(s, { pages });
}

function pagesOf(o: Partial<PagesStep> & { url: string; to: string }): PagesStep {
  return { kind: 'fetchPages', query: {}, pageSize: 1000, records: 'result.records', total: 'result.total', limit: undefined, format: undefined, headers: {}, timeoutMs: 10_000, ...o };
}

describe('fetchPagesStep', () => {
  it('streams every page to CSV with a header and RFC 4180 quoting, row for row', async () => {
    const api = await datastore(12_345);
    const h = stepHarness({ scope: { params: { resource: 'abc-123' } } });
    await fetchPagesStep(pagesOf({ url: `${api.url}/api/3/action/datastore_search`, query: { resource_id: '{{params.resource}}', filters: { kind: 'x' } }, to: 'out/data.csv' }), h.env);
    const lines = readFileSync(path.join(h.workDir, 'out', 'data.csv'), 'utf8');
    const expected = ['_id,name,note,value', ...Array.from({ length: 12_345 }, (_, i) => Object.values(row(i)).map(csvField).join(','))].join('\r\n') + '\r\n';
    assert.equal(lines, expected);
    assert.equal(api.pages.length, 13);
    assert.match(api.pages[0], /resource_id=abc-123/);
    assert.match(decodeURIComponent(api.pages[0]), /filters=\{"kind":"x"\}/);
    assert.ok(!existsSync(path.join(h.workDir, 'out', 'data.csv.part')));
  });

  it('stops at limit, and writes JSONL when asked', async () => {
    const api = await datastore(10_000);
    const h = stepHarness({ scope: { params: { limit: 2500 } } });
    await fetchPagesStep(pagesOf({ url: api.url, limit: '{{params.limit}}', to: 'rows.jsonl' }), h.env);
    const rows = readFileSync(path.join(h.workDir, 'rows.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { _id: number });
    assert.equal(rows.length, 2500);
    assert.equal(rows[2499]._id, 2499);
  });

  it('tries a failing page again, and fails naming the offset when it keeps failing', async () => {
    const flaky = await datastore(3000, (offset, hit) => offset === 1000 && hit < 3);
    const h = stepHarness();
    await fetchPagesStep(pagesOf({ url: flaky.url, to: 'a.csv' }), h.env);
    assert.equal(readFileSync(path.join(h.workDir, 'a.csv'), 'utf8').trim().split('\r\n').length, 3001);

    const broken = await datastore(3000, (offset) => offset === 2000);
    const h2 = stepHarness({ scope: { params: { key: 'secret-key-4711' } } });
    await assert.rejects(
      fetchPagesStep(pagesOf({ url: `${broken.url}/?token={{params.key}}`, headers: { Authorization: '{{params.key}}' }, to: 'b.csv' }), { ...h2.env, secrets: ['secret-key-4711'] }),
      isCode('E_PAGES', /page at offset 2000 failed 3 times \(answered 503\)/),
    );
    assert.ok(!existsSync(path.join(h2.workDir, 'b.csv')) && !existsSync(path.join(h2.workDir, 'b.csv.part')));
  });

  it('says so when the answer has no list where records points', async () => {
    const api = await datastore(10);
    const h = stepHarness();
    await assert.rejects(fetchPagesStep(pagesOf({ url: api.url, records: 'result.rows', to: 'c.csv' }), h.env), isCode('E_PAGES_SHAPE', /no list at "result\.rows"/));
  });
});
