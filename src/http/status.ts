import type { Context } from '../context.js';
import { daemonStatus } from '../store/views.js';
import { VERSION } from '../version.js';
import { noQuery } from './query.js';
import { containersInfo } from '../docker/engine.js';
import { sendJson, type Route } from './router.js';

/** `GET /status`: version, uptime, lanes and counts. The route is made when the daemon starts: that is its uptime's start. */
export function statusRoute(ctx: Context): Route {
  const startedAt = ctx.clock.now();
  return {
    methods: ['GET', 'HEAD'],
    path: '/status',
    handler({ res, url }) {
      noQuery(url);
      const status = daemonStatus(ctx.store, ctx.config, { version: VERSION, now: ctx.clock.now(), startedAt });
      sendJson(res, 200, { ...status, containers: containersInfo(ctx.docker, ctx.config.docker.swarm !== undefined) });
    },
  };
}
