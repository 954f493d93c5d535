import type { Context } from '../context.js';
import { errorList, requestList, statistics } from '../store/stats.js';
import { Query } from './query.js';
import { sendJson, type Route } from './router.js';

const LIST_PARAMS = ['recipe', 'email', 'limit', 'offset'];

/** `GET /statistics?recipe=`: totals per recipe and over all ("*"). */
export function statisticsRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/statistics',
    handler({ res, url }) {
      const q = new Query(url, ['recipe']);
      sendJson(res, 200, statistics(ctx.store, { recipe: q.recipe() }));
    },
  };
}

/** `GET /statistics/requests?recipe=&email=&offset=&limit=`: requests, newest first. */
export function requestsRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/statistics/requests',
    handler({ res, url }) {
      const q = new Query(url, LIST_PARAMS);
      sendJson(res, 200, requestList(ctx.store, { recipe: q.recipe(), email: q.email(), ...q.paging() }));
    },
  };
}

/** `GET /statistics/errors?recipe=&email=&offset=&limit=`: failed jobs, the latest failure first. */
export function errorsRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/statistics/errors',
    handler({ res, url }) {
      const q = new Query(url, LIST_PARAMS);
      sendJson(res, 200, errorList(ctx.store, { recipe: q.recipe(), email: q.email(), ...q.paging() }));
    },
  };
}
