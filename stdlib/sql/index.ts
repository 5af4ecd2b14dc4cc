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
// pay for them. They are getters (see SqlFacts): property reads and JSON see them, an object
// spread (`{...action}`) does not — use `JSON.parse(JSON.stringify(action))` for a plain copy.

import { createHash } from 'node:crypto';
import { fingerprintSync, loadModule, normalizeSync, parseSync } from 'libpg-query';
import type { SqlAction, SqlClassifier, SqlClassifyOptions, SqlEstimate, SqlKind } from '../facts.ts';
import { SQL_KINDS } from '../../language/ast.ts';
import { EFFECTFUL_FUNCTIONS, SAFE_FUNCTIONS } from './functions.ts';
import { Lru } from './lru.ts';
import { literalTemplate } from './literal-template.ts';
import { splitStatements } from './split.ts';
import { classifyStatement, defaultSchema, orderKinds, readRawNamesWith, UNQUALIFIED, UNQUALIFIED_RE, type Facts, type RawNames } from './walk.ts';

export { SAFE_FUNCTIONS, EFFECTFUL_FUNCTIONS, IDENTITY_SETTINGS } from './functions.ts';

/** One statement of the input: its own text, its libpg-query AST and its facts. */
export interface AnalyzedStatement {
  text: string;
  /** The libpg-query `RawStmt.stmt` node (e.g. `{ SelectStmt: {...} }`); null when the text does not parse. Read-only: it is shared. */
  ast: unknown;
  action: SqlAction;
  /**
   * Set when PostgreSQL's grammar refuses the text: the parser's own message and its cursor
   * position as PostgreSQL reports it (1-based, in characters of the whole text passed in), so a
   * front door can answer with what the server would have said.
   */
  parseError?: ParseError;
}

export interface ParseError {
  message: string;
  /** 1-based character (code point) offset into the text, like an ErrorResponse's P field. */
  position: number;
  /** The parser source file that raised it (`scan.l`, `gram.y`, `src_backend_parser_parser.c`), when known. */
  file?: string;
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
  /** Some statement is an EXECUTE or FETCH: its facts depend on the caller's prepared statements and cursors. */
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
    if (!entry.usesPrepared || (opts?.prepared === undefined && opts?.cursors === undefined)) return entry.statements;
    // EXECUTE and FETCH depend on the session's prepared statements and cursors: re-walk (not re-parse) with them.
    return walkAll(entry.statements, opts).statements;
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
 * How a statement changes the session's named server objects, as PostgreSQL spells the names
 * (unquoted names are lower-cased): `PREPARE name` adds a prepared statement, `DEALLOCATE name`
 * removes it (`deallocate: null`: ALL); `DECLARE name` opens a cursor (`hold`: WITH HOLD), `CLOSE`
 * closes one (`close: null`: ALL); `DISCARD ALL` drops all of both; a transaction statement may end
 * cursors; `fetch` names the cursor a FETCH or MOVE runs, `execute` the statement an EXECUTE runs. For callers that keep the maps passed as
 * `options.prepared` / `options.cursors` (the PREPARE's or DECLARE's action is what `EXECUTE name`
 * or `FETCH name` runs). A change takes effect only once the server has confirmed the statement.
 */
export interface SessionChange {
  prepare?: string;
  deallocate?: string | null;
  declare?: { name: string; hold: boolean };
  close?: string | null;
  discardAll?: true;
  /** COMMIT / ROLLBACK / PREPARE TRANSACTION (which ends the transaction like a rollback for the session's cursors). */
  transaction?: 'commit' | 'rollback';
  /** SAVEPOINT name / RELEASE name / ROLLBACK TO name: a rollback to a savepoint closes the cursors opened after it. */
  savepoint?: { op: 'set' | 'release' | 'rollback_to'; name: string };
  fetch?: string;
  /** The prepared statement an EXECUTE runs. */
  execute?: string;
}

/** DeclareCursorStmt.options: CURSOR_OPT_HOLD (PostgreSQL's parsenodes.h). */
const CURSOR_OPT_HOLD = 0x20;

export function sessionChange(statement: { ast: unknown }): SessionChange | null {
  const ast = statement.ast as {
    PrepareStmt?: { name?: string };
    DeallocateStmt?: { name?: string; isall?: boolean };
    DeclareCursorStmt?: { portalname?: string; options?: number };
    ClosePortalStmt?: { portalname?: string };
    DiscardStmt?: { target?: string };
    TransactionStmt?: { kind?: string; savepoint_name?: string };
    FetchStmt?: { portalname?: string };
    ExecuteStmt?: { name?: string };
  } | null;
  if (ast === null || typeof ast !== 'object') return null;
  if (ast.PrepareStmt) return { prepare: ast.PrepareStmt.name ?? '' };
  if (ast.DeallocateStmt) return { deallocate: ast.DeallocateStmt.isall || ast.DeallocateStmt.name === undefined ? null : ast.DeallocateStmt.name };
  if (ast.DeclareCursorStmt) return { declare: { name: ast.DeclareCursorStmt.portalname ?? '', hold: ((ast.DeclareCursorStmt.options ?? 0) & CURSOR_OPT_HOLD) !== 0 } };
  if (ast.ClosePortalStmt) return { close: ast.ClosePortalStmt.portalname ?? null };
  if (ast.DiscardStmt) return ast.DiscardStmt.target === 'DISCARD_ALL' ? { discardAll: true } : null;
  if (ast.FetchStmt) return { fetch: ast.FetchStmt.portalname ?? '' };
  if (ast.ExecuteStmt) return { execute: ast.ExecuteStmt.name ?? '' };
  if (ast.TransactionStmt) {
    switch (ast.TransactionStmt.kind) {
      case 'TRANS_STMT_COMMIT':
        return { transaction: 'commit' };
      case 'TRANS_STMT_ROLLBACK':
      case 'TRANS_STMT_PREPARE':
        return { transaction: 'rollback' };
      case 'TRANS_STMT_SAVEPOINT':
        return { savepoint: { op: 'set', name: ast.TransactionStmt.savepoint_name ?? '' } };
      case 'TRANS_STMT_RELEASE':
        return { savepoint: { op: 'release', name: ast.TransactionStmt.savepoint_name ?? '' } };
      case 'TRANS_STMT_ROLLBACK_TO':
        return { savepoint: { op: 'rollback_to', name: ast.TransactionStmt.savepoint_name ?? '' } };
      default:
        return null;
    }
  }
  return null;
}

/**
 * The session changes of a statement text, parsed with PostgreSQL's grammar, for callers that hold
 * only text (replaying a recording); one per statement, null for those that change nothing.
 */
export function sessionChangesOf(text: string): (SessionChange | null)[] {
  if (text.trim() === '' || text.includes('\u0000')) return [];
  try {
    const stmts = (parseSync(text) as unknown as { stmts?: { stmt?: unknown }[] }).stmts ?? [];
    return stmts.map((s) => sessionChange({ ast: s.stmt ?? null }));
  } catch {
    return [];
  }
}

function build(text: string): CacheEntry {
  // libpg-query refuses an empty string; PostgreSQL answers it with EmptyQueryResponse: no statement.
  if (text.trim() === '') return { statements: [], usesPrepared: false };
  // The parser reads a C string: it would stop at a NUL and never see what follows.
  if (text.includes('\u0000')) return { statements: [unparsed(text, 'the text contains a NUL character')], usesPrepared: false };
  let stmts: { stmt?: unknown; stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = (parseSync(text) as unknown as { stmts?: typeof stmts }).stmts ?? [];
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { statements: [unparsed(text, `does not parse: ${message}`, parseErrorOf(e, message))], usesPrepared: false };
  }
  const raw = splitStatements(text, stmts).map((r) => ({ text: r.text, ast: r.stmt }));
  return walkAll(raw, undefined);
}

/**
 * Classify the statements of one message in order. A `PREPARE p` earlier in the message is
 * visible to a later `EXECUTE p` (and `DEALLOCATE` removes it), a `DECLARE c` to a later `FETCH c`
 * (and `CLOSE` removes it), on top of the caller's maps. (A later statement runs only if the
 * earlier ones succeeded, so within one message each of them is assumed to.)
 */
function walkAll(raw: readonly { text: string; ast: unknown }[], caller: SqlClassifyOptions | undefined): CacheEntry {
  const statements: AnalyzedStatement[] = [];
  let usesPrepared = false;
  let prepared = caller?.prepared;
  let cursors = caller?.cursors;
  for (const r of raw) {
    if (r.ast === null) {
      statements.push(r as AnalyzedStatement);
      continue;
    }
    const opts = prepared === undefined && cursors === undefined ? undefined : { ...(prepared ? { prepared } : {}), ...(cursors ? { cursors } : {}) };
    const { statement, facts } = analyzed(r.text, r.ast, opts);
    usesPrepared ||= facts?.usesPrepared ?? true;
    statements.push(statement);
    const change = sessionChange(r);
    if (change === null) continue;
    if (change.prepare !== undefined && !prepared?.has(change.prepare)) {
      // A second PREPARE of a taken name fails in PostgreSQL: the first one stays.
      prepared = new Map(prepared ?? []).set(change.prepare, statement.action);
    } else if (change.deallocate !== undefined && prepared !== undefined) {
      const local = new Map(prepared);
      if (change.deallocate === null) local.clear();
      else local.delete(change.deallocate);
      prepared = local;
    } else if (change.declare !== undefined && !cursors?.has(change.declare.name)) {
      cursors = new Map(cursors ?? []).set(change.declare.name, statement.action);
    } else if (change.close !== undefined && cursors !== undefined) {
      const local = new Map(cursors);
      if (change.close === null) local.clear();
      else local.delete(change.close);
      cursors = local;
    } else if (change.discardAll) {
      prepared = prepared && new Map();
      cursors = cursors && new Map();
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
  const reason = f.reasons.length > 0 ? [...new Set(f.reasons)].join('; ') : undefined;
  const reads = f.reads.items ?? EMPTY;
  const writes = f.writes.items ?? EMPTY;
  const columns = f.columns.items ?? EMPTY;
  if (!(hasPlaceholder(reads) || hasPlaceholder(writes) || hasPlaceholder(columns))) {
    return new SqlFacts(
      effects[0] ?? 'unknown', Object.freeze(effects) as SqlKind[], resolvedList(reads, byDefault), resolvedList(writes, byDefault),
      resolvedList(columns, byDefault), frozenList(f.functions.items), f.hasWhere, f.limit, text, true, reason,
    );
  }
  const raw = internedRaw(reads, writes, columns);
  const d = (raw.defaults ??= Object.freeze({ reads: resolvedList(raw.reads, byDefault), writes: resolvedList(raw.writes, byDefault), columns: resolvedList(raw.columns, byDefault) }));
  return new SqlFacts(
    effects[0] ?? 'unknown', Object.freeze(effects) as SqlKind[], d.reads, d.writes, d.columns, frozenList(f.functions.items), f.hasWhere, f.limit,
    text, true, reason, undefined, undefined, raw,
  );
}

/**
 * Raw facts with unqualified names, one object per distinct content (statements that differ only
 * in literal values have the same facts): what is worked out from them (their unqualified names,
 * their default resolution, a session's resolution of them) is then worked out once. Read-only.
 */
const RAW_INTERNED = new Lru<string, RawNames>(4096);

function internedRaw(reads: readonly string[], writes: readonly string[], columns: readonly string[]): RawNames {
  const key = JSON.stringify([reads, writes, columns]);
  let raw = RAW_INTERNED.get(key);
  if (raw === undefined) RAW_INTERNED.set(key, (raw = { reads: Object.freeze([...reads]), writes: Object.freeze([...writes]), columns: Object.freeze([...columns]) }));
  return raw;
}

// ----------------------------------------------------------------------------------------------
// Unqualified relation names. The walker leaves them as placeholders; an action's facts name them
// `public.x` (pg_catalog for its own relations) unless the caller, which knows the session's
// search_path and the catalog, resolves them with `resolveNames`.

/** The raw facts an action was made from (kept by SqlFacts itself), or undefined. */
const rawNames = { get: (a: SqlAction): RawNames | undefined => SqlFacts.rawOf(a) };

/** Schema(s) for an unqualified relation name; several when the caller cannot tell which one the server will use. */
export type NameResolver = (name: string, creating: boolean) => string | readonly string[];

const byDefault: NameResolver = defaultSchema;

function hasPlaceholder(items: readonly string[]): boolean {
  for (const x of items) if (x.includes(UNQUALIFIED)) return true;
  return false;
}

/**
 * The placeholders of one fact (walk.ts `unqualifiedName`: NUL, `r` or `c`, `:`, the name, NUL),
 * in order, found by scanning (the regex's iterator and match arrays cost more than the rest of a
 * resolution). Null when a NUL is not the start of a well-formed placeholder: the regex decides.
 */
function placeholders(x: string): { start: number; end: number; creating: boolean; name: string }[] | null {
  const out: { start: number; end: number; creating: boolean; name: string }[] = [];
  let p = x.indexOf(UNQUALIFIED);
  while (p >= 0) {
    const kind = x.charCodeAt(p + 1);
    const close = x.indexOf(UNQUALIFIED, p + 3);
    if ((kind !== 0x72 && kind !== 0x63) || x.charCodeAt(p + 2) !== 0x3a || close < 0) return null;
    out.push({ start: p, end: close + 1, creating: kind === 0x63, name: x.slice(p + 3, close) });
    p = x.indexOf(UNQUALIFIED, close + 1);
  }
  return out;
}

function placeholdersOf(x: string): { start: number; end: number; creating: boolean; name: string }[] {
  return placeholders(x) ?? [...x.matchAll(UNQUALIFIED_RE)].map((m) => ({ start: m.index!, end: m.index! + m[0].length, creating: m[1] === 'c', name: m[2]! }));
}

function resolvedList(items: readonly string[], resolve: NameResolver): string[] {
  if (items.length === 0) return EMPTY;
  const out = new Set<string>();
  for (const x of items) {
    if (!x.includes(UNQUALIFIED)) {
      out.add(x);
      continue;
    }
    // One placeholder per fact (a table, or a table's column); each schema gives one fact.
    let variants = [''];
    let last = 0;
    for (const m of placeholdersOf(x)) {
      const prefix = x.slice(last, m.start);
      const found = resolve(m.name, m.creating);
      if (typeof found === 'string' || found.length === 1) {
        const schema = typeof found === 'string' ? found : found[0]!;
        for (let i = 0; i < variants.length; i++) variants[i] = `${variants[i]}${prefix}${schema}.${m.name}`;
      } else {
        const next: string[] = [];
        for (const v of variants) for (const schema of found) next.push(`${v}${prefix}${schema}.${m.name}`);
        variants = next;
      }
      last = m.end;
    }
    const tail = x.slice(last);
    for (const v of variants) out.add(`${v}${tail}`);
  }
  return frozenList([...out]);
}

/** The unqualified relation names of an action: looked up (`lookups`) or being created (`creates`), or null when it has none. Shared: read-only. */
export function unqualifiedNames(action: SqlAction): { lookups: readonly string[]; creates: readonly string[] } | null {
  const raw = rawNames.get(action);
  if (!raw) return null;
  // Worked out once per walk: every action resolved from it shares the raw facts.
  let known = raw.names;
  if (known) return known;
  const lookups = new Set<string>();
  const creates = new Set<string>();
  for (const list of [raw.reads, raw.writes, raw.columns]) {
    for (const x of list) if (x.includes(UNQUALIFIED)) for (const m of placeholdersOf(x)) (m.creating ? creates : lookups).add(m.name);
  }
  known = Object.freeze({ lookups: Object.freeze([...lookups]), creates: Object.freeze([...creates]) });
  raw.names = known;
  return known;
}

/**
 * The action with its unqualified relation names resolved by `resolve` (the session's search_path
 * over the catalog). An action without unqualified names is returned as it is.
 */
export function resolveNames(action: SqlAction, resolve: NameResolver): SqlAction {
  const lists = resolvedFacts(action, resolve);
  return lists ? withResolved(action, lists) : action;
}

/** What `resolveNames` resolves: `reads`, `writes` and `columns` of an action of this shape. */
export interface ResolvedFacts {
  readonly shape: object;
  readonly reads: string[];
  readonly writes: string[];
  readonly columns: string[];
}

/**
 * An action's shape: its facts with the unqualified names still in, as an object shared by every
 * action with the same ones (statements differing only in literal values); undefined when it has
 * no unqualified name. Two actions of one shape resolve alike under the same resolver answers.
 */
export function resolutionShape(action: SqlAction): object | undefined {
  return rawNames.get(action);
}

/** `resolveNames`' facts, to reuse for another action of the same shape (`withResolved`); undefined without unqualified names. */
export function resolvedFacts(action: SqlAction, resolve: NameResolver): ResolvedFacts | undefined {
  const raw = rawNames.get(action);
  if (!raw) return undefined;
  return Object.freeze({ shape: raw, reads: resolvedList(raw.reads, resolve), writes: resolvedList(raw.writes, resolve), columns: resolvedList(raw.columns, resolve) });
}

/** The action with facts that `resolvedFacts` worked out for an action of its shape. */
export function withResolved(action: SqlAction, facts: ResolvedFacts): SqlAction {
  const raw = rawNames.get(action);
  if (raw === undefined || raw !== facts.shape) throw new Error('internal error: resolved facts of another shape');
  const a = action as SqlFacts;
  return new SqlFacts(a.kind, a.effects, facts.reads, facts.writes, facts.columns, a.functions, a.has_where, a.limit, a.text, true, a.reason, a, undefined, raw);
}

/** The action with these tables added to its `reads` and `writes` (what reading a view reads too). */
export function withTables(action: SqlAction, reads: readonly string[], writes: readonly string[]): SqlAction {
  const a = action as SqlFacts;
  const out = new SqlFacts(
    a.kind, a.effects, frozenList([...new Set([...a.reads, ...reads])]), frozenList([...new Set([...a.writes, ...writes])]),
    a.columns, a.functions, a.has_where, a.limit, a.text, true, a.reason, a, undefined, rawNames.get(action),
  );
  return out;
}

/**
 * The action with these functions run too (as the catalog names them: reading a view runs the
 * functions its query calls, reading a table with row security its policies' expressions). Each
 * is judged by the function table as a direct call is: a pg_catalog built-in by its name (safe,
 * or the kind of its effect), any other function a `call` (the gateway cannot see what it does).
 */
export function withFunctions(action: SqlAction, functions: readonly { schema: string; name: string }[]): SqlAction {
  if (functions.length === 0) return action;
  const a = action as SqlFacts;
  const kinds = new Set<SqlKind>(a.effects);
  const names: string[] = [];
  const reasons: string[] = a.reason === undefined ? [] : [a.reason];
  for (const f of functions) {
    const builtin = f.schema === 'pg_catalog';
    names.push(builtin ? f.name : `${f.schema}.${f.name}`);
    if (builtin && SAFE_FUNCTIONS.has(f.name)) continue;
    const effect = builtin && f.name !== 'set_config' ? EFFECTFUL_FUNCTIONS.get(f.name) : undefined;
    kinds.add(effect ?? 'call');
    if (effect === 'unknown') reasons.push(`${f.name}() runs SQL the classifier cannot see`);
  }
  const effects = SQL_KINDS.filter((k) => kinds.has(k));
  const reason = reasons.length > 0 ? [...new Set(reasons)].join('; ') : undefined;
  const out = new SqlFacts(
    effects[0] ?? 'unknown', Object.freeze(effects) as SqlKind[], a.reads, a.writes, a.columns,
    frozenList([...new Set([...a.functions, ...names])]), a.has_where, a.limit, a.text, true, reason, a, undefined, rawNames.get(action),
  );
  return out;
}

/** The walker's facts with the unqualified names in, as another thread sends them (`portableRawNames`, `restoredAction`). */
export interface PortableRawNames {
  reads: readonly string[];
  writes: readonly string[];
  columns: readonly string[];
}

/** What resolving an action's unqualified names needs, as plain data (undefined: it has none). */
export function portableRawNames(action: SqlAction): PortableRawNames | undefined {
  const raw = rawNames.get(action);
  return raw && { reads: [...raw.reads], writes: [...raw.writes], columns: [...raw.columns] };
}

/**
 * A plain copy of an action (JSON, or from another thread) as an action again: frozen, with its
 * normalised text and fingerprint as they came, and its unqualified names resolvable
 * (`resolveNames`) when `raw` comes with it. Without `raw` a copy's names stay as they were resolved.
 */
export function restoredAction(plain: SqlAction, raw: PortableRawNames | undefined): SqlAction {
  return SqlFacts.restored(plain, raw && internedRaw(raw.reads, raw.writes, raw.columns));
}

/** The same facts as an `unknown` action with this reason (a name the gateway cannot resolve). */
export function unknownWith(action: SqlAction, reason: string): SqlAction {
  const a = action as SqlFacts;
  return new SqlFacts('unknown', UNKNOWN_EFFECTS, a.reads, a.writes, a.columns, a.functions, a.has_where, a.limit, a.text, true, reason, a);
}

/** The same facts as a call of unknown effect too (a built-in's name that may mean a user's function). */
export function asCall(action: SqlAction, reason: string): SqlAction {
  const a = action as SqlFacts;
  const rank = (k: SqlKind): number => SQL_KINDS.indexOf(k);
  const effects = SQL_KINDS.filter((k) => k === 'call' || a.effects.includes(k));
  const kind = rank(a.kind) < rank('call') ? a.kind : 'call';
  const out = new SqlFacts(kind, Object.freeze(effects) as SqlKind[], a.reads, a.writes, a.columns, a.functions, a.has_where, a.limit, a.text, true, a.reason ?? reason, a, undefined, rawNames.get(action));
  return out;
}

function unparsed(text: string, reason: string, parseError?: ParseError): AnalyzedStatement {
  return Object.freeze({ text: text.trim(), ast: null, action: unknownAction(text.trim(), reason, false), ...(parseError ? { parseError } : {}) });
}

/**
 * libpg-query's SqlError carries the parser's `cursorpos` made 0-based (`sqlDetails.cursorPosition`);
 * PostgreSQL counts it in characters from 1. Anything else thrown has no position to report.
 */
function parseErrorOf(e: unknown, message: string): ParseError | undefined {
  const details = (e as { sqlDetails?: { cursorPosition?: unknown; fileName?: unknown } } | null)?.sqlDetails;
  const pos = details?.cursorPosition;
  if (typeof pos !== 'number' || !Number.isInteger(pos) || pos < 0) return undefined;
  return { message, position: pos + 1, ...(typeof details?.fileName === 'string' ? { file: details.fileName } : {}) };
}

const UNKNOWN_EFFECTS = Object.freeze(['unknown']) as SqlKind[];

function unknownAction(text: string, reason: string, parses: boolean): SqlAction {
  return new SqlFacts('unknown', UNKNOWN_EFFECTS, EMPTY, EMPTY, EMPTY, EMPTY, false, null, text, parses, reason);
}

function rawFingerprint(text: string): string {
  return `raw:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

/** Normalised text and fingerprint by literal template (literal-template.ts), shared by every classifier. */
const byTemplate = new Lru<string, { normalized: string; fingerprint: string }>(4096);
/** How often a statement's normalised text and fingerprint came from its literal template (tests, benchmarks). */
export const literalTemplateStats = { shared: 0, proved: 0 };

/**
 * One statement's facts. A class (not a literal) so that `normalized` and `fingerprint` can be
 * lazy without a per-object property definition, which costs microseconds in V8: they are getters
 * on the prototype, computed on first read and remembered in private fields (writable even though
 * the instance is frozen). `toJSON` includes them, so recordings and audit records see every fact.
 *
 * Text that libpg-query cannot handle keeps its raw text as `normalized` and gets a `raw:`-prefixed
 * hash of the text as fingerprint, so two different unparseable statements never share an approval.
 */
class SqlFacts implements SqlAction {
  readonly type = 'sql' as const;
  readonly kind: SqlKind;
  readonly effects: SqlKind[];
  readonly reads: string[];
  readonly writes: string[];
  readonly columns: string[];
  readonly functions: string[];
  readonly has_where: boolean;
  readonly limit: number | null;
  readonly text: string;
  declare readonly reason?: string;
  declare readonly estimate?: SqlEstimate;
  declare readonly estimateError?: string;
  readonly #parses: boolean;
  #normalized: string | undefined;
  #fingerprint: string | undefined;
  /** The action this one was derived from (same text): its normalised text and fingerprint are this one's, computed once. */
  readonly #origin: SqlFacts | undefined;
  /** The walker's facts with the unqualified names still in (resolveNames resolves them), when it has any. */
  readonly #raw: RawNames | undefined;

  static rawOf(a: SqlAction): RawNames | undefined {
    return a instanceof SqlFacts ? a.#raw : undefined;
  }

  /** `restoredAction`. */
  static restored(p: SqlAction, raw: RawNames | undefined): SqlFacts {
    const list = (x: readonly string[] | undefined): string[] => Object.freeze([...(x ?? [])]) as string[];
    const estimate = p.estimate !== undefined || p.estimateError !== undefined ? { ...(p.estimate ? { estimate: p.estimate } : {}), ...(p.estimateError !== undefined ? { estimateError: p.estimateError } : {}) } : undefined;
    const out = new SqlFacts(
      p.kind, list(p.effects) as SqlKind[], list(p.reads), list(p.writes), list(p.columns), list(p.functions), p.has_where, p.limit, p.text, true, p.reason,
      undefined, estimate, raw,
    );
    out.#normalized = p.normalized;
    out.#fingerprint = p.fingerprint;
    return out;
  }

  constructor(
    kind: SqlKind, effects: SqlKind[], reads: string[], writes: string[], columns: string[], functions: string[],
    hasWhere: boolean, limit: number | null, text: string, parses: boolean, reason: string | undefined, from?: SqlAction,
    estimate?: { estimate?: SqlEstimate; estimateError?: string }, raw?: RawNames,
  ) {
    this.kind = kind;
    this.effects = effects;
    this.reads = reads;
    this.writes = writes;
    this.columns = columns;
    this.functions = functions;
    this.has_where = hasWhere;
    this.limit = limit;
    this.text = text;
    if (reason !== undefined) (this as { reason?: string }).reason = reason;
    if (estimate?.estimate) (this as { estimate?: SqlEstimate }).estimate = Object.freeze({ ...estimate.estimate });
    if (estimate?.estimateError !== undefined) (this as { estimateError?: string }).estimateError = estimate.estimateError;
    this.#parses = parses;
    this.#raw = raw;
    this.#origin = from instanceof SqlFacts && from.text === text && from.#parses === parses ? (from.#origin ?? from) : undefined;
    Object.freeze(this);
  }

  /** The same facts with the planner's estimate (or why there is none): stdlib/facts.ts `withEstimate`. */
  withEstimate(e: { estimate?: SqlEstimate; estimateError?: string }): SqlAction {
    const out = new SqlFacts(this.kind, this.effects, this.reads, this.writes, this.columns, this.functions, this.has_where, this.limit, this.text, this.#parses, this.reason, this, e, this.#raw);
    return out;
  }

  get normalized(): string {
    if (this.#origin !== undefined) return this.#origin.normalized;
    if (this.#normalized === undefined) {
      if (!this.#parses) this.#normalized = this.text;
      else if (!this.#fromTemplate()) {
        try {
          this.#normalized = normalizeSync(this.text);
        } catch {
          this.#normalized = this.text;
        }
      }
    }
    return this.#normalized!;
  }

  get fingerprint(): string {
    if (this.#origin !== undefined) return this.#origin.fingerprint;
    if (this.#fingerprint === undefined) {
      if (!this.#parses) this.#fingerprint = rawFingerprint(this.text);
      else if (!this.#fromTemplate()) {
        try {
          this.#fingerprint = fingerprintSync(this.text);
        } catch {
          this.#fingerprint = rawFingerprint(this.text);
        }
      }
    }
    return this.#fingerprint!;
  }

  /**
   * Fills both from a statement that differed only in its literals (literal-template.ts), or computes
   * both and, when the normalised text proves the template, shares them. False when the text has no
   * usable template (the getters then compute just what is asked).
   */
  #fromTemplate(): boolean {
    const t = literalTemplate(this.text);
    if (!t) return false;
    const shared = byTemplate.get(t.key);
    if (shared) {
      literalTemplateStats.shared++;
      this.#normalized = shared.normalized;
      this.#fingerprint = shared.fingerprint;
      return true;
    }
    try {
      this.#normalized = normalizeSync(this.text);
      this.#fingerprint = fingerprintSync(this.text);
    } catch {
      this.#normalized = undefined;
      this.#fingerprint = undefined;
      return false;
    }
    if (this.#normalized === t.numbered) {
      literalTemplateStats.proved++;
      byTemplate.set(t.key, { normalized: this.#normalized, fingerprint: this.#fingerprint });
    }
    return true;
  }

  toJSON(): SqlAction {
    const out: SqlAction = {
      type: 'sql', kind: this.kind, effects: this.effects, reads: this.reads, writes: this.writes,
      columns: this.columns, functions: this.functions, has_where: this.has_where, limit: this.limit,
      text: this.text, normalized: this.normalized, fingerprint: this.fingerprint,
    };
    if (this.reason !== undefined) out.reason = this.reason;
    if (this.estimate !== undefined) out.estimate = this.estimate;
    if (this.estimateError !== undefined) out.estimateError = this.estimateError;
    return out;
  }
}

readRawNamesWith((a) => SqlFacts.rawOf(a));
