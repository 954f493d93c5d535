import { explain } from '../outcomes.js';
import type { Recipe } from '../recipes/recipe.js';
import { maskParams } from '../redact.js';
import type { JobEvent } from '../schemas/common.js';
import type { Job } from '../store/jobs.js';
import type { NewNotification } from '../store/notifications.js';
import { render, type TemplateScope } from '../template.js';
import { formatBytes } from '../units.js';

export interface DeliveredFile {
  name: string;
  bytes: number;
  link: string;
  sha256?: string;
  /** The file itself, base64, when it is smaller than the recipe's `output.inlineBelow`. */
  contentBase64?: string;
}

const STATE_OF: Record<JobEvent, string> = {
  requested: 'queued',
  started: 'running',
  retrying: 'retrying',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
};

/** What a webhook receives: the job as the HTTP view shows it, secrets masked, at this event. */
export function jobDocument(job: Job, recipe: Recipe, facts: EventFacts, at: number, maskedParams: Record<string, unknown>): Record<string, unknown> {
  const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
  return {
    event: facts.event,
    at: iso(at),
    id: job.id,
    requestId: job.requestId,
    recipe: recipe.name,
    state: STATE_OF[facts.event],
    lane: job.lane,
    priority: job.priority,
    params: maskedParams,
    createdAt: iso(job.createdAt),
    startedAt: iso(facts.event === 'started' && job.startedAt === null ? at : job.startedAt),
    finishedAt: ['succeeded', 'failed', 'canceled'].includes(facts.event) ? iso(at) : null,
    // The requester's plain words, as in the email: the detail (command lines, output) stays on the job.
    error: facts.error ? { code: facts.error.code, message: explain(facts.error) } : null,
    outputs: (facts.files ?? []).map((f) => ({
      name: f.name,
      bytes: f.bytes,
      sha256: f.sha256 ?? null,
      link: f.link,
      ...(f.contentBase64 !== undefined ? { contentBase64: f.contentBase64 } : {}),
    })),
    expiresAt: facts.expiresAt ? iso(facts.expiresAt) : null,
  };
}

/** A webhook URL as admins may see it: no query (it often carries a token), no userinfo. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export interface WebhookPayload {
  url: string;
  document: Record<string, unknown>;
}

/** A recipe's webhook URL may be filled from params or the request; one that renders to no http(s) URL is no webhook. */
function recipeWebhook(conf: { url: string }, scope: TemplateScope): string | undefined {
  const url = render(conf.url, scope).trim();
  return URL.canParse(url) && /^https?:$/.test(new URL(url).protocol) ? url : undefined;
}

function webhooksFor(job: Job, recipe: Recipe, facts: EventFacts, at: number, scope: TemplateScope): NewNotification[] {
  const urls = new Set<string>();
  const conf = recipe.notify.webhook;
  const url = conf && conf.events.includes(facts.event) ? recipeWebhook(conf, scope) : undefined;
  if (url) urls.add(url);
  if (job.notify.webhook) urls.add(job.notify.webhook);
  if (urls.size === 0) return [];
  const document = jobDocument(job, recipe, facts, at, scope.params as Record<string, unknown>);
  return [...urls].map((url) => ({ event: facts.event, channel: 'webhook' as const, target: shownUrl(url), payload: { url, document } }));
}

export interface EventFacts {
  event: JobEvent;
  files?: DeliveredFile[];
  expiresAt?: number;
  error?: { code: string; message: string };
}

const DEFAULT_SUBJECT: Partial<Record<JobEvent, string>> = {
  succeeded: 'Your {{recipe.name}} request is ready',
  failed: 'Your {{recipe.name}} request failed',
  canceled: 'Your {{recipe.name}} request was canceled',
};

const DEFAULT_BODY: Partial<Record<JobEvent, string>> = {
  succeeded: 'Your request {{job.id}} is ready.\n\nDownload:\n{{output.links}}\n\nThe link expires {{output.expires}}.\n',
  failed: 'We could not finish your request {{job.id}}.\n\nWhat went wrong: {{job.error}}\n\nNothing was delivered. You can send the request again, or reply to the admin of this service.\n',
  canceled: 'Your request {{job.id}} was canceled before it finished. Nothing was delivered.\n',
};

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;

/** What templates in emails and webhooks may read: secrets masked, errors in one line. */
export function messageScope(job: Job, recipe: Recipe, facts: EventFacts): TemplateScope {
  const files = facts.files ?? [];
  return {
    params: maskParams(job.params, recipe.paramsSchema),
    request: { id: job.requestId, notify: job.notify, priority: job.priority },
    recipe: { name: recipe.name, description: recipe.description },
    job: {
      id: job.id,
      state: facts.event,
      error: facts.error ? explain(facts.error) : '',
      errorCode: facts.error?.code ?? '',
    },
    output: {
      links: files.map((f) => f.link).join('\n'),
      files: files.map((f) => ({ ...f, size: formatBytes(f.bytes) })),
      bytes: files.reduce((n, f) => n + f.bytes, 0),
      size: formatBytes(files.reduce((n, f) => n + f.bytes, 0)),
      expires: facts.expiresAt ? new Date(facts.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') : '',
    },
  };
}

function emailFor(job: Job, recipe: Recipe, facts: EventFacts, scope: TemplateScope): NewNotification | null {
  const conf = recipe.notify.email;
  const events = conf?.events ?? ['succeeded', 'failed', 'canceled'];
  if (!events.includes(facts.event)) return null;
  const to = new Set<string>();
  for (const t of conf?.to ?? []) {
    for (const addr of render(t, scope).split(/[\s,]+/)) if (EMAIL.test(addr)) to.add(addr);
  }
  if (job.notify.email && EMAIL.test(job.notify.email)) to.add(job.notify.email);
  if (to.size === 0) return null;
  const custom = facts.event === 'succeeded';
  const subject = (custom && conf?.subject) || DEFAULT_SUBJECT[facts.event] || `{{recipe.name}} request {{job.id}}: ${facts.event}`;
  const body = (custom && conf?.body) || DEFAULT_BODY[facts.event] || `Request {{job.id}}: ${facts.event}\n`;
  return {
    event: facts.event,
    channel: 'email',
    target: [...to].join(', '),
    payload: { to: [...to], subject: render(subject, scope).replace(/[\r\n]+/g, ' ').slice(0, 250), text: render(body, scope) },
  };
}

/** The notifications one event of a job causes, rendered now and stored with the event. */
export function planNotifications(job: Job, recipe: Recipe, facts: EventFacts, at: number): NewNotification[] {
  const scope = messageScope(job, recipe, facts);
  const email = emailFor(job, recipe, facts, scope);
  return [...(email ? [email] : []), ...webhooksFor(job, recipe, facts, at, scope)];
}
