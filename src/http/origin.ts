import type { IncomingMessage } from 'node:http';

// Routes that change what hopper does (POST /requests, /jobs/:id/cancel) must
// not be reachable from a web page the user happens to visit. A browser sends
// a "simple" cross-site POST (a form, text/plain) without asking first; with a
// token that request lacks the Authorization header and fails, but where
// http.allowAnonymousSubmit lets requests in without one, only these checks
// stand between any site and the daemon.

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function hostnameOf(hostHeader: string): string {
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return '';
  }
}

/**
 * Why a request to a route that writes is refused as coming from a web page of
 * another site, or through a name that is not this daemon's (DNS rebinding);
 * undefined when it may go on. Programs (curl, hopper submit) send no Origin.
 */
export function crossSiteRefusal(req: IncomingMessage, o: { boundHost: string; publicUrl: string; anonymous: boolean }): string | undefined {
  const host = req.headers.host ?? '';
  const fetchSite = req.headers['sec-fetch-site'];
  if (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') return 'a request sent by a web page of another site is refused here';
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own = new Set([`http://${host}`, `https://${host}`]);
    if (o.publicUrl) own.add(new URL(o.publicUrl).origin);
    if (!own.has(origin)) return `a request sent by a web page of ${origin} is refused here`;
  }
  return o.anonymous ? foreignHostRefusal(req, o) : undefined;
}

/**
 * Without a token, the name the client used must be this daemon's own: a web
 * page whose name was made to resolve to 127.0.0.1 (DNS rebinding) could else
 * read the jobs, their params and their logs as a same-origin page. Undefined
 * when the name is the daemon's.
 */
export function foreignHostRefusal(req: IncomingMessage, o: { boundHost: string; publicUrl: string }): string | undefined {
  const host = req.headers.host ?? '';
  const names = new Set([...LOOPBACK_NAMES, o.boundHost]);
  if (o.publicUrl) names.add(new URL(o.publicUrl).hostname);
  return names.has(hostnameOf(host)) ? undefined : `requests without a token are taken only at this daemon's own address, not at "${host}"`;
}
