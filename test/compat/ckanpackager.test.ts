import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { apiGet, apiPost, type ApiAnswer } from '../helpers/api.js';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { readZip } from '../helpers/zip.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'ckanpackager-secret-0042';
const recipeText = (name: string): string => readFileSync(new URL(`../../recipes/${name}.yaml`, import.meta.url), 'utf8');

interface Row {
  _id: number;
  name: string;
  country: string;
  year: number;
}
const COUNTRIES = ['DE', 'FR', 'NL', 'IT'];
const ROWS: Row[] = Array.from({ length: 240 }, (_, i) => ({ _id: i + 1, name: `site ${String(i).padStart(3, '0')}`, country: COUNTRIES[i % 4], year: 1990 + (i % 30) }));

/**
 * A CKAN datastore_search action: filters (a JSON object; a list value matches
 * any of its values), sort ("col DESC, col2"), fields (comma-separated, in that
 * order), offset and limit, as CKAN answers them.
 */
function datastoreSearch(seen: URLSearchParams[], auth: Array<string | undefined>) {
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    seen.push(q);
    auth.push(req.headers.authorization);
    const filters = JSON.parse(q.get('filters') ?? '{}') as Record<string, unknown>;
    let rows = ROWS.filter((r) => Object.entries(filters).every(([k, v]) => (Array.isArray(v) ? v.map(String) : [String(v)]).includes(String(r[k as keyof Row]))));
    const sort = (q.get('sort') ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((s) => s.split(/\s+/) as [keyof Row, string?]);
    rows = [...rows].sort((a, b) => {
      for (const [k, dir] of sort) {
        const c = a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : 0;
        if (c !== 0) return dir?.toUpperCase() === 'DESC' ? -c : c;
      }
      return 0;
    });
    const total = rows.length;
    const offset = Number(q.get('offset') ?? 0);
    const limit = Number(q.get('limit') ?? 100);
    const fields = q.get('fields')?.split(',').map((f) => f.trim() as keyof Row);
    const records = rows.slice(offset, offset + limit).map((r) => (fields ? Object.fromEntries(fields.map((f) => [f, r[f]])) : r));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ success: true, result: { records, total } }));
  };
}

/** The body ckanext-ckanpackager 2.x sends: python-requests form encoding of its fields, in its order. */
function extensionForm(fields: Array<[string, string]>): string {
  return new URLSearchParams(fields).toString();
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const body = (a: ApiAnswer): Record<string, unknown> => a.json as Record<string, unknown>;

describe('compat: ckanpackager', () => {
  let d: TestDaemon;
  let base: string;
  let ckan: TestServer;
  const seen: URLSearchParams[] = [];
  const auth: Array<string | undefined> = [];
  let files: TestServer;
  before(async () => {
    ckan = await httpServer(datastoreSearch(seen, auth));
    files = await httpServer((_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('a,b\n1,2\n'));
    d = await testDaemon({
      recipes: { 'package-datastore': recipeText('package-datastore'), 'package-url': recipeText('package-url') },
      config: { http: { port: 0, token: 'tok-bearer-0123456789' }, compat: { ckanpackager: { secret: SECRET } } },
    });
    base = d.http.address();
  });
  after(async () => {
    await d.cleanup();
    await ckan.close();
    await files.close();
  });

  const post = (path: string, fields: Array<[string, string]>): Promise<ApiAnswer> => apiPost(base, `/ckanpackager${path}`, extensionForm(fields), FORM);

  it('package_datastore, as the extension sends it: the emailed zip holds the filtered, sorted rows and fields asked for', { timeout: 60_000 }, async () => {
    const a = await post('/package_datastore', [
      ['secret', SECRET],
      ['resource_id', 'res-sites'],
      ['email', 'Reader@Example.org'],
      ['format', 'csv'],
      ['api_url', `${ckan.url}/api/3/action/datastore_search`],
      ['filters', JSON.stringify({ country: ['DE', 'FR'] })],
      ['sort', 'year DESC, name'],
      ['fields', 'name,year,country'],
      ['offset', '10'],
      ['limit', '50'],
      ['key', 'ckan-api-key-secret'],
    ]);
    assert.equal(a.status, 200, a.text);
    assert.equal(body(a).status, 'success');
    assert.match(String(body(a).message), /emailed to you/);
    const job = await d.job(String(body(a).job), ended, 30_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    assert.equal(job.lane, 'fast', '50 - 10 rows');

    const expected = ROWS.filter((r) => r.country === 'DE' || r.country === 'FR')
      .sort((x, y) => y.year - x.year || (x.name < y.name ? -1 : 1))
      .slice(10, 60);
    const mail = await waitFor('the email', () => emlFiles(`${d.root}/outbox`).map(readEml).find((m) => m.body.includes(job.id)));
    assert.match(mail.headers.to, /Reader@Example\.org/i);
    const link = /https?:\/\/\S+\/downloads\/\S+/.exec(mail.body)?.[0];
    assert.ok(link, mail.body);
    const zip = await readZip(`${d.root}/outputs/${job.id}/res-sites.zip`);
    const lines = zip.get('res-sites.csv')!.toString('utf8').trim().split('\r\n');
    assert.equal(lines[0], 'name,year,country');
    assert.deepEqual(lines.slice(1), expected.map((r) => `${r.name},${r.year},${r.country}`));
    assert.equal(seen.at(-1)?.get('filters'), JSON.stringify({ country: ['DE', 'FR'] }));
    assert.equal(auth.at(-1), 'ckan-api-key-secret', 'the key goes to CKAN as the Authorization header');
    assert.ok(!JSON.stringify(job.params).includes(SECRET) && !JSON.stringify(d.ctx.store.jobs.get(job.id)).includes(SECRET), 'the secret is not kept');
    // The CKAN key is a secret: not in the job's params as shown, not in its log.
    const shown = await apiGet(base, `/jobs/${job.id}`, { authorization: 'Bearer tok-bearer-0123456789' });
    assert.ok(!shown.text.includes('ckan-api-key-secret'));
    assert.ok(!readFileSync(`${d.root}/state/jobs/${job.id}/job.log`, 'utf8').includes('ckan-api-key-secret'));
  });

  it('limit - offset over 50,000 goes to the slow lane, as ckanpackager chose its queue', async () => {
    const a = await post('/package_datastore', [
      ['secret', SECRET], ['resource_id', 'res-big'], ['email', 'a@example.org'], ['api_url', `${ckan.url}/x`], ['offset', '10'], ['limit', '60000'],
    ]);
    assert.equal(a.status, 200, a.text);
    const job = d.ctx.store.jobs.get(String(body(a).job))!;
    assert.equal(job.lane, 'slow');
    await d.job(job.id, ended, 30_000);
  });

  it('limit 0 or below (what the extension sends for "all rows" that match nothing, or past the end) is all rows, not a refusal', async () => {
    for (const limit of ['0', '-20']) {
      const a = await post('/package_datastore', [['secret', SECRET], ['resource_id', 'res-none'], ['email', 'a@example.org'], ['api_url', `${ckan.url}/x`], ['filters', '{"country": "XX"}'], ['limit', limit]]);
      assert.equal(a.status, 200, a.text);
      const job = await d.job(String(body(a).job), ended, 20_000);
      assert.equal(job.params.limit, undefined);
      assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    }
  });

  it('refuses what a web page of another site sends (403), and a form of deep or odd filters (400)', async () => {
    const fields: Array<[string, string]> = [['secret', SECRET], ['resource_id', 'r'], ['email', 'a@example.org'], ['api_url', `${ckan.url}/x`]];
    const cross = await apiPost(base, '/ckanpackager/package_datastore', extensionForm(fields), { ...FORM, origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
    for (const filters of [`{"a": ${'['.repeat(500)}${']'.repeat(500)}}`, '{"a": {"b": 1}}', '{"a": [[1]]}']) {
      const a = await post('/package_datastore', [...fields, ['filters', filters]]);
      assert.equal(a.status, 400, a.text);
      assert.match(String(body(a).message), /Parameter filters/);
    }
    const huge = await post('/package_datastore', [...fields, ['q', 'x'.repeat(100_000)]]);
    assert.equal(huge.status, 413);
  });

  it('package_url: the file zipped and emailed, its resource id kept for the statistics', { timeout: 30_000 }, async () => {
    const a = await post('/package_url', [['secret', SECRET], ['resource_id', 'res-file'], ['email', 'b@example.org'], ['resource_url', `${files.url}/data/table.csv`], ['format', 'csv']]);
    assert.equal(a.status, 200, a.text);
    const job = await d.job(String(body(a).job), ended, 20_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    assert.equal(job.params.resource, 'res-file');
  });

  it('a wrong or missing secret: 401 in ckanpackager\'s words; nothing is taken', async () => {
    const before = d.ctx.store.jobs.list({ limit: 500 }).length;
    for (const fields of [[['secret', 'wrong-secret-0000']], [], [['secret', `${SECRET}x`]]] as Array<Array<[string, string]>>) {
      const a = await post('/package_datastore', [...fields, ['resource_id', 'r'], ['email', 'a@example.org'], ['api_url', `${ckan.url}/x`]]);
      assert.equal(a.status, 401);
      assert.deepEqual(body(a), { status: 'failed', error: 'NotAuthorizedError', message: 'Wrong/missing secret' });
    }
    assert.equal((await post('/status', [])).status, 401);
    assert.equal(d.ctx.store.jobs.list({ limit: 500 }).length, before);
  });

  it('a missing or bad field: 400 with a sentence for the person', async () => {
    const fieldsWithout = (omit: string): Array<[string, string]> =>
      ([['secret', SECRET], ['resource_id', 'r1'], ['email', 'a@example.org'], ['api_url', `${ckan.url}/x`]] as Array<[string, string]>).filter(([k]) => k !== omit);
    for (const field of ['resource_id', 'email', 'api_url']) {
      const a = await post('/package_datastore', fieldsWithout(field));
      assert.equal(a.status, 400);
      assert.deepEqual(body(a), { status: 'failed', error: 'BadRequestError', message: `Parameter ${field} is required` });
    }
    const cases: Array<[Array<[string, string]>, RegExp]> = [
      [[['filters', '{not json']], /Parameter filters must be JSON/],
      [[['filters', '[1,2]']], /Parameter filters must be a JSON object/],
      [[['limit', 'ten']], /Parameter limit must be a whole number/],
      [[['offset', '-5']], /Parameter offset must be a whole number/],
      [[['format', 'xlsx']], /Format xlsx is not offered here/],
      [[['email', 'not an address']], /Parameter email: /],
      [[['api_url', 'ftp://x']], /Parameter api_url: /],
      [[['filters', JSON.stringify({ country: { $gt: 1 } })]], /Parameter filters: /],
    ];
    for (const [extra, why] of cases) {
      const fields = fieldsWithout('').filter(([k]) => !extra.some(([e]) => e === k));
      const a = await post('/package_datastore', [...fields, ...extra]);
      assert.equal(a.status, 400, `${JSON.stringify(extra)}: ${a.text}`);
      assert.equal(body(a).error, 'BadRequestError');
      assert.match(String(body(a).message), why);
    }
    const multipart = await apiPost(base, '/ckanpackager/package_datastore', '--x\r\n', { 'content-type': 'multipart/form-data; boundary=x' });
    assert.equal(multipart.status, 400);
  });

  it('status, statistics, the requests and errors lists, in ckanpackager\'s shapes; clear_caches', async () => {
    const status = await post('/status', [['secret', SECRET]]);
    assert.equal(status.status, 200);
    assert.equal(body(status).worker_count, 5);
    assert.equal((await post('', [['secret', SECRET]])).status, 200);

    const stats = body(await post('/statistics', [['secret', SECRET]]));
    assert.equal(stats.status, true);
    const totals = stats.totals as Record<string, { requests: number; emails: number; errors: number }>;
    assert.deepEqual(totals['res-sites'], { requests: 1, emails: 1, errors: 0 });
    assert.deepEqual(totals['res-file'], { requests: 1, emails: 1, errors: 0 });
    assert.equal(totals['*'].requests, 5, 'res-sites, res-big, res-file and res-none twice');
    assert.equal(totals['*'].emails, 3);
    const one = body(await post('/statistics', [['secret', SECRET], ['resource_id', 'res-sites']]));
    assert.deepEqual(Object.keys(one.totals as object), ['res-sites']);

    const requests = body(await post('/statistics/requests', [['secret', SECRET], ['limit', '2']]));
    assert.equal(requests.success, true);
    const list = requests.requests as Array<Record<string, unknown>>;
    assert.equal(list.length, 2);
    assert.deepEqual(Object.keys(list[0]).sort(), ['count', 'domain', 'email', 'resource_id', 'timestamp']);
    assert.equal(list[0].resource_id, 'res-file', 'newest first');
    assert.equal(typeof list[0].timestamp, 'number');
    assert.ok(Math.abs(Number(list[0].timestamp) - Date.now() / 1000) < 120, 'UNIX seconds');
    const sites = (body(await post('/statistics/requests', [['secret', SECRET], ['email', 'reader@example.org']])).requests as Array<Record<string, unknown>>)[0];
    assert.deepEqual([sites.resource_id, sites.count, sites.domain], ['res-sites', 50, 'example.org']);
    const errors = body(await post('/statistics/errors', [['secret', SECRET]]));
    assert.deepEqual(errors, { success: true, errors: [] });
    assert.equal((await post('/statistics/other', [['secret', SECRET]])).status, 400);
    assert.equal((await post('/statistics/requests/', [['secret', SECRET]])).status, 200, 'a trailing slash');
    assert.equal((body(await post('/statistics/requests', [['secret', SECRET], ['limit', '5000']])).requests as unknown[]).length > 0, true, 'a limit over 1,000 is capped, not refused');

    const cleared = await post('/clear_caches', [['secret', SECRET]]);
    assert.deepEqual(body(cleared), { status: 'success', message: 'Done.' });
    assert.equal(d.ctx.store.jobs.list({ recipe: 'package-datastore', limit: 500 }).every((j) => j.cacheKey === null), true);
  });

  it('without compat.ckanpackager in the config, there is no such API', async (t) => {
    const plain = await testDaemon({});
    t.after(() => plain.cleanup());
    assert.equal((await apiPost(plain.http.address(), '/ckanpackager/status', `secret=${SECRET}`, FORM)).status, 404);
  });
});
