import { stat } from 'node:fs/promises';
import path from 'node:path';
import send from 'send';
import type { Context } from '../context.js';
import { checkLink } from '../delivery/links.js';
import { HttpError, type Route } from './router.js';

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function safeName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\\\u0000]/.test(name) && name !== '.' && name !== '..';
}

/** `GET /downloads/:job/:file?expires=&sig=`: a local output by signed, expiring link; Range works. */
export function downloadRoute(ctx: Context): Route {
  return {
    methods: ['GET', 'HEAD'],
    path: '/downloads/:job/:file',
    public: true,
    async handler({ req, res, params, url }) {
      const { job, file } = params;
      if (!JOB_ID.test(job) || !safeName(file)) throw new HttpError(400, 'not a valid job id or file name');
      const check = checkLink(ctx.linkKey, job, file, url.searchParams.get('expires'), url.searchParams.get('sig'), ctx.clock.now());
      if (!check.ok) throw new HttpError(403, check.reason);
      const dir = path.join(ctx.paths.outputs, job);
      const st = await stat(path.join(dir, file)).catch(() => null);
      if (!st?.isFile()) throw new HttpError(404, 'this file is no longer here (outputs are kept for a limited time)');
      await new Promise<void>((resolve, reject) => {
        send(req, `/${encodeURIComponent(file)}`, { root: dir, dotfiles: 'allow', index: false, etag: true, lastModified: true, cacheControl: false })
          .on('headers', (r) => {
            r.setHeader('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(file)}`);
            r.setHeader('Cache-Control', 'private, no-transform');
          })
          .on('error', (err: { status?: number; message: string }) => reject(new HttpError(err.status ?? 500, err.status === 416 ? 'the requested range is not satisfiable' : 'cannot send this file')))
          .on('end', () => resolve())
          .on('close', () => resolve())
          .pipe(res);
        res.on('close', () => resolve());
      });
    },
  };
}
