import type { Context } from '../context.js';
import { linksFor } from '../delivery/deliver.js';
import { jobDetail, listJobs } from '../store/views.js';
import { noQuery, Query } from './query.js';
import { HttpError, sendJson, type Route } from './router.js';

/** A job id or a request id (REQUEST_ID_PATTERN covers both). */
export const JOB_REF = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** `GET /jobs?state=&recipe=&email=&limit=&offset=`: newest first, one page, with the total. */
export function jobsRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/jobs',
    handler({ res, url }) {
      const q = new Query(url, ['state', 'recipe', 'email', 'limit', 'offset']);
      const filter = { state: q.state(), recipe: q.recipe(), email: q.email(), ...q.paging() };
      sendJson(res, 200, listJobs(ctx.store, filter));
    },
  };
}

/** `GET /jobs/:id` (a job id or a request id): params masked, attempts, events, outputs with links, why it waits. */
export function jobRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/jobs/:id',
    async handler({ res, url, params }) {
      noQuery(url);
      if (!JOB_REF.test(params.id)) throw new HttpError(400, 'id: not a job id or request id (1 to 128 letters, digits, dots, dashes, colons or underscores)');
      const job = await jobDetail(ctx.store, params.id, { links: (outputs, since) => linksFor(ctx, outputs, since), now: ctx.clock.now() });
      if (!job) throw new HttpError(404, `no job ${params.id}`);
      sendJson(res, 200, job);
    },
  };
}
