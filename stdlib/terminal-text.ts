// Text that came from agents (statements, identities, reasons, error messages) printed on a
// person's terminal. Every control character is shown as an escape, so nothing inside a statement
// (an escape sequence in a comment, a carriage return, a bidi override) can move the cursor, erase
// a line, recolour, retitle or reorder what an approver reads: what is shown is what will run.
//
// Escaped: C0 (U+0000–001F, including tab and newline), DEL, C1 (U+0080–009F), the bidi controls
// (U+061C, U+200E–200F, U+202A–202E, U+2066–2069), the line/paragraph separators U+2028–2029, and
// the invisible zero-width characters (U+200B–200D, U+2060–2064, U+FEFF) that make two different
// names look alike.
// Each becomes `\xHH` (up to U+00FF) or `\uHHHH`. Backslashes are left as they are, so a literal
// `\x1b` in SQL text and an escaped ESC look alike; neither can act on the terminal.
//
// Here, below proxy/ and cli/, because both use it: the CLI's human and JSON output and every JSON
// answer of the admin API (proxy/admin/server.ts), which an approver may read with curl.

const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
/** The same set minus C0: JSON.stringify already escapes C0, but not these. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

const hex = (c: string, width: number): string => c.charCodeAt(0).toString(16).padStart(width, '0');

/** `text` with every control character shown as an escape (see the file comment). */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/**
 * A statement on one line: runs of spaces, tabs and line breaks become one space, everything else
 * that controls the terminal is escaped. With `max`, cut to at most that many characters of the
 * statement (an escape is never cut in half), marked with `...`.
 */
export function oneLine(text: string, max?: number): string {
  const flat = text.replace(/[ \t\r\n]+/g, ' ').trim();
  if (max === undefined) return escapeControls(flat);
  const chars = Array.from(flat);
  return chars.length > max ? `${escapeControls(chars.slice(0, max - 3).join(''))}...` : escapeControls(flat);
}

/**
 * JSON for a terminal: the same value (it parses back identically), with DEL, C1, bidi controls
 * and U+2028–2029 written as `\uHHHH` escapes, which JSON.stringify leaves raw.
 */
export function jsonForTerminal(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}
