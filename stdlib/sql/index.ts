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
    return walkAll(entry.statements, opts.prepared).statements;
  };

  return {
    analyze,
    classify(text, opts) {
      const statements = analyze(text, opts);
      const actions = new Array<SqlAction>(statements.length);
      for (let i = 0; i < statements.length; i++) actions[i] = statements[i]!.action;
      return actions;
    },
  };
}

/**
 * How a statement changes the session's SQL-level prepared statements: `PREPARE name` adds
 * `name` (as PostgreSQL spells it: unquoted names are lower-cased), `DEALLOCATE name` removes it,
 * `DEALLOCATE ALL` (`deallocate: null`) removes all. For callers that keep the map passed as
 * `options.prepared` (the PREPARE's action is what `EXECUTE name` runs).
 */
export function sessionChange(statement: { ast: unknown }): { prepare?: string; deallocate?: string | null } | null {
  const ast = statement.ast as { PrepareStmt?: { name?: string }; DeallocateStmt?: { name?: string; isall?: boolean } } | null;
  if (ast === null || typeof ast !== 'object') return null;
  if (ast.PrepareStmt) return { prepare: ast.PrepareStmt.name ?? '' };
  if (ast.DeallocateStmt) return { deallocate: ast.DeallocateStmt.isall || ast.DeallocateStmt.name === undefined ? null : ast.DeallocateStmt.name };
  return null;
}

function build(text: string): CacheEntry {
  // libpg-query refuses an empty string; PostgreSQL answers it with EmptyQueryResponse: no statement.
  if (text.trim() === '') return { statements: [], usesPrepared: false };
  let stmts: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = (parseSync(text) as unknown as { stmts?: typeof stmts }).stmts ?? [];
  } catch (e) {
    return { statements: [unparsed(text, `does not parse: ${e instanceof Error ? e.message : String(e)}`)], usesPrepared: false };
  }
  const raw = splitStatements(text, stmts).map((r) => ({ text: r.text, ast: r.stmt }));
  return walkAll(raw, undefined);
}

/**
 * Classify the statements of one message in order. A `PREPARE p` earlier in the message is
 * visible to a later `EXECUTE p` (and `DEALLOCATE` removes it), on top of the caller's map.
 */
function walkAll(raw: readonly { text: string; ast: unknown }[], callerPrepared: ReadonlyMap<string, SqlAction> | undefined): CacheEntry {
  const statements: AnalyzedStatement[] = [];
  let usesPrepared = false;
  let prepared = callerPrepared;
  for (const r of raw) {
    if (r.ast === null) {
      statements.push(r as AnalyzedStatement);
      continue;
    }
    const { statement, facts } = analyzed(r.text, r.ast, prepared === undefined ? undefined : { prepared });
    usesPrepared ||= facts?.usesPrepared ?? true;
    statements.push(statement);
    const change = sessionChange(r);
    if (change?.prepare !== undefined && !prepared?.has(change.prepare)) {
      // A second PREPARE of a taken name fails in PostgreSQL: the first one stays.
      prepared = new Map(prepared ?? []).set(change.prepare, statement.action);
    } else if (change?.deallocate !== undefined && prepared !== undefined) {
      const local = new Map(prepared);
      if (change.deallocate === null) local.clear();
      else local.delete(change.deallocate);
      prepared = local;
    }
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

const EMPTY: string[] = Object.freeze([]) as unknown as string[];

/** Sorted, frozen copy of a fact list (shared by every reader of a cached action). */
function frozenList(items: string[] | null): string[] {
  return items === null ? EMPTY : (Object.freeze(items.sort()) as string[]);
}

function toAction(text: string, f: Facts): SqlAction {
  const effects = orderKinds(f.effects);
  const kind = effects[0] ?? 'unknown';
  const action = {
    type: 'sql',
    kind,
    effects: Object.freeze(effects),
    reads: frozenList(f.reads.items),
    writes: frozenList(f.writes.items),
    columns: frozenList(f.columns.items),
    functions: frozenList(f.functions.items),
    has_where: f.hasWhere,
    limit: f.limit,
    text,
  } as SqlAction;
  withLazyTexts(action, text, true);
  if (f.reasons.length > 0) action.reason = [...new Set(f.reasons)].join('; ');
  return Object.freeze(action);
}

function unparsed(text: string, reason: string): AnalyzedStatement {
  return Object.freeze({ text: text.trim(), ast: null, action: unknownAction(text.trim(), reason, false) });
}

function unknownAction(text: string, reason: string, parses: boolean): SqlAction {
  const action = {
    type: 'sql',
    kind: 'unknown',
    effects: Object.freeze(['unknown']),
    reads: EMPTY,
    writes: EMPTY,
    columns: EMPTY,
    functions: EMPTY,
    has_where: false,
    limit: null,
    text,
  } as SqlAction;
  withLazyTexts(action, text, parses);
  action.reason = reason;
  return Object.freeze(action);
}

/**
 * Memoised normalised text and fingerprint, computed on first read. Text that libpg-query cannot
 * handle keeps its raw text as `normalized` and gets a `raw:`-prefixed hash of the text as
 * fingerprint, so two different unparseable statements never share an approval.
 *
 * The getters are shared functions reading per-action state from a non-enumerable symbol field
 * (no closures per action: this is the hot path).
 */
const LAZY = Symbol('hoop.sql.lazy');

class LazyTexts {
  normalized: string | undefined;
  fingerprint: string | undefined;
  constructor(readonly text: string, readonly parses: boolean) {}
}

type WithLazy = { [LAZY]: LazyTexts };

function rawFingerprint(text: string): string {
  return `raw:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

function getNormalized(this: WithLazy): string {
  const s = this[LAZY];
  if (s.normalized === undefined) {
    try {
      s.normalized = s.parses ? normalizeSync(s.text) : s.text;
    } catch {
      s.normalized = s.text;
    }
  }
  return s.normalized;
}

function getFingerprint(this: WithLazy): string {
  const s = this[LAZY];
  if (s.fingerprint === undefined) {
    try {
      s.fingerprint = s.parses ? fingerprintSync(s.text) : rawFingerprint(s.text);
    } catch {
      s.fingerprint = rawFingerprint(s.text);
    }
  }
  return s.fingerprint;
}

const LAZY_PROPERTIES: PropertyDescriptorMap = {
  normalized: { get: getNormalized, enumerable: true, configurable: false },
  fingerprint: { get: getFingerprint, enumerable: true, configurable: false },
};

function withLazyTexts(action: SqlAction, text: string, parses: boolean): void {
  Object.defineProperty(action, LAZY, { value: new LazyTexts(text, parses) });
  Object.defineProperties(action, LAZY_PROPERTIES);
}
