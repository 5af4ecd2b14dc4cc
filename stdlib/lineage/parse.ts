// Parsing for lineage, behind one small type so the SQL classifier's cached `analyze` (stdlib/sql)
// can be passed in instead: `(text) => analyzer.analyze(text)` has exactly this shape.

import { loadModule, parseSync } from 'libpg-query';

export interface ParsedStatement {
  text: string;
  /** `RawStmt.stmt` (e.g. `{ SelectStmt: {...} }`), or null when the text does not parse. */
  ast: unknown;
}

export type StatementParser = (text: string) => readonly ParsedStatement[];

let loaded: Promise<void> | undefined;

/** A parser over libpg-query (loads the wasm module once). Never throws: a parse error is one `ast: null` statement. */
export async function loadStatementParser(): Promise<StatementParser> {
  loaded ??= loadModule();
  await loaded;
  return (text) => {
    try {
      const result = parseSync(text) as unknown as { stmts?: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[] };
      return (result.stmts ?? []).map((s) => {
        const start = s.stmt_location ?? 0;
        const end = s.stmt_len ? start + s.stmt_len : text.length;
        return { text: text.slice(start, end).trim(), ast: s.stmt ?? null };
      });
    } catch {
      return [{ text, ast: null }];
    }
  };
}
