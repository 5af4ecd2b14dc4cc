// The SQL classifier: PostgreSQL's own grammar (libpg-query) → one SqlAction per statement.
//
// `loadSqlClassifier()` awaits the wasm module once; everything after is synchronous. Results are
// cached by the exact input text in a bounded LRU, so a repeated statement costs one map lookup;
// `analyze` and `classify` share the cache (the AST is parsed once). Actions and their arrays are
// frozen because they are shared between callers; the AST is shared too and must be treated as
// read-only.
//
// `normalized` and `fingerprint` each need another pass of libpg-query over the text, so they are
// computed on first read (and then remembered): a caller that decides on `kind` alone does not
// pay for them. They are ordinary enumerable properties to every reader (JSON, spread, CEL).

import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, normalizeSync, parseSync } from 'libpg-query';
import type { SqlAction, SqlClassifier, SqlClassifyOptions } from '../facts.ts';
import { Lru } from './lru.ts';
import { splitStatements } from './split.ts';
import { classifyStatement, orderKinds, type Facts } from './walk.ts';

export { SAFE_FUNCTIONS, EFFECTFUL_FUNCTIONS, IDENTITY_SETTINGS } from './functions.ts';

/** One statement of the input: its own text, its libpg-query AST and its facts. */
export interface AnalyzedStatement {
  text: string;
  /** The libpg-query `RawStmt.stmt` node (e.g. `{ SelectStmt: {...} }`); null when the text does not parse. Read-only: it is shared. */
  ast: unknown;
  action: SqlAction;
}

export interface SqlAnalyzer {
  /** Like `classify`, with each statement's AST. Never throws. */
  analyze(text: string, options?: SqlClassifyOptions): AnalyzedStatement[];
}

export interface SqlClassifierOptions {
  /** Entries in the classification cache (default 2048; 0 disables it). */
  cacheSize?: number;
}

/** Texts longer than this are classified but not cached (a cache of huge texts would hold memory hostage). */
const MAX_CACHED_TEXT = 64 * 1024;

interface CacheEntry {
  statements: AnalyzedStatement[];
  /** Some statement is an EXECUTE: its facts depend on the caller's prepared statements. */
  usesPrepared: boolean;
}

let loaded: Promise<void> | null = null;

export async function loadSqlClassifier(options: SqlClassifierOptions = {}): Promise<SqlClassifier & SqlAnalyzer> {
  loaded ??= loadModule();
  await loaded;
  const cache = new Lru<string, CacheEntry>(options.cacheSize ?? 2048);

  const analyze = (text: string, opts?: SqlClassifyOptions): AnalyzedStatement[] => {
    if (typeof text !== 'string') return [unparsed(String(text), 'the statement is not text')];
    let entry = cache.get(text);
    if (entry === undefined) {
      entry = build(text);
      if (text.length <= MAX_CACHED_TEXT) cache.set(text, entry);
    }
    if (!entry.usesPrepared || opts?.prepared === undefined) return entry.statements;
    // EXECUTE depends on the session's prepared statements: re-walk (not re-parse) with them.
    return entry.statements.map((s) => (s.ast === null ? s : analyzed(s.text, s.ast, opts).statement));
  };

  return {
    analyze,
    classify: (text, opts) => analyze(text, opts).map((s) => s.action),
  };
}

function build(text: string): CacheEntry {
  let stmts: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = (parseSync(text) as unknown as { stmts?: typeof stmts }).stmts ?? [];
  } catch (e) {
    return { statements: [unparsed(text, `does not parse: ${e instanceof Error ? e.message : String(e)}`)], usesPrepared: false };
  }
  const statements: AnalyzedStatement[] = [];
  let usesPrepared = false;
  for (const raw of splitStatements(text, stmts)) {
    const { statement, facts } = analyzed(raw.text, raw.stmt, undefined);
    usesPrepared ||= facts?.usesPrepared ?? false;
    statements.push(statement);
  }
  return { statements, usesPrepared };
}

function analyzed(text: string, ast: unknown, opts: SqlClassifyOptions | undefined): { statement: AnalyzedStatement; facts: Facts | null } {
  let facts: Facts;
  try {
    facts = classifyStatement(ast, text, opts);
  } catch (e) {
    // A broken invariant in the walker must not open the gate: the statement is unknown.
    return { statement: { text, ast, action: unknownAction(text, `internal classifier error: ${e instanceof Error ? e.message : String(e)}`, true) }, facts: null };
  }
  return { statement: Object.freeze({ text, ast, action: toAction(text, facts) }), facts };
}

function toAction(text: string, f: Facts): SqlAction {
  const effects = orderKinds(f.effects);
  const kind = effects[0] ?? 'unknown';
  const lazy = lazyTexts(text, true);
  const action: SqlAction = {
    type: 'sql',
    kind,
    effects: Object.freeze(effects) as SqlAction['effects'],
    reads: Object.freeze([...f.reads].sort()) as string[],
    writes: Object.freeze([...f.writes].sort()) as string[],
    columns: Object.freeze([...f.columns].sort()) as string[],
    functions: Object.freeze([...f.functions].sort()) as string[],
    has_where: f.hasWhere,
    limit: f.limit,
    text,
    get normalized() { return lazy.normalized(); },
    get fingerprint() { return lazy.fingerprint(); },
  };
  if (f.reasons.length > 0) action.reason = [...new Set(f.reasons)].join('; ');
  return Object.freeze(action);
}

function unparsed(text: string, reason: string): AnalyzedStatement {
  return Object.freeze({ text: text.trim(), ast: null, action: unknownAction(text.trim(), reason, false) });
}

function unknownAction(text: string, reason: string, parses: boolean): SqlAction {
  const lazy = lazyTexts(text, parses);
  return Object.freeze({
    type: 'sql' as const,
    kind: 'unknown' as const,
    effects: Object.freeze(['unknown']) as SqlAction['effects'],
    reads: Object.freeze([]) as unknown as string[],
    writes: Object.freeze([]) as unknown as string[],
    columns: Object.freeze([]) as unknown as string[],
    functions: Object.freeze([]) as unknown as string[],
    has_where: false,
    limit: null,
    text,
    get normalized() { return lazy.normalized(); },
    get fingerprint() { return lazy.fingerprint(); },
    reason,
  });
}

/**
 * Memoised normalised text and fingerprint. Text that libpg-query cannot handle keeps its raw
 * text as `normalized` and gets a `raw:`-prefixed hash of the text as fingerprint, so two
 * different unparseable statements never share an approval.
 */
function lazyTexts(text: string, parses: boolean): { normalized: () => string; fingerprint: () => string } {
  let normalized: string | undefined;
  let fingerprint: string | undefined;
  const raw = (): string => `raw:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
  return {
    normalized: () => {
      if (normalized === undefined) {
        try {
          normalized = parses ? normalizeSync(text) : text;
        } catch {
          normalized = text;
        }
      }
      return normalized;
    },
    fingerprint: () => {
      if (fingerprint === undefined) {
        try {
          fingerprint = parses ? fingerprintSync(text) : raw();
        } catch {
          fingerprint = raw();
        }
      }
      return fingerprint;
    },
  };
}
