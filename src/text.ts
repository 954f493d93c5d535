// Text from outside (a server's status line, a command's output, a requester's
// params) can carry terminal control sequences: ESC [2J clears an admin's
// screen, ESC ] 52 writes their clipboard, a bare CR overwrites what a line
// said. Such text is made printable where hopper stores a message and where
// the CLI prints: each control character is shown as an escape, not obeyed.

// C0 controls but tab and newline, DEL, and the C1 controls (U+0080–U+009F,
// which some terminals obey like ESC sequences); also the bidi overrides
// that make a line read other than it is.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function escaped(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every control character (but tab and newline) shown as `\xNN`. */
export function printable(text: string): string {
  return text.replace(CONTROL, escaped);
}
