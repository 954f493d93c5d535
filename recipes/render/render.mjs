#!/usr/bin/env node
// @ts-check
/**
 * render.mjs: the script of the `render` recipe (recipes/render.yaml).
 *
 * Writes a one-page document (a title, an optional name, lines of text) as a
 * PDF 1.4 file, one page per copy, with no dependencies and no network: only
 * node:fs and node:util. The standard Helvetica font needs no
 * embedding, so the file is small and plain: uncompressed, ASCII after the
 * header, every string escaped, byte offsets exact.
 *
 * Usage (values with a leading dash are safe in the --key=value form, which is
 * how the recipe passes them):
 *   node render.mjs --title=TEXT [--name=TEXT] [--lines=LINE1\nLINE2...] [--copies=N] [--out=FILE.pdf]
 *
 * Exit codes: 0 written; 2 bad arguments (one line on stderr saying which);
 * 1 the file could not be written.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

// The same bounds as the recipe's params schema, so the script is safe run by hand too.
const LIMITS = { title: 100, name: 100, lines: 40, line: 120, copies: 1000 };

const PAGE = { width: 595, height: 842, margin: 56 }; // A4 in points
const TEXT_WIDTH = PAGE.width - 2 * PAGE.margin;

class UsageError extends Error {}

/**
 * Helvetica advance widths (1/1000 em) for WinAnsi 32..126, from Adobe's AFM.
 * Everything above 126 counts as 1000, the widest Latin-1 glyph: a line may
 * wrap a little early, but never runs off the page.
 */
// prettier-ignore
const HELVETICA = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
  556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
  1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
  667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
  333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
  556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/** The code points WinAnsiEncoding puts at 0x80..0x9F (where Latin-1 has controls). */
const WIN_ANSI_EXTRA = new Map([
  [0x20ac, 0x80], [0x201a, 0x82], [0x0192, 0x83], [0x201e, 0x84], [0x2026, 0x85], [0x2020, 0x86],
  [0x2021, 0x87], [0x02c6, 0x88], [0x2030, 0x89], [0x0160, 0x8a], [0x2039, 0x8b], [0x0152, 0x8c],
  [0x017d, 0x8e], [0x2018, 0x91], [0x2019, 0x92], [0x201c, 0x93], [0x201d, 0x94], [0x2022, 0x95],
  [0x2013, 0x96], [0x2014, 0x97], [0x02dc, 0x98], [0x2122, 0x99], [0x0161, 0x9a], [0x203a, 0x9b],
  [0x0153, 0x9c], [0x017e, 0x9e], [0x0178, 0x9f],
]);

/**
 * One code point as a WinAnsi byte, or undefined when the font has no glyph for it.
 * @param {number} cp
 * @returns {number | undefined}
 */
function winAnsiByte(cp) {
  if (cp === 0x09) return 0x20;
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return WIN_ANSI_EXTRA.get(cp);
}

/**
 * Text as WinAnsi bytes (in a latin1 string). A character the font lacks is
 * tried without its accents ("ő" → "o", "ﬁ" → "fi"), else becomes "?": the
 * standard fonts cannot show CJK, emoji and the like, and a PDF reader would
 * otherwise show garbage for them.
 * @param {string} text
 * @returns {string}
 */
function toWinAnsi(text) {
  let out = '';
  for (const ch of text.normalize('NFC')) {
    const cp = /** @type {number} */ (ch.codePointAt(0));
    const byte = winAnsiByte(cp);
    if (byte !== undefined) {
      out += String.fromCharCode(byte);
      continue;
    }
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
      out += ' ';
      continue;
    }
    // Invisible format characters (zero-width space, direction marks) would print as "?".
    if (/\p{Cf}/u.test(ch)) continue;
    const folded = [...ch.normalize('NFKD').replace(/\p{M}/gu, '')].map((c) => winAnsiByte(/** @type {number} */ (c.codePointAt(0))));
    out += folded.length > 0 && folded.every((b) => b !== undefined) ? String.fromCharCode(.../** @type {number[]} */ (folded)) : '?';
  }
  return out;
}

/**
 * Width of WinAnsi text in points.
 * @param {string} bytes
 * @param {number} size
 */
function widthOf(bytes, size) {
  let units = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    units += b >= 32 && b <= 126 ? HELVETICA[b - 32] : 1000;
  }
  return (units * size) / 1000;
}

/**
 * Greedy word wrap to `TEXT_WIDTH`; a word wider than a line is cut.
 * @param {string} bytes WinAnsi text of one line
 * @param {number} size
 * @returns {string[]}
 */
function wrap(bytes, size) {
  /** @type {string[]} */
  const out = [];
  let line = '';
  for (const word of bytes.split(' ')) {
    const candidate = line === '' ? word : `${line} ${word}`;
    if (widthOf(candidate, size) <= TEXT_WIDTH) {
      line = candidate;
      continue;
    }
    if (line !== '') out.push(line);
    line = '';
    for (const ch of word) {
      if (line !== '' && widthOf(line + ch, size) > TEXT_WIDTH) {
        out.push(line);
        line = '';
      }
      line += ch;
    }
  }
  out.push(line);
  return out;
}

/**
 * A PDF literal string: backslash and parentheses escaped, every byte outside
 * printable ASCII as an octal escape, so no byte can end the string or the
 * content stream early.
 * @param {string} bytes
 */
function pdfString(bytes) {
  let out = '(';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    if (b === 0x5c || b === 0x28 || b === 0x29) out += `\\${bytes[i]}`;
    else if (b < 0x20 || b > 0x7e) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += bytes[i];
  }
  return `${out})`;
}

/**
 * A text string for the document info (shown by readers as the title): UTF-16BE
 * in hex, so any Unicode survives there even where the page font cannot show it.
 * @param {string} text
 */
function pdfTextString(text) {
  let hex = 'FEFF';
  for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0');
  return `<${hex}>`;
}

/**
 * @typedef {{ title: string, name: string, lines: string[], copies: number, out: string }} Options
 */

/**
 * @param {string[]} args
 * @returns {Options}
 */
function parseOptions(args) {
  /** @type {ReturnType<typeof parseArgs>} */
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      tokens: true,
      options: {
        title: { type: 'string' },
        name: { type: 'string' },
        lines: { type: 'string' },
        copies: { type: 'string' },
        out: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError(String(/** @type {Error} */ (err).message).replace(/\s*\n\s*/g, ' '));
  }
  const seen = new Set();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice`);
    seen.add(t.name);
  }
  const v = /** @type {Record<string, string | undefined>} */ (parsed.values);
  const length = (/** @type {string} */ s) => [...s].length;

  const title = v.title;
  if (title === undefined || title.trim() === '') throw new UsageError('--title is required and must not be empty');
  if (length(title) > LIMITS.title) throw new UsageError(`--title must be at most ${LIMITS.title} characters`);

  const name = v.name ?? '';
  if (length(name) > LIMITS.name) throw new UsageError(`--name must be at most ${LIMITS.name} characters`);

  const linesText = v.lines ?? '';
  if (linesText.includes('\r')) throw new UsageError('--lines must separate lines with \\n only');
  const lines = linesText === '' ? [] : linesText.split('\n');
  if (lines.length > LIMITS.lines) throw new UsageError(`--lines must have at most ${LIMITS.lines} lines`);
  const long = lines.findIndex((l) => length(l) > LIMITS.line);
  if (long >= 0) throw new UsageError(`--lines: line ${long + 1} must be at most ${LIMITS.line} characters`);

  const copiesText = v.copies ?? '1';
  const copies = /^[0-9]{1,7}$/.test(copiesText) ? Number(copiesText) : NaN;
  if (!(copies >= 1 && copies <= LIMITS.copies)) {
    throw new UsageError(`--copies must be a whole number from 1 to ${LIMITS.copies}, not ${JSON.stringify(copiesText.slice(0, 20))}`);
  }

  const out = v.out ?? 'document.pdf';
  // A bare name: the file lands in the working directory (the job's work dir), nowhere else.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.pdf$/.test(out)) throw new UsageError('--out must be a plain file name ending in .pdf');

  return { title, name, lines, copies, out };
}

/**
 * The drawing operators of one page, shared by every copy but for the footer.
 * Body text shrinks from 11 pt to 4 pt until it fits on the page.
 * @param {Options} o
 * @returns {{ head: string, footer: (copy: number) => string }}
 */
function pageLayout(o) {
  const x = PAGE.margin;
  const ops = [];
  let y = PAGE.height - PAGE.margin;
  /** @param {string} bytes @param {number} size @param {number} leading */
  const put = (bytes, size, leading) => {
    y -= leading;
    ops.push(`BT /F1 ${size} Tf ${x} ${y.toFixed(2)} Td ${pdfString(bytes)} Tj ET`);
  };
  for (const l of wrap(toWinAnsi(o.title), 20)) put(l, 20, 24);
  if (o.name !== '') {
    y -= 4;
    for (const l of wrap(toWinAnsi(o.name), 13)) put(l, 13, 17);
  }
  y -= 10;
  ops.push(`0.5 w ${x} ${y.toFixed(2)} m ${PAGE.width - x} ${y.toFixed(2)} l S`);
  y -= 6;

  const bottom = PAGE.margin;
  const encoded = o.lines.map(toWinAnsi);
  for (let size = 11; size >= 4; size--) {
    const leading = size * 1.3;
    const wrapped = encoded.flatMap((l) => wrap(l, size));
    if (wrapped.length * leading <= y - bottom) {
      for (const l of wrapped) put(l, size, leading);
      break;
    }
    if (size === 4) throw new UsageError('the text does not fit on one page');
  }
  const footer = (/** @type {number} */ copy) =>
    o.copies > 1 ? `\nBT /F1 8 Tf ${x} ${PAGE.margin / 2} Td ${pdfString(`Copy ${copy} of ${o.copies}`)} Tj ET` : '';
  return { head: ops.join('\n'), footer };
}

/**
 * The whole PDF. Objects: 1 catalog, 2 page tree, 3 font, 4 resources, 5 info,
 * then a page and its content stream for each copy.
 * @param {Options} o
 * @returns {Buffer}
 */
function renderPdf(o) {
  const layout = pageLayout(o);
  /** @type {string[]} */
  const chunks = [];
  /** @type {number[]} */
  const offsets = [];
  let at = 0;
  /** @param {string} s latin1 */
  const emit = (s) => {
    chunks.push(s);
    at += s.length;
  };
  /** @param {number} n @param {string} body */
  const object = (n, body) => {
    offsets[n] = at;
    emit(`${n} 0 obj\n${body}\nendobj\n`);
  };

  // The comment's bytes above 127 tell transfer tools the file is binary.
  emit('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n');
  const firstPage = 6;
  const kids = Array.from({ length: o.copies }, (_, i) => `${firstPage + 2 * i} 0 R`);
  object(1, '<< /Type /Catalog /Pages 2 0 R >>');
  object(2, `<< /Type /Pages /Kids [${kids.join(' ')}] /Count ${o.copies} >>`);
  object(3, '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  object(4, '<< /Font << /F1 3 0 R >> /ProcSet [/PDF /Text] >>');
  object(5, `<< /Title ${pdfTextString(o.title)} /Producer (hopper render) >>`);
  for (let i = 0; i < o.copies; i++) {
    const page = firstPage + 2 * i;
    const content = `${layout.head}${layout.footer(i + 1)}`;
    object(page, `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE.width} ${PAGE.height}] /Resources 4 0 R /Contents ${page + 1} 0 R >>`);
    object(page + 1, `<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
  }
  const size = firstPage + 2 * o.copies;
  const xref = at;
  // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, type, space, newline.
  emit(`xref\n0 ${size}\n0000000000 65535 f \n`);
  for (let n = 1; n < size; n++) emit(`${String(offsets[n]).padStart(10, '0')} 00000 n \n`);
  emit(`trailer\n<< /Size ${size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.from(chunks.join(''), 'latin1');
}

function main() {
  let options;
  let pdf;
  try {
    options = parseOptions(process.argv.slice(2));
    pdf = renderPdf(options);
  } catch (err) {
    process.stderr.write(`render: ${/** @type {Error} */ (err).message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  // Written beside, then renamed: a half-written file never matches the recipe's "*.pdf".
  const part = `.${options.out}.part`;
  try {
    writeFileSync(part, pdf);
    renameSync(part, options.out);
  } catch (err) {
    rmSync(part, { force: true });
    process.stderr.write(`render: cannot write ${options.out}: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`render: wrote ${options.out} (${options.copies} page${options.copies === 1 ? '' : 's'}, ${pdf.length} bytes)\n`);
}

main();
