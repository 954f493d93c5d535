import type { Db } from './db.js';
import { statements } from './db.js';

// Statistics per CKAN resource (the `resource` param of the packaging recipes),
// in the terms ckanpackager's API answers in (compat/ckanpackager.ts): requests,
// unique emails and errors per resource id and over all ("*"); the requests
// and the errors themselves, newest first.

export interface ResourceTotals {
  requests: number;
  emails: number;
  errors: number;
}

export interface ResourceFilter {
  /** The recipes whose jobs count (the two ckanpackager maps to). */
  recipes: readonly string[];
  resource?: string;
  email?: string;
}

const RESOURCE = `json_extract(params_json, '$.resource')`;

function where(f: ResourceFilter): { sql: string; args: string[] } {
  const clauses = [`recipe IN (${f.recipes.map(() => '?').join(', ')})`, `${RESOURCE} IS NOT NULL`];
  const args = [...f.recipes];
  if (f.resource !== undefined) {
    clauses.push(`${RESOURCE} = ?`);
    args.push(f.resource);
  }
  if (f.email !== undefined) {
    clauses.push('lower(email) = lower(?)');
    args.push(f.email);
  }
  return { sql: clauses.join(' AND '), args };
}

/**
 * Totals per resource id, and "*" over all of them unless one resource is asked
 * for. Counted here from the rows of jobs_resource_totals, an index that holds
 * each job's resource, address and state: SQLite's GROUP BY with count(DISTINCT)
 * read every job's row instead (~250 ms at 40,000 such jobs; this way ~40).
 */
export function resourceTotals(db: Db, f: ResourceFilter): Record<string, ResourceTotals> {
  const w = where(f);
  const per = new Map<string, { requests: number; emails: Set<string>; errors: number }>();
  const all = { requests: 0, emails: new Set<string>(), errors: 0 };
  const rows = statements(db)<string[], [string, string | null, string]>(`SELECT ${RESOURCE}, lower(email), state FROM jobs WHERE ${w.sql}`).raw();
  for (const [resource, email, state] of rows.iterate(...w.args)) {
    const key = String(resource);
    let t = per.get(key);
    if (!t) per.set(key, (t = { requests: 0, emails: new Set(), errors: 0 }));
    for (const total of [t, all]) {
      total.requests++;
      if (email !== null) total.emails.add(email);
      if (state === 'failed') total.errors++;
    }
  }
  const out: Record<string, ResourceTotals> = {};
  for (const [key, t] of per) out[key] = { requests: t.requests, emails: t.emails.size, errors: t.errors };
  if (f.resource === undefined && per.size > 0) out['*'] = { requests: all.requests, emails: all.emails.size, errors: all.errors };
  return out;
}

export interface ResourceRequest {
  email: string | null;
  resource_id: string;
  /** UNIX seconds. */
  timestamp: number;
  /** The rows asked for (`limit`), null for all. */
  count: number | null;
  domain: string | null;
}

export interface ResourceError {
  timestamp: number;
  resource_id: string;
  email: string | null;
  message: string;
}

interface Row {
  email: string | null;
  resource: string;
  at: number;
  count: number | null;
  message: string | null;
}

/**
 * A page of rows newest first across the recipes: each recipe's rows come in
 * order from an index (jobs_recipe, jobs_resource, jobs_recipe_finished: it holds
 * ended jobs alone, so the query says `finished_at IS NOT NULL`), at
 * most offset + limit of them, and are merged here; an IN over the recipes
 * would sort all their rows for every page.
 */
function newestFirst(db: Db, f: ResourceFilter, page: { offset: number; limit: number }, o: { failed: boolean }): Row[] {
  const take = page.offset + page.limit;
  const rows: Row[] = [];
  for (const recipe of f.recipes) {
    const w = where({ ...f, recipes: [recipe] });
    const when = o.failed ? 'finished_at' : 'created_at';
    rows.push(
      ...statements(db)<Array<string | number>, Row>(
        `SELECT email, ${RESOURCE} AS resource, ${when} AS at, json_extract(params_json, '$.limit') AS count, error_message AS message
         FROM jobs WHERE ${w.sql}${o.failed ? ` AND state = 'failed' AND finished_at IS NOT NULL` : ''} ORDER BY ${when} DESC LIMIT ?`,
      ).all(...w.args, take),
    );
  }
  return rows.sort((a, b) => b.at - a.at).slice(page.offset, take);
}

/** The requests, newest first. */
export function resourceRequests(db: Db, f: ResourceFilter, page: { offset: number; limit: number }): ResourceRequest[] {
  return newestFirst(db, f, page, { failed: false }).map((r) => ({
    email: r.email,
    resource_id: String(r.resource),
    timestamp: Math.floor(r.at / 1000),
    count: typeof r.count === 'number' ? r.count : null,
    domain: r.email?.includes('@') ? r.email.slice(r.email.lastIndexOf('@') + 1).toLowerCase() : null,
  }));
}

/** The requests that failed, the latest failure first. */
export function resourceErrors(db: Db, f: ResourceFilter, page: { offset: number; limit: number }): ResourceError[] {
  return newestFirst(db, f, page, { failed: true }).map((r) => ({ timestamp: Math.floor(r.at / 1000), resource_id: String(r.resource), email: r.email, message: r.message ?? '' }));
}
