import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import MimeNode from 'nodemailer/lib/mime-node/index.js';
import { composeOutboxMail } from '../../src/notify/outbox.js';

// composeOutboxMail builds a lone text part without MimeNode's streams. These
// tests hold it to the bytes MimeNode.build() gives for the same mail, so an
// upgrade of nodemailer that changes either shows here.

type Mail = Parameters<typeof composeOutboxMail>[0];

const DATE = new Date(Date.UTC(2026, 10, 29, 12, 0, 0));

/** What MailComposer itself builds of the same mail, through its streams. */
async function byStream(mail: Mail): Promise<Buffer> {
  return new MailComposer({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text, headers: { 'X-Hopper-Job': mail.jobId }, messageId: mail.messageId, date: DATE, newline: 'unix' })
    .compile()
    .build();
}

const mail = (over: Partial<Mail> = {}): Mail => ({
  from: 'hopper@example.org',
  to: ['someone@example.org'],
  subject: 'Your package-url is ready',
  text: 'Download: http://localhost:8765/downloads/j1/j1.zip?expires=1893456000&sig=0123456789abcdef\n(the link expires 2030-01-01T00:00:00Z)\n',
  jobId: 'job-1',
  messageId: '<job-1.succeeded.7@example.org>',
  ...over,
});

async function assertSame(m: Mail): Promise<void> {
  const fast = await composeOutboxMail(m, DATE);
  const slow = await byStream(m);
  assert.equal(fast.toString('utf8'), slow.toString('utf8'), `for ${JSON.stringify(m)}`);
  assert.ok(fast.equals(slow));
}

/** A small seeded generator, so a failure names an input that can be made again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('composeOutboxMail', () => {
  it('gives the bytes MimeNode.build() gives for a download mail (7bit and quoted-printable bodies)', async () => {
    await assertSame(mail());
    await assertSame(mail({ text: 'short and plain\n' }));
    await assertSame(mail({ text: 'x'.repeat(200) }));
  });

  it('gives the same bytes for non-ASCII subjects, names and bodies (encoded words, QP, base64)', async () => {
    await assertSame(mail({ subject: 'Ihr Paket ist fertig: Größe 3 MB', text: 'Grüße aus Köln =) \t\n' }));
    await assertSame(mail({ subject: 'Ваш пакет готов', text: 'Скачать: http://example.org/файл.zip\nСпасибо\n'.repeat(5) }));
    await assertSame(mail({ from: '"Hopper, the daemon" <hopper@example.org>', to: ['Zoë <zoe@example.org>', 'b@example.org'], subject: '😀 done' }));
  });

  it('gives the same bytes for empty, CR-laden and whitespace-ended text', async () => {
    await assertSame(mail({ text: '' }));
    await assertSame(mail({ text: 'a\r\nb\rc\r' }));
    await assertSame(mail({ text: 'ends in a tab\t' }));
    await assertSame(mail({ text: '€ ends in spaces   ' }));
    await assertSame(mail({ subject: 'line\r\nInjected: header', text: 'x' }));
  });

  it('builds a text mail without MimeNode.build() (the stream path it stands in for)', async () => {
    const build = MimeNode.prototype.build;
    MimeNode.prototype.build = () => {
      throw new Error('build() was called');
    };
    try {
      const eml = (await composeOutboxMail(mail({ subject: 'Größe' }), DATE)).toString();
      assert.match(eml, /^Subject: =\?UTF-8\?Q\?Gr=C3=B6=C3=9Fe\?=$/m);
    } finally {
      MimeNode.prototype.build = build;
    }
  });

  it('gives the same bytes as MimeNode.build() for 3,000 random mails', async () => {
    const pieces = ['a', ' ', '\t', '\n', '\r', '\r\n', '=', '.', '?', '_', 'é', '€', '😀', 'дом', '\u0000', 'x'.repeat(80), '  \n', 'http://e.org/?a=1&b=2'];
    const next = random(4711);
    const text = (max: number): string => Array.from({ length: Math.floor(next() * max) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
    for (let i = 0; i < 3000; i++) {
      const name = text(4);
      await assertSame(
        mail({
          subject: text(12),
          text: text(40),
          ...(i % 3 === 0 ? { from: `"${name.replace(/["\\]/g, '')}" <hopper@example.org>`, to: ['a@example.org', `${name.replace(/[^a-z]/g, '')}x@example.org`] } : {}),
        }),
      );
    }
  });
});
