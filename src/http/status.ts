import type { Context } from '../context.js';
import { daemonStatus } from '../store/views.js';
import { VERSION } from '../version.js';
import { noQuery } from './query.js';
import { sendJson, type Route } from './router.js';

/** `GET /status`: version, uptime, lanes and counts. The route is made when the daemon starts: that is its uptime's start. */
export function statusRoute(ctx: Context): Route {
  const startedAt = ctx.clock.now();
  return {
    methods: ['GET', 'HEAD'],
    path: '/status',
    handler({ res, url }) {
      noQuery(url);
      sendJson(res, 200, daemonStatus(ctx.store, ctx.config, { version: VERSION, now: ctx.clock.now(), startedAt }));
    },
  };
}
