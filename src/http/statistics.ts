import type { Context } from '../context.js';
import { errorList, requestList, statistics } from '../store/stats.js';
import { Query } from './query.js';
import { sendJson, type Route } from './router.js';

const LIST_PARAMS = ['recipe', 'email', 'limit', 'offset'];

/** A read-only GET route answering `view` of its validated query parameters. */
function viewRoute(path: string, params: string[], view: (q: Query) => unknown): Route {
  return {
    methods: ['GET', 'HEAD'],
    path,
    handler({ res, url }) {
      sendJson(res, 200, view(new Query(url, params)));
    },
  };
}

/** `GET /statistics?recipe=`: totals per recipe and over all ("*"). */
export function statisticsRoute(ctx: Context): Route {
  return viewRoute('/statistics', ['recipe'], (q) => statistics(ctx.store, { recipe: q.recipe() }));
}

/** `GET /statistics/requests?recipe=&email=&offset=&limit=`: requests, newest first. */
export function requestsRoute(ctx: Context): Route {
  return viewRoute('/statistics/requests', LIST_PARAMS, (q) => requestList(ctx.store, { recipe: q.recipe(), email: q.email(), ...q.paging() }));
}

/** `GET /statistics/errors?recipe=&email=&offset=&limit=`: failed jobs, the latest failure first. */
export function errorsRoute(ctx: Context): Route {
  return viewRoute('/statistics/errors', LIST_PARAMS, (q) => errorList(ctx.store, { recipe: q.recipe(), email: q.email(), ...q.paging() }));
}
