import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { CkanpackagerCompat } from '../config/config.js';
import type { Context } from '../context.js';
import { InvalidFileError, type Problem } from '../errors.js';
import { crossSiteRefusal } from '../http/origin.js';
import { HttpError, sameSecret, sendJson, type Route } from '../http/router.js';
import { intakeOf, orLater, readBody, sourceOf, type HttpIntake } from '../http/submit.js';
import { createAjv } from '../schemas/ajv.js';
import { resourceErrors, resourceRequests, resourceTotals, type ResourceFilter } from '../store/resources.js';
import { daemonStatus } from '../store/views.js';
import { VERSION } from '../version.js';

// ckanpackager's API, answered under /ckanpackager, so a CKAN portal running
// ckanext-ckanpackager switches to hopper by changing one URL. The extension
// POSTs form fields (application/x-www-form-urlencoded) with a `secret`; the
// answers keep ckanpackager's shapes, and `message` is a sentence the portal
// shows to the person. The two packagers become requests for the configured
// recipes, through the same intake as POST /requests and the inbox.

const PREFIX = '/ckanpackager';

/** What ckanpackager answered a request with a wrong or missing secret. */
const NOT_AUTHORIZED = { status: 'failed', error: 'NotAuthorizedError', message: 'Wrong/missing secret' };

const ACCEPTED = 'Your download is being prepared. The link will be emailed to you when it is ready; a large one may take a while.';

/** A form is a few short fields (a filters list of some hundred values at most): far below inbox.maxFileBytes. */
const MAX_FORM_BYTES = 64 * 1024;

class BadRequest extends Error {}

async function formOf(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '');
  if (type.startsWith('multipart/')) throw new BadRequest('Send the fields form-encoded (application/x-www-form-urlencoded)');
  return new URLSearchParams(await readBody(req, res, maxBytes));
}

function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (v === null || v.trim() === '') throw new BadRequest(`Parameter ${name} is required`);
  return v;
}

function optionalInt(form: URLSearchParams, name: string, o: { negative?: boolean } = {}): number | undefined {
  const v = form.get(name);
  if (v === null || v.trim() === '') return undefined;
  if (!(o.negative ? /^-?\d{1,15}$/ : /^\d{1,15}$/).test(v.trim())) throw new BadRequest(`Parameter ${name} must be a whole number`);
  return Number(v.trim());
}

/** A value a filter compares with: text, a number, true/false or null. */
type FilterValue = string | number | boolean | null;
/** `filters`: a field to a value, or to a list of values any of which matches. */
type Filters = Record<string, FilterValue | FilterValue[]>;
const FILTER_VALUE = { type: ['string', 'number', 'boolean', 'null'] };
const FILTERS_SCHEMA = { type: 'object', additionalProperties: { anyOf: [FILTER_VALUE, { type: 'array', items: FILTER_VALUE }] } };
let filtersCheck: ValidateFunction<Filters> | undefined;

function optionalText(form: URLSearchParams, name: string): string | undefined {
  const v = form.get(name);
  return v === null || v === '' ? undefined : v;
}

/** `filters`: a JSON object of field -> value or list of values, as the extension sends it. */
function filtersOf(form: URLSearchParams): Filters | undefined {
  const text = optionalText(form, 'filters');
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequest('Parameter filters must be JSON, like {"country": ["DE", "FR"]}');
  }
  filtersCheck ??= createAjv().compile<Filters>(FILTERS_SCHEMA);
  if (filtersCheck(value)) return value;
  // The first field that is wrong, by its JSON pointer (/name, with ~1 for / and ~0 for ~); none when the whole is.
  const pointer = filtersCheck.errors?.find((e) => e.instancePath !== '')?.instancePath.split('/')[1];
  if (pointer === undefined) throw new BadRequest('Parameter filters must be a JSON object of field names to values');
  const field = pointer.replaceAll('~1', '/').replaceAll('~0', '~');
  throw new BadRequest(`Parameter filters: field ${field.slice(0, 100)} must have a value or a list of values`);
}

/** The request's fields by the names hopper's recipes use, and back (for the sentences of a refusal). */
const FIELD_OF: Record<string, string> = {
  'params.api': 'api_url',
  'params.resource': 'resource_id',
  'params.url': 'resource_url',
  'params.filters': 'filters',
  'params.q': 'q',
  'params.limit': 'limit',
  'params.offset': 'offset',
  'params.sort': 'sort',
  'params.fields': 'fields',
  'params.apiKey': 'key',
  'notify.email': 'email',
};

/** The first problem, in ckanpackager's words: "Parameter email: must be an email address". */
function sentenceOf(problems: readonly Problem[]): string {
  const p = problems[0];
  if (!p) return 'The request is not valid';
  const field = Object.entries(FIELD_OF).find(([path]) => p.path === path || p.path.startsWith(`${path}.`) || p.path.startsWith(`${path}[`))?.[1];
  return field ? `Parameter ${field}: ${p.message}` : `${p.path ? `${p.path}: ` : ''}${p.message}`;
}

type Packager = (form: URLSearchParams, cfg: CkanpackagerCompat) => Record<string, unknown>;

const positive = (n: number | undefined): number | undefined => (n !== undefined && n > 0 ? n : undefined);

const packageDatastore: Packager = (form, cfg) => {
  const params: Record<string, unknown> = { api: required(form, 'api_url'), resource: required(form, 'resource_id') };
  const email = required(form, 'email');
  const format = optionalText(form, 'format')?.toLowerCase();
  if (format !== undefined && format !== 'csv') throw new BadRequest(`Format ${format} is not offered here; ask for csv`);
  const extra: Record<string, unknown> = {
    q: optionalText(form, 'q'),
    filters: filtersOf(form),
    sort: optionalText(form, 'sort'),
    fields: optionalText(form, 'fields'),
    offset: optionalInt(form, 'offset'),
    // The extension sends limit = total - offset when the person asked for all rows:
    // 0 when the filters match nothing, below 0 past the end. ckanpackager read 0 as all
    // rows; either way there is nothing to limit.
    limit: positive(optionalInt(form, 'limit', { negative: true })),
    apiKey: optionalText(form, 'key'),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) params[k] = v;
  return { kind: 'request', recipe: cfg.datastore, params, notify: { email } };
};

const packageUrl: Packager = (form, cfg) => ({
  kind: 'request',
  recipe: cfg.url,
  params: { resource: required(form, 'resource_id'), url: required(form, 'resource_url') },
  notify: { email: required(form, 'email') },
});

/** Runs a route's work once the secret is right; ckanpackager's error shapes for what goes wrong. */
function route(
  path: string,
  ctx: Context,
  cfg: CkanpackagerCompat,
  work: (form: URLSearchParams, req: IncomingMessage, res: ServerResponse, params: Record<string, string>) => Promise<void>,
): Route {
  return {
    methods: ['POST'],
    path: `${PREFIX}${path}`,
    // The secret in the form is what authorizes these, as in ckanpackager: no bearer token.
    public: true,
    async handler({ req, res, params }) {
      const refused = crossSiteRefusal(req, { boundHost: ctx.config.http.host, publicUrl: ctx.publicUrl(), anonymous: false });
      if (refused) throw new HttpError(403, refused);
      let form: URLSearchParams;
      try {
        form = await formOf(req, res, Math.min(MAX_FORM_BYTES, ctx.config.inbox.maxFileBytes));
      } catch (err) {
        if (err instanceof BadRequest) return sendJson(res, 400, { status: 'failed', error: 'BadRequestError', message: err.message });
        throw err;
      }
      if (!sameSecret(form.get('secret'), cfg.secret)) return sendJson(res, 401, NOT_AUTHORIZED);
      try {
        await work(form, req, res, params);
      } catch (err) {
        if (err instanceof BadRequest) return sendJson(res, 400, { status: 'failed', error: 'BadRequestError', message: err.message });
        if (err instanceof InvalidFileError) return sendJson(res, 400, { status: 'failed', error: 'BadRequestError', message: sentenceOf(err.problems) });
        throw err;
      }
    },
  };
}

function page(form: URLSearchParams): { offset: number; limit: number } {
  // As ckanpackager: 100 unless asked; more than 1,000 at once are not given, nor
  // rows past the millionth (each page reads offset + limit rows), not refused.
  const limit = Math.min(optionalInt(form, 'limit') ?? 100, 1000);
  return { offset: Math.min(optionalInt(form, 'offset') ?? 0, 1_000_000), limit };
}

function filterOf(form: URLSearchParams, cfg: CkanpackagerCompat): ResourceFilter {
  return { recipes: [cfg.datastore, cfg.url], resource: optionalText(form, 'resource_id'), email: optionalText(form, 'email') };
}

/** The routes of ckanpackager's API, for config compat.ckanpackager. */
export function ckanpackagerRoutes(ctx: Context, cfg: CkanpackagerCompat, intake: () => HttpIntake | undefined): Route[] {
  const packager = (path: string, build: Packager): Route =>
    route(path, ctx, cfg, async (form, req, res) => {
      const doc = build(form, cfg);
      const outcome = await orLater(res, intakeOf(intake).request(JSON.stringify(doc), sourceOf(req, `ckanpackager ${path.slice(1)}`)));
      if (outcome.kind === 'conflict') throw new BadRequest('This request conflicts with an earlier one');
      sendJson(res, 200, { status: 'success', message: ACCEPTED, job: outcome.job.id });
    });
  const status = route('/status', ctx, cfg, async (_form, _req, res) => {
    const s = daemonStatus(ctx.store, ctx.config, { version: VERSION, now: ctx.clock.now() });
    sendJson(res, 200, { worker_count: s.workers, ...s });
  });
  return [
    packager('/package_datastore', packageDatastore),
    packager('/package_url', packageUrl),
    status,
    { ...status, path: PREFIX },
    route('/statistics', ctx, cfg, async (form, _req, res) => {
      sendJson(res, 200, { status: true, totals: resourceTotals(ctx.store.db, filterOf(form, cfg)) });
    }),
    route('/statistics/:type', ctx, cfg, async (form, _req, res, params) => {
      const type = params.type;
      if (type === 'requests') sendJson(res, 200, { success: true, requests: resourceRequests(ctx.store.db, filterOf(form, cfg), page(form)) });
      else if (type === 'errors') sendJson(res, 200, { success: true, errors: resourceErrors(ctx.store.db, filterOf(form, cfg), page(form)) });
      else throw new BadRequest(`Unknown statistics request ${type.slice(0, 100)}`);
    }),
    route('/clear_caches', ctx, cfg, async (_form, _req, res) => {
      await orLater(
        res,
        ctx.store.later(() => {
          ctx.store.jobs.clearCache(cfg.datastore);
          ctx.store.jobs.clearCache(cfg.url);
        }),
      );
      sendJson(res, 200, { status: 'success', message: 'Done.' });
    }),
  ];
}
