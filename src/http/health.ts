import type { Context } from '../context.js';
import { containersInfo } from '../docker/engine.js';
import { sendJson, type Route } from './router.js';

/** `GET /healthz`: 503 when the database cannot answer. */
export function healthRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/healthz',
    public: true,
    handler({ res }) {
      let db = 'ok';
      try {
        ctx.store.db.prepare('SELECT 1').get();
      } catch {
        db = 'down';
      }
      sendJson(res, db === 'ok' ? 200 : 503, {
        status: db === 'ok' ? 'ok' : 'degraded',
        db,
        docker: ctx.docker?.up ? 'up' : 'down',
        containers: containersInfo(ctx.docker, ctx.config.docker.swarm !== undefined),
      });
    },
  };
}
