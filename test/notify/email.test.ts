import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { ended, testDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import { messageIdFor } from '../../src/notify/email.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import path from 'node:path';

interface Received {
  from: string;
  to: string[];
  raw: string;
  user: string | undefined;
}

/** A real SMTP server on 127.0.0.1 with AUTH; `refuse(n)` makes the n-th message fail temporarily. */
async function smtp(port = 0, refuse: (n: number) => boolean = () => false) {
  const received: Received[] = [];
  /** Every message's raw text, the refused ones too. */
  const offered: string[] = [];
  let n = 0;
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'hopper' && auth.password === 'mail-pass-4711') cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        offered.push(raw);
        if (refuse(n++)) return cb(Object.assign(new Error('try again later'), { responseCode: 451 }));
        received.push({
          from: String(session.envelope.mailFrom && session.envelope.mailFrom.address),
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.server.address() as AddressInfo).port;
  return {
    port: actual,
    received,
    offered,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const url = (port: number, pass = 'mail-pass-4711'): string => `smtp://hopper:${pass}@127.0.0.1:${port}`;

const mailing = echoRecipe('mailing', { notify: { email: { to: 'ops@example.org', subject: 'done {{job.id}}', body: 'Get it: {{output.links}}' } } });

describe('messageIdFor', () => {
  it("names the notification row and takes the sender's domain, with nothing else of the address", () => {
    const n = { id: 7, jobId: '20261129-120000-0001abcdef', event: 'succeeded' as const };
    assert.equal(messageIdFor(n, 'hopper@data.example.org'), '<20261129-120000-0001abcdef.succeeded.7@data.example.org>');
    assert.equal(messageIdFor(n, '"Hopper, the daemon" <hopper@data.example.org>'), '<20261129-120000-0001abcdef.succeeded.7@data.example.org>');
    assert.equal(messageIdFor(n, 'hopper@Data.Example.org (Hopper)'), '<20261129-120000-0001abcdef.succeeded.7@data.example.org>');
    assert.equal(messageIdFor(n, 'a@first.example.org, b@second.example.org'), '<20261129-120000-0001abcdef.succeeded.7@first.example.org>', 'the first address');
    assert.equal(messageIdFor(n, 'hopper@bücher.de'), '<20261129-120000-0001abcdef.succeeded.7@xn--bcher-kva.de>', 'an IDN in ASCII');
    for (const odd of ['no domain at all', 'hopper@..', 'hopper@[10.0.0.1]', 'hopper@-x-.org', `hopper@${'x'.repeat(64)}\u0000.org`]) {
      assert.equal(messageIdFor(n, odd), '<20261129-120000-0001abcdef.succeeded.7@localhost>', odd);
    }
    assert.equal(messageIdFor(n, 'x@evil.org>\r\nBcc: <y@'), '<20261129-120000-0001abcdef.succeeded.7@evil.org>', 'nothing after the domain comes along');
  });
});

describe('email over SMTP', () => {
  it('sends through an SMTP server with AUTH, and retries a temporary refusal with the same Message-ID', async () => {
    const server = await smtp(0, (n) => n === 0);
    const d = await testDaemon({ recipes: { mailing }, config: { smtp: { url: url(server.port), from: 'hopper@example.org' } }, notifyRetryBaseMs: 100 });
    try {
      d.drop('m.yaml', request('mailing', { text: 'x' }, { id: 'mail-1', notify: { email: 'someone@example.org' } }));
      const job = await d.job('mail-1', ended);
      await waitFor('the email', () => server.received.length === 1, 10_000);
      const mail = server.received[0];
      assert.equal(mail.user, 'hopper');
      assert.equal(mail.from, 'hopper@example.org');
      assert.deepEqual(mail.to.sort(), ['ops@example.org', 'someone@example.org']);
      assert.match(mail.raw, new RegExp(`Subject: done ${job.id}`));
      assert.match(mail.raw.replace(/=\r?\n/g, ''), /\/downloads\//);
      const [n] = d.ctx.store.notifications.forJob(job.id);
      // The server has the mail a moment before hopper records that it was sent.
      await waitFor('sent', () => d.ctx.store.notifications.get(n.id)?.state === 'sent');
      assert.equal(d.ctx.store.notifications.deliveries(n.id).length, 2);
      assert.match(d.ctx.store.notifications.deliveries(n.id)[0].error ?? '', /451/);
      // The message sent again is the same message: a mail system can tell it is not a second one.
      const ids = server.offered.map((raw) => /^Message-ID: (.*)$/im.exec(raw)?.[1]?.trim());
      assert.deepEqual(ids, [`<${job.id}.succeeded.${n.id}@example.org>`, `<${job.id}.succeeded.${n.id}@example.org>`]);
    } finally {
      await d.cleanup();
      await server.close();
    }
  });

  it('an email waits out an SMTP outage and is sent when the server is back', async () => {
    const probe = await smtp();
    const port = probe.port;
    await probe.close();
    const d = await testDaemon({ recipes: { mailing }, config: { smtp: { url: url(port) } }, notifyRetryBaseMs: 100 });
    let server: Awaited<ReturnType<typeof smtp>> | undefined;
    try {
      d.drop('m.yaml', request('mailing', { text: 'x' }, { id: 'mail-2' }));
      const job = await d.job('mail-2', ended);
      assert.equal(job.state, 'succeeded', 'a mail outage never fails the job');
      const [n] = d.ctx.store.notifications.forJob(job.id);
      await waitFor('a failed try', () => d.ctx.store.notifications.deliveries(n.id).length > 0);
      assert.match(d.ctx.store.notifications.get(n.id)!.lastError ?? '', /ECONNREFUSED|connect/i);
      server = await smtp(port);
      await waitFor('the email', () => server!.received.length === 1, 15_000);
      await waitFor('sent', () => d.ctx.store.notifications.get(n.id)?.state === 'sent');
    } finally {
      await d.cleanup();
      await server?.close();
    }
  });

  it('a wrong password is reported without showing it', async () => {
    const server = await smtp();
    const d = await testDaemon({ recipes: { mailing }, config: { smtp: { url: url(server.port, 'wrong-pass-0815') } }, notifyRetryBaseMs: 60_000 });
    try {
      d.drop('m.yaml', request('mailing', { text: 'x' }, { id: 'mail-3' }));
      const job = await d.job('mail-3', ended);
      const [n] = d.ctx.store.notifications.forJob(job.id);
      await waitFor('a failed try', () => d.ctx.store.notifications.get(n.id)?.lastError ?? undefined);
      const error = d.ctx.store.notifications.get(n.id)!.lastError!;
      assert.match(error, /Invalid|auth/i);
      assert.ok(!error.includes('wrong-pass-0815'));
    } finally {
      await d.cleanup();
      await server.close();
    }
  });
});

describe('email without SMTP', () => {
  it('a failed job emails its requester a short explanation, not a stack trace', async () => {
    const failing = echoRecipe('failing', { steps: [{ run: { command: ['sh', '-c', 'echo "Traceback (most recent call last):"; echo "  at deep.frame (x.js:1:2)"; exit 4'] } }] });
    const d = await testDaemon({ recipes: { failing } });
    try {
      d.drop('f.yaml', request('failing', {}, { id: 'fails-mail', notify: { email: 'someone@example.org' } }));
      const job = await d.job('fails-mail', ended);
      assert.equal(job.state, 'failed');
      const eml = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-failed`)));
      const mail = readEml(eml);
      assert.match(mail.headers.subject, /failing request failed/);
      const n = d.ctx.store.notifications.forJob(job.id).find((x) => x.event === 'failed' && x.channel === 'email')!;
      assert.equal(mail.headers['message-id'], `<${job.id}.failed.${n.id}@localhost>`, 'one notification, one Message-ID');
      assert.match(mail.body, /What went wrong: a processing step failed \(exit code 4\)/);
      assert.doesNotMatch(mail.body, /Traceback|deep\.frame/, 'only the first line, no output or trace');
    } finally {
      await d.cleanup();
    }
  });

  it('a URL refused by the outbound policy: the requester reads that the address is not reached, the admin reads what to change', async () => {
    const fetcher = {
      kind: 'recipe',
      name: 'fetcher',
      params: { type: 'object', required: ['url'], properties: { url: { type: 'string', format: 'uri' } } },
      steps: [{ fetch: { url: '{{params.url}}', to: 'in/' } }],
    };
    const d = await testDaemon({ recipes: { fetcher }, config: { outbound: { allow: [] } } });
    try {
      d.drop('o.yaml', request('fetcher', { url: 'http://127.0.0.1:9/x.csv' }, { id: 'refused-mail', notify: { email: 'someone@example.org' } }));
      const job = await d.job('refused-mail', ended);
      assert.equal(job.errorCode, 'E_OUTBOUND');
      assert.match(job.errorMessage ?? '', /outbound\.allow/, 'the admin sees what to change');
      const eml = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).find((f) => f.includes(`${job.id}-failed`)));
      const body = readEml(eml).body;
      assert.match(body, /What went wrong: a URL it names points to an address this service does not reach \(127\.0\.0\.1 is a loopback address\)/);
      assert.doesNotMatch(body, /hopper\.yaml|outbound\.allow/, 'nothing the requester cannot act on');
    } finally {
      await d.cleanup();
    }
  });
});

