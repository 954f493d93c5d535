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

/** Totals per resource id, and "*" over all of them unless one resource is asked for. */
export function resourceTotals(db: Db, f: ResourceFilter): Record<string, ResourceTotals> {
  const sql = statements(db);
  const w = where(f);
  const columns = `count(*) AS requests, count(DISTINCT lower(email)) AS emails, coalesce(sum(state = 'failed'), 0) AS errors`;
  const out: Record<string, ResourceTotals> = {};
  for (const r of sql<string[], ResourceTotals & { resource: string }>(`SELECT ${RESOURCE} AS resource, ${columns} FROM jobs WHERE ${w.sql} GROUP BY resource`).all(...w.args)) {
    out[String(r.resource)] = { requests: r.requests, emails: r.emails, errors: r.errors };
  }
  if (f.resource === undefined && Object.keys(out).length > 0) {
    const all = sql<string[], ResourceTotals>(`SELECT ${columns} FROM jobs WHERE ${w.sql}`).get(...w.args)!;
    out['*'] = { requests: all.requests, emails: all.emails, errors: all.errors };
  }
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

/** The requests, newest first. */
export function resourceRequests(db: Db, f: ResourceFilter, page: { offset: number; limit: number }): ResourceRequest[] {
  const w = where(f);
  const rows = statements(db)<Array<string | number>, { email: string | null; resource: string; at: number; count: number | null }>(
    `SELECT email, ${RESOURCE} AS resource, created_at AS at, json_extract(params_json, '$.limit') AS count FROM jobs WHERE ${w.sql}
     ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
  ).all(...w.args, page.limit, page.offset);
  return rows.map((r) => ({
    email: r.email,
    resource_id: String(r.resource),
    timestamp: Math.floor(r.at / 1000),
    count: typeof r.count === 'number' ? r.count : null,
    domain: r.email?.includes('@') ? r.email.slice(r.email.lastIndexOf('@') + 1).toLowerCase() : null,
  }));
}

export interface ResourceError {
  timestamp: number;
  resource_id: string;
  email: string | null;
  message: string;
}

/** The requests that failed, the latest failure first. */
export function resourceErrors(db: Db, f: ResourceFilter, page: { offset: number; limit: number }): ResourceError[] {
  const w = where(f);
  return statements(db)<Array<string | number>, { email: string | null; resource: string; at: number; message: string | null }>(
    `SELECT email, ${RESOURCE} AS resource, finished_at AS at, error_message AS message FROM jobs WHERE ${w.sql} AND state = 'failed'
     ORDER BY finished_at DESC, id DESC LIMIT ? OFFSET ?`,
  )
    .all(...w.args, page.limit, page.offset)
    .map((r) => ({ timestamp: Math.floor(r.at / 1000), resource_id: String(r.resource), email: r.email, message: r.message ?? '' }));
}
