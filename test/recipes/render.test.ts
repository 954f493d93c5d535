import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ended, tempRoot, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { httpServer, type TestServer } from '../helpers/http.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

const RECIPE = readFileSync(new URL('../../recipes/render.yaml', import.meta.url), 'utf8');
const SCRIPT = fileURLToPath(new URL('../../recipes/render/render.mjs', import.meta.url));
const INLINE_BELOW = 64 * 1024;

// ---------------------------------------------------------------------------
// A small, strict PDF reader: enough to prove the file is well formed, not a
// general parser. It trusts nothing it can check: header, trailer, every xref
// offset, every stream length, the page tree, and that page content is only
// the operators the script writes (so no text can have turned into code).
// ---------------------------------------------------------------------------

const WIN_ANSI_HIGH: Record<number, string> = { 0x80: '€', 0x85: '…', 0x91: '‘', 0x92: '’', 0x93: '“', 0x94: '”', 0x95: '•', 0x96: '–', 0x97: '—', 0x99: '™' };

/** Decodes one PDF literal string starting at `s[start] === '('`; returns its bytes as text and where it ends. */
function literalString(s: string, start: number): { text: string; end: number } {
  let depth = 0;
  let bytes = '';
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      const n = s[++i];
      const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '(': '(', ')': ')', '\\': '\\' };
      if (n in simple) bytes += simple[n];
      else if (/[0-7]/.test(n)) {
        const oct = /^[0-7]{1,3}/.exec(s.slice(i, i + 3))![0];
        bytes += String.fromCharCode(parseInt(oct, 8));
        i += oct.length - 1;
      } else if (n !== '\n') bytes += n;
      continue;
    }
    if (c === '(' && depth++ === 0) continue;
    if (c === ')' && --depth === 0) return { text: [...bytes].map((b) => WIN_ANSI_HIGH[b.charCodeAt(0)] ?? b).join(''), end: i + 1 };
    bytes += c;
  }
  throw new Error(`unterminated string at ${start}`);
}

interface ParsedPdf {
  pages: Array<{ lines: string[]; ops: string[] }>;
  title: string;
}

function parsePdf(pdf: Buffer): ParsedPdf {
  const s = pdf.toString('latin1');
  assert.ok(s.startsWith('%PDF-1.4\n'), 'starts with the PDF 1.4 header');
  assert.ok(s.endsWith('%%EOF\n'), 'ends with %%EOF');
  const startxref = /startxref\n(\d+)\n%%EOF\n$/.exec(s);
  assert.ok(startxref, 'startxref before %%EOF');
  const xrefAt = Number(startxref[1]);
  const head = /^xref\n0 (\d+)\n/.exec(s.slice(xrefAt));
  assert.ok(head, `"xref" at the startxref offset ${xrefAt}`);
  const size = Number(head[1]);
  const entriesAt = xrefAt + head[0].length;
  const offsets: number[] = [];
  for (let n = 0; n < size; n++) {
    const entry = s.slice(entriesAt + 20 * n, entriesAt + 20 * (n + 1));
    const m = /^(\d{10}) (\d{5}) ([nf]) \n$/.exec(entry);
    assert.ok(m, `xref entry ${n} is 20 bytes: ${JSON.stringify(entry)}`);
    if (n === 0) {
      assert.equal(m[3], 'f', 'entry 0 is the free list head');
      continue;
    }
    assert.equal(m[3], 'n');
    offsets[n] = Number(m[1]);
    assert.ok(s.startsWith(`${n} 0 obj\n`, offsets[n]), `xref offset of object ${n} (${offsets[n]}) points at "${n} 0 obj"`);
  }
  const trailer = /trailer\n<< \/Size (\d+) \/Root (\d+) 0 R \/Info (\d+) 0 R >>\nstartxref\n/.exec(s.slice(entriesAt + 20 * size));
  assert.ok(trailer, 'the trailer follows the xref table');
  assert.equal(Number(trailer[1]), size, 'trailer /Size is the xref size');

  const body = (n: number): string => {
    const at = offsets[n];
    assert.ok(at !== undefined, `object ${n} is in the xref`);
    const end = s.indexOf('\nendobj\n', at);
    return s.slice(at + `${n} 0 obj\n`.length, end);
  };
  const stream = (n: number): string => {
    const m = /^<< \/Length (\d+) >>\nstream\n/.exec(body(n));
    assert.ok(m, `object ${n} is a stream`);
    const start = offsets[n] + `${n} 0 obj\n`.length + m[0].length;
    const length = Number(m[1]);
    assert.ok(s.startsWith('\nendstream\nendobj\n', start + length), `object ${n}: /Length ${length} ends right before endstream`);
    return s.slice(start, start + length);
  };

  assert.match(body(Number(trailer[2])), /^<< \/Type \/Catalog \/Pages 2 0 R >>$/);
  const tree = /^<< \/Type \/Pages \/Kids \[([\d R]*)\] \/Count (\d+) >>$/.exec(body(2));
  assert.ok(tree, 'a page tree');
  const kids = [...tree[1].matchAll(/(\d+) 0 R/g)].map((m) => Number(m[1]));
  assert.equal(kids.length, Number(tree[2]), '/Count matches /Kids');
  assert.equal((s.match(/\/Type \/Page\b(?!s)/g) ?? []).length, kids.length, 'every /Type /Page is in the tree');
  assert.match(body(3), /\/BaseFont \/Helvetica \/Encoding \/WinAnsiEncoding/);

  const pages = kids.map((k) => {
    const page = /^<< \/Type \/Page \/Parent 2 0 R \/MediaBox \[0 0 595 842\] \/Resources 4 0 R \/Contents (\d+) 0 R >>$/.exec(body(k));
    assert.ok(page, `object ${k} is a page`);
    const content = stream(Number(page[1]));
    const lines: string[] = [];
    const ops: string[] = [];
    for (let i = 0, op = ''; i <= content.length; i++) {
      if (i === content.length || content[i] === '\n') {
        ops.push(op);
        op = '';
      } else if (content[i] === '(') {
        const str = literalString(content, i);
        lines.push(str.text);
        op += '()';
        i = str.end - 1;
      } else op += content[i];
    }
    for (const op of ops) {
      assert.match(op, /^(BT \/F1 \d+ Tf 56 \d+(\.\d+)? Td \(\) Tj ET|0\.5 w 56 [\d.]+ m 539 [\d.]+ l S)$/, 'page content is only the operators the script writes');
    }
    return { lines, ops };
  });
  const info = /\/Title <FEFF([0-9A-F]*)>/.exec(body(Number(trailer[3])));
  assert.ok(info, 'the info dictionary has a title');
  return { pages, title: Buffer.from(info[1], 'hex').swap16().toString('utf16le') };
}

/** Runs the script in `cwd` with `args`; never longer than 10 s. */
function runScript(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { cwd, timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const HOSTILE = {
  title: 'Report (draft) \\ 50% {{params.copies}}',
  name: '--name=admin',
  lines: ['(unbalanced', 'ends with a backslash \\', ') Tj ET BT /F1 99 Tf (', 'Grüße – “quoted” €5', '日本語 🎉 ﬁne ő', '', '--copies=1000'],
};
/** What the page shows of HOSTILE.lines: Latin-1 and WinAnsi kept, accents dropped where the font lacks the letter, the rest "?". */
const HOSTILE_SHOWN = ['(unbalanced', 'ends with a backslash \\', ') Tj ET BT /F1 99 Tf (', 'Grüße – “quoted” €5', '??? ? fine o', '', '--copies=1000'];

describe('render.mjs, run alone', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hopper-render-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a PDF 1.4 with exact xref offsets, one page per copy, every string escaped', async () => {
    const r = await runScript(dir, [`--title=${HOSTILE.title}`, `--name=${HOSTILE.name}`, `--lines=${HOSTILE.lines.join('\n')}`, '--copies=3', '--out=hostile.pdf']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'render: wrote hostile.pdf (3 pages, ' + readFileSync(path.join(dir, 'hostile.pdf')).length + ' bytes)\n');
    const pdf = readFileSync(path.join(dir, 'hostile.pdf'));
    const marker = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n'.length;
    assert.ok(pdf.subarray(marker).every((b) => b < 128), 'plain ASCII after the binary marker comment');
    const doc = parsePdf(pdf);
    assert.equal(doc.pages.length, 3);
    assert.equal(doc.title, HOSTILE.title, 'the info title keeps the exact Unicode text');
    doc.pages.forEach((p, i) => assert.deepEqual(p.lines, [HOSTILE.title, HOSTILE.name, ...HOSTILE_SHOWN, `Copy ${i + 1} of 3`]));
    const raw = pdf.toString('latin1');
    assert.ok(raw.includes('(Report \\(draft\\) \\\\ 50% {{params.copies}}) Tj'), 'parentheses and backslash escaped');
    assert.ok(raw.includes('(\\) Tj ET BT /F1 99 Tf \\() Tj'), 'a line that looks like operators stays one string');
    assert.ok(!readdirSync(dir).some((n) => n.endsWith('.part')), 'no partial file left');
  });

  it('the largest document the schema allows fits every page and stays valid', { timeout: 15_000 }, async () => {
    const wide = (n: number): string => '@'.repeat(n); // the widest Helvetica glyph
    const lines = Array.from({ length: 40 }, () => wide(120));
    const r = await runScript(dir, [`--title=${wide(100)}`, `--name=${wide(100)}`, `--lines=${lines.join('\n')}`, '--copies=1000', '--out=max.pdf']);
    assert.equal(r.code, 0, r.stderr);
    const doc = parsePdf(readFileSync(path.join(dir, 'max.pdf')));
    assert.equal(doc.pages.length, 1000);
    const ys = doc.pages[999].ops.flatMap((op) => /Td/.test(op) ? [Number(op.split(' ')[5])] : []);
    assert.ok(ys.slice(0, -1).every((y) => y >= 56 && y <= 842 - 56), 'text stays within the margins');
    assert.equal(doc.pages[999].lines.join(''), wide(100 + 100 + 40 * 120) + 'Copy 1000 of 1000', 'nothing is lost when lines wrap');
  });

  it('refuses bad arguments with exit code 2 and one line saying why, writing nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--copies=1'], /--title is required/],
      [['--title='], /--title is required/],
      [['--title=x', '--copies=0'], /--copies must be a whole number from 1 to 1000, not "0"/],
      [['--title=x', '--copies=1001'], /--copies must be a whole number from 1 to 1000/],
      [['--title=x', '--copies=1.5'], /--copies must be a whole number/],
      [['--title=x', '--copies=1e3'], /--copies must be a whole number/],
      [['--title=x', '--copies=-1'], /--copies must be a whole number/],
      [['--title=' + 'x'.repeat(101)], /--title must be at most 100 characters/],
      [['--title=x', '--lines=' + Array(41).fill('a').join('\n')], /--lines must have at most 40 lines/],
      [['--title=x', '--lines=ok\n' + 'y'.repeat(121)], /--lines: line 2 must be at most 120 characters/],
      [['--title=x', '--lines=a\r\nb'], /--lines must separate lines with \\n only/],
      [['--title=x', '--out=../escape.pdf'], /--out must be a plain file name ending in \.pdf/],
      [['--title=x', '--out=doc.txt'], /--out must be a plain file name/],
      [['--title=x', '--title=y'], /--title is given twice/],
      [['--title=x', '--colour=red'], /Unknown option '--colour'/],
      [['--title=x', 'stray'], /Unexpected argument 'stray'/],
      [['--title', '--name=x'], /argument is ambiguous/],
    ];
    const empty = mkdtempSync(path.join(dir, 'bad-'));
    for (const [args, message] of cases) {
      const r = await runScript(empty, args);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, message, JSON.stringify(args));
      assert.match(r.stderr, /^render: [^\n]+\n$/, `one line: ${JSON.stringify(r.stderr)}`);
    }
    assert.deepEqual(readdirSync(empty), []);
  });

  it('uses no module that could reach the network', () => {
    const source = readFileSync(SCRIPT, 'utf8');
    const imports = [...source.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]?([^'")]+)/g)].map((m) => m[1] ?? m[2]);
    assert.deepEqual(imports.sort(), ['node:fs', 'node:util']);
    assert.doesNotMatch(source, /\brequire\s*\(|\bfetch\s*\(|process\.binding/);
  });
});

interface Hook {
  event: string;
  doc: { requestId: string; state: string; outputs: Array<{ name: string; bytes: number; sha256: string; link: string; contentBase64?: string }> };
}

describe('recipe render, in a daemon', () => {
  let d: TestDaemon;
  let rx: TestServer & { hooks: Hook[] };
  let root: { root: string; cleanup(): void };

  before(async () => {
    const hooks: Hook[] = [];
    const server = await httpServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        hooks.push({ event: String(req.headers['x-hopper-event']), doc: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Hook['doc'] });
        res.writeHead(200).end();
      });
    });
    rx = { ...server, hooks };
    // {{recipe.dir}} is the daemon's own recipes folder: the script must be there before a job runs.
    root = tempRoot();
    mkdirSync(path.join(root.root, 'recipes', 'render'), { recursive: true });
    copyFileSync(SCRIPT, path.join(root.root, 'recipes', 'render', 'render.mjs'));
    d = await testDaemon({ root: root.root, recipes: { render: RECIPE } });
  });
  after(async () => {
    await d?.cleanup();
    await rx?.close();
    root?.cleanup();
  });

  /** Drops a request with this receiver as its webhook; resolves with the job and its `succeeded` webhook. */
  async function render(id: string, params: Record<string, unknown>): Promise<Hook['doc']> {
    d.drop(`${id}.yaml`, request('render', params, { id, notify: { webhook: `${rx.url}/hook` } }));
    const job = await d.job(id, ended, 15_000);
    assert.equal(job.state, 'succeeded', job.errorMessage ?? '');
    const hook = await waitFor(`the succeeded webhook of ${id}`, () => rx.hooks.find((h) => h.event === 'succeeded' && h.doc.requestId === id), 10_000);
    return hook.doc;
  }

  async function download(link: string): Promise<Buffer> {
    const u = new URL(link);
    const res = await fetch(`${d.http.address()}${u.pathname}${u.search}`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /application\/pdf/);
    return Buffer.from(await res.arrayBuffer());
  }

  it('the script in the recipes/render/ subfolder is no recipe and breaks nothing, also when it changes', async () => {
    assert.deepEqual(d.recipes.all().map((r) => r.name), ['render']);
    assert.equal(d.recipes.errors().size, 0);
    const script = path.join(d.root, 'recipes', 'render', 'render.mjs');
    writeFileSync(script, readFileSync(script));
    await sleep(300);
    assert.deepEqual(d.recipes.all().map((r) => r.name), ['render']);
    assert.equal(d.recipes.errors().size, 0);
  });

  it('one copy: the PDF travels inline (base64) in the succeeded webhook', async () => {
    const doc = await render('one', { title: 'Quarterly report', name: 'Ada Lovelace', lines: ['First line', 'Second line'] });
    assert.equal(doc.state, 'succeeded');
    assert.equal(doc.outputs.length, 1);
    const [out] = doc.outputs;
    assert.equal(out.name, 'document.pdf');
    assert.ok(out.bytes < INLINE_BELOW);
    assert.ok(out.contentBase64, 'inline content');
    const pdf = Buffer.from(out.contentBase64, 'base64');
    assert.equal(pdf.length, out.bytes);
    assert.equal(createHash('sha256').update(pdf).digest('hex'), out.sha256);
    const parsed = parsePdf(pdf);
    assert.equal(parsed.pages.length, 1);
    assert.deepEqual(parsed.pages[0].lines, ['Quarterly report', 'Ada Lovelace', 'First line', 'Second line'], 'no "Copy 1 of 1" footer');
    assert.equal(parsed.title, 'Quarterly report');
    assert.deepEqual(await download(out.link), pdf, 'the link serves the same file');
  });

  it('many copies: a file over inlineBelow comes as a link only, and the link serves every page', async () => {
    const copies = 300;
    const doc = await render('many', { title: 'Handout', lines: ['Room 4', 'Bring a pen'], copies });
    const [out] = doc.outputs;
    assert.ok(out.bytes >= INLINE_BELOW, `${out.bytes} bytes should be over 64 KiB`);
    assert.equal(out.contentBase64, undefined, 'no inline content');
    assert.match(out.link, /\/downloads\/[^/]+\/document\.pdf\?/);
    const pdf = await download(out.link);
    assert.equal(pdf.length, out.bytes);
    const parsed = parsePdf(pdf);
    assert.equal(parsed.pages.length, copies);
    assert.deepEqual(parsed.pages[copies - 1].lines, ['Handout', 'Room 4', 'Bring a pen', `Copy ${copies} of ${copies}`]);
  });

  it('hostile text (parentheses, backslashes, Unicode, a leading "--", placeholders) renders safely', async () => {
    const doc = await render('hostile', { ...HOSTILE, copies: 2 });
    const parsed = parsePdf(Buffer.from(doc.outputs[0].contentBase64!, 'base64'));
    assert.equal(parsed.pages.length, 2, 'a "--copies=1000" line stays text');
    assert.deepEqual(parsed.pages[1].lines, [HOSTILE.title, HOSTILE.name, ...HOSTILE_SHOWN, 'Copy 2 of 2']);
    assert.equal(parsed.title, HOSTILE.title);
  });

  it('bad params are rejected at intake with the reason, and make no job', async () => {
    const bad: Array<[string, Record<string, unknown>, string]> = [
      ['zero', { title: 'x', copies: 0 }, 'params.copies: must be at least 1'],
      ['huge', { title: 'x', copies: 1_000_000 }, 'params.copies: must be at most 1000'],
      ['half', { title: 'x', copies: 1.5 }, 'params.copies: must be a whole number'],
      ['untitled', { copies: 1 }, 'params.title: is required'],
      ['long', { title: 'x'.repeat(101) }, 'params.title: must be at most 100 characters'],
      ['multiline', { title: 'x', lines: ['a\nb'] }, 'params.lines[0]: must be one line (no line breaks)'],
      ['extra', { title: 'x', colour: 'red' }, 'params.colour: unknown key'],
    ];
    for (const [id] of bad) d.drop(`${id}.yaml`, request('render', bad.find((b) => b[0] === id)![1], { id }));
    for (const [id, , message] of bad) {
      const reason = await waitFor(`${id}.yaml to be rejected`, () => {
        const err = path.join(d.inboxDir, 'rejected', `${id}.yaml.error.txt`);
        return existsSync(path.join(d.inboxDir, 'rejected', `${id}.yaml`)) && existsSync(err) && readFileSync(err, 'utf8');
      }, 5_000);
      assert.ok(reason.includes(message), `${id}: ${reason}`);
      assert.equal(d.ctx.store.jobs.find(id), undefined, `${id} made no job`);
    }
  });
});
