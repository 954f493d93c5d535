import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import path from 'node:path';
import { hopper } from '../helpers/cli.js';
import { ended, testDaemon } from '../helpers/daemon.js';
import { emlFiles } from '../helpers/mail.js';
import { httpServer } from '../helpers/http.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'a-webhook-secret-of-some-length';

interface Hook {
  event: string;
  delivery: string;
  signature: string;
  body: string;
  doc: Record<string, unknown>;
}

/** A real receiver on 127.0.0.1; `answer` picks the status for each POST. */
async function receiver(answer: (n: number) => number = () => 200) {
  const hooks: Hook[] = [];
  let n = 0;
  const server = await httpServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const status = answer(n++);
      if (status < 300) {
        hooks.push({
          event: String(req.headers['x-hopper-event']),
          delivery: String(req.headers['x-hopper-delivery']),
          signature: String(req.headers['x-hopper-signature']),
          body,
          doc: JSON.parse(body) as Record<string, unknown>,
        });
      }
      res.writeHead(status).end();
    });
  });
  return { ...server, hooks, tries: () => n };
}

/** A receiver that takes each POST and never answers: hopper waits out its 10 s timeout. */
async function hangingReceiver() {
  const held: ServerResponse[] = [];
  const server = await httpServer((req, res) => {
    req.resume();
    held.push(res);
  });
  return { ...server, held };
}

function verifies(h: Hook, secret: string): boolean {
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(h.body).digest('hex')}`);
  const got = Buffer.from(h.signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

function hookRecipe(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'recipe',
    name: 'hooked',
    params: { type: 'object', properties: { text: { type: 'string' }, apiKey: { type: 'string', writeOnly: true } } },
    steps: [{ run: { command: ['sh', '-c', 'mkdir -p out && printf %s "$1" > out/result.txt', 'sh', '{{params.text}}'] } }],
    output: { files: ['out/result.txt'], inlineBelow: '1KiB' },
    notify: { webhook: { url, events: ['requested', 'started', 'succeeded', 'failed', 'canceled'] } },
    ...extra,
  };
}

describe('webhooks', () => {
  it('posts each event once, signed with the secret, secrets masked, small outputs inline', async () => {
    const rx = await receiver();
    const d = await testDaemon({ recipes: { hooked: hookRecipe(`${rx.url}/hooks?token=abc`) }, config: { webhooks: { secret: SECRET } } });
    try {
      d.drop('h.yaml', request('hooked', { text: 'tiny result', apiKey: 'key-4711-secret' }, { id: 'hooked-1' }));
      const job = await d.job('hooked-1', ended);
      assert.equal(job.state, 'succeeded');
      await waitFor('three webhooks', () => rx.hooks.length >= 3);
      assert.deepEqual(rx.hooks.map((h) => h.event), ['requested', 'started', 'succeeded']);
      assert.equal(new Set(rx.hooks.map((h) => h.delivery)).size, 3, 'each delivery has its own id');
      for (const h of rx.hooks) {
        assert.ok(verifies(h, SECRET), 'the signature verifies with the shared secret');
        assert.ok(!verifies(h, 'another-secret-of-some-length'));
        assert.ok(!h.body.includes('key-4711-secret'), 'the writeOnly param never leaves');
        assert.equal((h.doc.params as Record<string, unknown>).apiKey, '***');
        assert.equal(h.doc.id, job.id);
        assert.equal(h.doc.event, h.event);
      }
      const done = rx.hooks[2].doc;
      assert.equal(done.state, 'succeeded');
      const [out] = done.outputs as Array<{ name: string; link: string; contentBase64: string; sha256: string }>;
      assert.equal(out.name, 'result.txt');
      assert.equal(Buffer.from(out.contentBase64, 'base64').toString(), 'tiny result');
      assert.match(out.link, /\/downloads\//);
      // The receiver has the last event a moment before hopper records it as sent.
      const rows = await waitFor('all sent', () => {
        const all = d.ctx.store.notifications.forJob(job.id);
        return all.every((r) => r.state === 'sent') && all;
      });
      assert.ok(rows.every((r) => r.state === 'sent' && !r.target.includes('token=abc')), 'the target shown to admins has no query');
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a failure webhook carries the plain words the email has, not the command line or its output; control characters are shown, not sent raw', async () => {
    const rx = await receiver();
    const failing = hookRecipe(`${rx.url}/h`, {
      steps: [{ run: { command: ['sh', '-c', 'echo "internal detail /srv/secret-path \x1b[2J"; exit 3'] } }],
      notify: { webhook: { url: `${rx.url}/h`, events: ['failed'] }, email: { to: 'ops@example.org' } },
    });
    const d = await testDaemon({ recipes: { hooked: failing } });
    try {
      d.drop('f.yaml', request('hooked', { text: 'x' }, { id: 'failed-hook' }));
      const job = await d.job('failed-hook', ended);
      assert.equal(job.state, 'failed');
      assert.match(job.errorMessage!, /internal detail/, 'the admin still sees the detail on the job');
      assert.ok(!job.errorMessage!.includes('\x1b'), 'no raw ESC is stored');
      assert.match(job.errorMessage!, /\\x1b\[2J/, 'the ESC is stored as its escape');
      await waitFor('the failure webhook', () => rx.hooks.length === 1);
      const error = rx.hooks[0].doc.error as { code: string; message: string };
      assert.deepEqual(error, { code: 'E_RUN_EXIT', message: 'a processing step failed (exit code 3)' });
      assert.ok(!rx.hooks[0].body.includes('secret-path') && !rx.hooks[0].body.includes('sh -c'));
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('without a configured secret, state/webhook.key read as it is verifies; after SIGHUP with a new webhooks.secret, the new one signs', async () => {
    const rx = await receiver();
    const d = await testDaemon({ recipes: { hooked: hookRecipe(`${rx.url}/h`, { notify: { webhook: { url: `${rx.url}/h`, events: ['succeeded'] } } }) } });
    try {
      d.drop('k1.yaml', request('hooked', { text: 'x' }, { id: 'key-1' }));
      await waitFor('the first webhook', () => rx.hooks.length === 1);
      const fileKey = readFileSync(path.join(d.root, 'state', 'webhook.key'), 'utf8');
      assert.ok(verifies(rx.hooks[0], fileKey), 'the file as it is, no trimming, is the key');
      writeFileSync(path.join(d.root, 'hopper.yaml'), `http: { port: 0 }\noutbound: { allow: [127.0.0.1] }\nwebhooks: { secret: ${SECRET} }\n`);
      assert.equal(d.reload(), true);
      d.drop('k2.yaml', request('hooked', { text: 'y' }, { id: 'key-2' }));
      await waitFor('the second webhook', () => rx.hooks.length === 2);
      assert.ok(verifies(rx.hooks[1], SECRET), 'signed with the new secret');
      assert.ok(!verifies(rx.hooks[1], fileKey), 'not with the old key');
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a receiver that answers 500 gets the event again with backoff, each try recorded', async () => {
    const rx = await receiver((n) => (n < 2 ? 500 : 200));
    const d = await testDaemon({ recipes: { hooked: hookRecipe(`${rx.url}/h`, { notify: { webhook: { url: `${rx.url}/h`, events: ['succeeded'] } } }) }, notifyRetryBaseMs: 100 });
    try {
      d.drop('r.yaml', request('hooked', { text: 'x' }, { id: 'retry-hook' }));
      const job = await d.job('retry-hook', ended);
      await waitFor('the webhook', () => rx.hooks.length === 1, 10_000);
      const [n] = d.ctx.store.notifications.forJob(job.id);
      await waitFor('sent', () => d.ctx.store.notifications.get(n.id)?.state === 'sent');
      assert.deepEqual(d.ctx.store.notifications.deliveries(n.id).map((x) => x.status), [500, 500, 200]);
      assert.equal(rx.tries(), 3);
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a delivery that runs out of time is kept dead, and resend sends it again', async () => {
    let up = false;
    const rx = await receiver(() => (up ? 200 : 503));
    const d = await testDaemon({
      recipes: { hooked: hookRecipe(`${rx.url}/h`, { notify: { webhook: { url: `${rx.url}/h`, events: ['succeeded'] } } }) },
      config: { webhooks: { retryFor: '300ms' } },
      notifyRetryBaseMs: 100,
    });
    try {
      d.drop('dead.yaml', request('hooked', { text: 'x' }, { id: 'dead-hook' }));
      const job = await d.job('dead-hook', ended);
      const [n] = d.ctx.store.notifications.forJob(job.id);
      await waitFor('dead', () => d.ctx.store.notifications.get(n.id)?.state === 'dead', 10_000);
      assert.match(d.ctx.store.notifications.get(n.id)!.lastError!, /answered 503/);
      up = true;
      assert.equal(d.ctx.store.notifications.resend({ jobId: job.id }, Date.now()), 1);
      await waitFor('resent', () => rx.hooks.length === 1, 10_000);
      await waitFor('sent', () => d.ctx.store.notifications.get(n.id)?.state === 'sent');
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a request may ask for its own webhook, which gets every event', async () => {
    const rx = await receiver();
    const recipe = hookRecipe('http://127.0.0.1:9/never', { notify: {} });
    const d = await testDaemon({ recipes: { hooked: recipe } });
    try {
      d.drop('own.yaml', request('hooked', { text: 'x' }, { id: 'own-hook', notify: { webhook: `${rx.url}/mine` } }));
      await d.job('own-hook', ended);
      await waitFor('three webhooks', () => rx.hooks.length === 3);
      assert.deepEqual(rx.hooks.map((h) => h.event), ['requested', 'started', 'succeeded']);
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a receiver that hangs holds up only its own deliveries: another receiver and the email go out at once', { timeout: 30_000 }, async () => {
    const { held, ...hanging } = await hangingReceiver();
    const rx = await receiver();
    const d = await testDaemon({ recipes: { hooked: hookRecipe(`${hanging.url}/slow`) } });
    try {
      const started = Date.now();
      d.drop('r.yaml', request('hooked', { text: 'x' }, { id: 'beside-a-hang', notify: { webhook: `${rx.url}/fast`, email: 'someone@example.org' } }));
      await d.job('beside-a-hang', ended);
      await waitFor('the other receiver to get every event', () => rx.hooks.length === 3, 8000);
      await waitFor('the emailed link', () => emlFiles(path.join(d.root, 'outbox')).length === 1, 8000);
      assert.ok(Date.now() - started < 8000, 'within the hanging receiver\'s first timeout');
      assert.deepEqual(rx.hooks.map((h) => h.event), ['requested', 'started', 'succeeded']);
      assert.equal(held.length, 1, 'one delivery at a time to the hanging receiver');
    } finally {
      await d.cleanup();
      await rx.close();
      await hanging.close();
    }
  });

  it('a webhook to an address hopper.yaml does not allow is dead at once (E_OUTBOUND stored, nothing sent); once allowed, `hopper notify resend` sends it', { timeout: 40_000 }, async () => {
    const rx = await receiver();
    // A quick backoff: a refusal that were retried would be tried again within 100 ms.
    const d = await testDaemon({
      recipes: { hooked: hookRecipe(`${rx.url}/h`, { notify: { webhook: { url: `${rx.url}/h`, events: ['succeeded'] } } }) },
      config: { outbound: { allow: [] } },
      notifyRetryBaseMs: 100,
    });
    try {
      d.drop('r.yaml', request('hooked', { text: 'x' }, { id: 'refused-hook' }));
      const job = await d.job('refused-hook', ended);
      assert.equal(job.state, 'succeeded');
      const [n] = d.ctx.store.notifications.forJob(job.id);
      const dead = await waitFor('the refused delivery to be dead', () => {
        const row = d.ctx.store.notifications.get(n.id);
        return row?.state === 'dead' && row;
      }, 5000);
      assert.match(dead.lastError!, /127\.0\.0\.1 is a loopback address; hopper reaches it only if hopper\.yaml's outbound\.allow names it/);
      assert.equal(dead.attempts, 1);
      // Not tried again: eight backoff periods later it is still one try, still dead.
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(d.ctx.store.notifications.deliveries(n.id).length, 1);
      assert.equal(d.ctx.store.notifications.get(n.id)!.state, 'dead');
      assert.equal(rx.tries(), 0, 'the receiver was never reached');

      // The admin allows the receiver, reloads, and resends the dead notification.
      writeFileSync(path.join(d.root, 'hopper.yaml'), 'http: { port: 0 }\noutbound: { allow: [127.0.0.1] }\n');
      assert.equal(d.reload(), true);
      const resent = await hopper(['notify', 'resend', String(n.id)], { env: { HOPPER_ROOT: d.root }, timeoutMs: 30_000 });
      assert.equal(resent.code, 0, resent.stderr);
      assert.match(resent.stdout, /1 notification queued to send again/);
      await waitFor('the resent webhook', () => rx.hooks.length === 1, 10_000);
      await waitFor('sent', () => d.ctx.store.notifications.get(n.id)?.state === 'sent', 5000);
      assert.deepEqual(d.ctx.store.notifications.deliveries(n.id).map((x) => x.status), [null, 200]);
      assert.equal(rx.hooks[0].event, 'succeeded');
    } finally {
      await d.cleanup();
      await rx.close();
    }
  });

  it('a hanging receiver with a long backlog does not crowd the others out', { timeout: 30_000 }, async () => {
    const { held, ...hanging } = await hangingReceiver();
    const rx = await receiver();
    const d = await testDaemon({ recipes: { hooked: hookRecipe('http://127.0.0.1:9/unused', { notify: {} }) } });
    try {
      d.drop('first.yaml', request('hooked', { text: 'x' }, { id: 'backlog-owner' }));
      const owner = await d.job('backlog-owner', ended);
      const url = `${hanging.url}/slow`;
      // More rows due for the hanging receiver than one batch holds, all older than the next job's.
      for (let i = 0; i < 120; i++) d.ctx.store.notifications.insert({ event: 'succeeded', channel: 'webhook', target: url, payload: { url, document: { n: i } } }, owner.id, Date.now() - 60_000);
      d.drop('second.yaml', request('hooked', { text: 'y' }, { id: 'behind-a-backlog', notify: { webhook: `${rx.url}/fast` } }));
      await d.job('behind-a-backlog', ended);
      await waitFor('the other receiver to get every event', () => rx.hooks.length === 3, 8000);
      assert.equal(held.length, 1, 'still one at a time to the hanging receiver');
    } finally {
      await d.cleanup();
      await rx.close();
      await hanging.close();
    }
  });
});
