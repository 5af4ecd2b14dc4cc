// Statement boundaries. libpg-query reports `stmt_location`/`stmt_len` as UTF-8 byte offsets
// (omitted when zero; a zero length means "to the end"), so non-ASCII text is sliced as bytes.

export interface RawStatement {
  stmt: unknown;
  /** The statement's own text, trimmed of surrounding whitespace. */
  text: string;
}

interface RawStmtJson {
  stmt?: unknown;
  stmt_location?: number;
  stmt_len?: number;
}

export function splitStatements(text: string, stmts: readonly RawStmtJson[]): RawStatement[] {
  const ascii = isAscii(text);
  const bytes = ascii ? null : Buffer.from(text, 'utf8');
  const out: RawStatement[] = [];
  for (const s of stmts) {
    const start = s.stmt_location ?? 0;
    const len = s.stmt_len ?? 0;
    let piece: string;
    if (bytes === null) piece = len > 0 ? text.slice(start, start + len) : text.slice(start);
    else piece = bytes.subarray(start, len > 0 ? start + len : bytes.length).toString('utf8');
    out.push({ stmt: s.stmt, text: piece.trim() });
  }
  return out;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
