// The session's name resolution, kept in step with the server: its effective search_path (startup
// value, SET, RESET, SET LOCAL, set_config in the one shape that certainly runs once, DISCARD ALL),
// with PostgreSQL's transaction scoping (a SET reverts on ROLLBACK and ROLLBACK TO SAVEPOINT, SET
// LOCAL at the end of its transaction), and the temporary relations the session created (pg_temp is
// searched first for relations). An unqualified relation name then resolves as the server will:
// the first schema of the path (implicit pg_temp and pg_catalog first, `$user` as the session user)
// that has it, per the resource's catalog.
//
// Two states are kept. `confirmed` follows what the server reported (each statement's completion,
// errors, ReadyForQuery); `predicted` is confirmed plus what was forwarded and not yet answered,
// assuming it succeeds. Statements are decided on the predicted state, one after the other within
// a message (a message stops at its first error, so later statements of it run only if earlier ones
// did). When a decision depends on an earlier message still running and the two states disagree
// about a name, the statement is refused rather than guessed.
//
// What cannot be followed makes resolution refuse (fail closed) until the path is set again: a
// search_path changed by code the gateway cannot see (DO, CALL, a function it does not know), an
// untracked set_config, a path naming another session's temporary schema.

import type { SqlAction } from '../../../stdlib/facts.ts';
import { asCall, resolutionShape, resolvedFacts, unqualifiedNames, withFunctions, withResolved, withTables, type AnalyzedStatement, type NameResolver, type ResolvedFacts } from '../../../stdlib/sql/index.ts';
import { markShadowed, operatorNames, shadowedBuiltin, shadowedOperator, shadowedOriginal, trustedBuiltinNames } from './builtin-shadows.ts';

/**
 * Relations that show values of many tables' columns: the planner statistics (sample values) and
 * pg_stat_activity, whose `query` is the text of every session's statement as the gateway's one
 * upstream role, literals and all (another agent's `UPDATE customers SET email = '...'`).
 */
const STATISTICS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data', 'pg_stat_activity'].map((r) => `pg_catalog.${r}`));
/** The built-ins behind pg_stat_activity's statement text, called directly. */
const STATEMENT_TEXT_FUNCTIONS: ReadonlySet<string> = new Set(['pg_stat_get_activity', 'pg_stat_get_backend_activity']);
const showsManyTables = (action: SqlAction, reads: readonly string[] = []): boolean =>
  [...action.reads, ...reads].some((q) => STATISTICS.has(q)) || action.functions.some((f) => STATEMENT_TEXT_FUNCTIONS.has(catalogFunctionName(f) ?? ''));
import { catalogFunctionName, EFFECTFUL_FUNCTIONS, SAFE_FUNCTIONS } from '../../../stdlib/sql/functions.ts';
import { parseSearchPath, searchPathRisk, sessionEffects, type SessionEffect } from '../../../stdlib/sql/search-path.ts';

/**
 * Why a session that starts with this search_path (the role's or database's default, the server's
 * configuration) is refused, or undefined: it must be readable and keep pg_catalog first.
 */
export function startupPathRisk(value: string): string | undefined {
  const list = parseSearchPath(value);
  if (list === null) return `the session's search_path ${JSON.stringify(value)} cannot be read`;
  const risk = searchPathRisk(list);
  return risk ? `the session's search_path ${JSON.stringify(value)} is not allowed through the gateway: ${risk}` : undefined;
}

/** What the resolver needs of the resource's catalog (read on the gateway's own connection, cached). */
export interface NameCatalog {
  /** For each name: the schemas (usable by the session's role) holding a relation of that name. */
  relationSchemas(names: readonly string[], deps?: unknown[]): Promise<Map<string, string[]>>;
  /** Schemas the session's role may use (USAGE): candidates for the creation schema. */
  usableSchemas(deps?: unknown[]): Promise<string[]>;
  /** For each `schema.name`: what reading it reads too (a view's base relations, a table's inheritance/partition ancestors). */
  relationSources(qualified: readonly string[], deps?: unknown[]): Promise<Map<string, string[]>>;
  /** For each `schema.name`: the functions reading it runs (its view query's, its row security policies'). */
  relationFunctions(qualified: readonly string[], deps?: unknown[]): Promise<Map<string, { schema: string; name: string }[]>>;
  /** Every table whose statistics pg_stats and pg_stats_ext show this role. */
  statisticsTables(deps?: unknown[]): Promise<string[]>;
  /** Function names defined outside pg_catalog, each with its schemas (a built-in's name may mean one of them). */
  functionsOutsideCatalog(deps?: unknown[]): Promise<Map<string, string[]>>;
  /** Operator names defined outside pg_catalog, each with its schemas. */
  operatorsOutsideCatalog(deps?: unknown[]): Promise<Map<string, string[]>>;
  /** Forget cached answers (a transaction that changed the schema ended). */
  invalidate(): void;
  /**
   * Optional. Each method above pushes onto `deps` a token for every cached answer it used; this
   * says whether all of them are still the answers the catalog would give now (none expired,
   * dropped or invalidated since). Without it, no answer is reused from one message to the next.
   */
  fresh?(deps: readonly unknown[]): boolean;
}

interface State {
  /** The effective search_path (null: unknown, `why` says why). */
  cur: string[] | null;
  /** The value a COMMIT keeps (the last plain SET of the transaction). */
  sess: string[] | null;
  why: string;
  /** Temporary relations this session has, name → dropped at commit (never changed in place: states share it). */
  temps: ReadonlyMap<string, boolean>;
  /** Code the gateway could not see may have created or dropped temporary relations. */
  tempsUnknown: boolean;
  /** A statement that may change the catalog ran in the open transaction: the committed catalog may be stale. */
  schemaChanged: boolean;
  /** How many statements that may change the catalog this session has run (a prepared statement re-parses after DDL). */
  ddl: number;
  /** Views created (or replaced) in the open transaction, with what their query reads: the catalog cannot show them yet (never changed in place). */
  newViews: ReadonlyMap<string, NewView>;
}

interface Frame {
  /** null: the transaction (explicit or implicit); else a savepoint's name. */
  name: string | null;
  implicit: boolean;
  saved: State;
}

interface Machine {
  s: State;
  frames: Frame[];
  aborted: boolean;
}

/** A concrete change, worked out when the statement was decided (temp names already resolved). */
type Op =
  | SessionEffect
  | { k: 'temp_add'; name: string; onCommitDrop: boolean }
  | { k: 'temp_drop'; name: string }
  | { k: 'opaque'; reason: string }
  | { k: 'schema_changed' }
  | ({ k: 'new_view'; q: string } & NewView);

/** A view created in the open transaction: what its query reads, and the functions reading it runs. */
interface NewView {
  reads: readonly string[];
  runs: readonly { schema: string; name: string }[];
}

/** A shape's resolution (`SessionNames.resolveOn`) and everything it was made on. */
interface ShapeResolution {
  answers: Answers;
  cur: string[] | null;
  temps: ReadonlyMap<string, boolean>;
  tempsUnknown: boolean;
  schemaChanged: boolean;
  facts: ResolvedFacts;
  /** What each name was resolved to (shared, read-only), when noted. */
  schemas: Record<string, string[]> | undefined;
}

/** What a session noted about an action it made (`SessionNames.noted`). */
interface Noted {
  /** What forwarding it changes. */
  ops?: Op[];
  /** What its resolved names depended on (search list, temporary tables, DDL), for the check at Bind; with the classifier's action it was resolved from. */
  key?: string;
  original?: SqlAction;
  /** Why the gateway refuses it whatever the policy says (it cannot tell what it reads). */
  refusal?: string;
  /** For each unqualified relation name, the schema(s) it was resolved to (for the masker). */
  schemas?: Record<string, string[]>;
  /** The functions reading its relations runs. */
  runs?: { schema: string; name: string }[];
  /** Made a call because a built-in's name it calls may mean another function. */
  shadowed?: true;
}

interface Entry {
  action: SqlAction;
  ops: Op[];
  done?: { ok: boolean; tag: string };
}

interface Segment {
  entries: Entry[];
  error: boolean;
  /** Its Query or Sync was sent: nothing more joins it. */
  closed?: boolean;
}

/** Kinds that write rows: writing a view or a row-secured table runs its query's or policies' functions. */
const DML_KINDS: ReadonlySet<string> = new Set(['insert', 'update', 'delete', 'merge', 'copy_from']);

/** Kinds whose statements may change the catalog (and so make the committed catalog stale). */
const SCHEMA_CHANGING: ReadonlySet<string> = new Set(['ddl', 'do', 'call', 'unknown', 'grant']);

/** A copy to change. Its maps are shared: they are never changed in place (a change makes a new map). */
function cloneState(s: State): State {
  return { cur: s.cur, sess: s.sess, why: s.why, temps: s.temps, tempsUnknown: s.tempsUnknown, schemaChanged: s.schemaChanged, ddl: s.ddl, newViews: s.newViews };
}

const NO_TEMPS: ReadonlyMap<string, boolean> = new Map();
const NO_VIEWS: ReadonlyMap<string, NewView> = new Map();

function cloneMachine(m: Machine): Machine {
  return { s: cloneState(m.s), frames: m.frames.map((f) => ({ ...f, saved: cloneState(f.saved) })), aborted: m.aborted };
}

/** How many resolutions of one text a session keeps (one per state it was decided on). */
const RESOLVED_PER_TEXT = 4;

/**
 * Everything of a machine that resolving a message on it may read or change (the state, the
 * transaction's frames with their saved states, whether it is aborted), as a string: two machines
 * with the same signature resolve the same statements alike.
 */
function machineSig(m: Machine): string {
  let out = `${m.aborted ? 'A' : 'a'}${stateSig(m.s)}`;
  for (const f of m.frames) out += `\u0003${f.implicit ? 'i' : 'e'}${f.name === null ? '\u0004' : JSON.stringify(f.name)}${stateSig(f.saved)}`;
  return out;
}

function stateSig(s: State): string {
  let out = `\u0001${pathSig(s.cur)}\u0001${pathSig(s.sess)}\u0001${s.why}\u0001${s.tempsUnknown ? 'U' : 'u'}${s.schemaChanged ? 'S' : 's'}${s.ddl}`;
  for (const [name, drop] of s.temps) out += `\u0002${drop ? 'd' : 'k'}${JSON.stringify(name)}`;
  if (s.newViews.size > 0) out += `\u0001${JSON.stringify([...s.newViews])}`;
  return out;
}

function pathSig(path: readonly string[] | null): string {
  if (path === null) return '\u0004';
  let known = PATH_SIGS.get(path);
  if (known === undefined) PATH_SIGS.set(path, (known = JSON.stringify(path)));
  return known;
}

/** Path lists are never changed in place (a SET makes a new one): each is serialised once. */
const PATH_SIGS = new WeakMap<readonly string[], string>();

/** A name resolver that works each name out once per resolution (a table and its columns ask alike). */
function once(resolve: NameResolver): NameResolver {
  const seen = new Map<string, string | readonly string[]>();
  return (name, creating) => {
    const key = creating ? `c${name}` : `r${name}`;
    let found = seen.get(key);
    if (found === undefined) seen.set(key, (found = resolve(name, creating)));
    return found;
  };
}

/** Code the gateway cannot see may run: a DO block, a procedure, a function it does not know. */
function opaqueReason(a: SqlAction): string | undefined {
  if (a.effects.includes('do') || a.effects.includes('unknown')) return `"${a.text.slice(0, 60)}" runs code the gateway cannot see`;
  for (const f of a.functions) {
    const name = f.startsWith('pg_catalog.') ? f.slice('pg_catalog.'.length) : f;
    if (name === 'set_config') continue; // followed (or refused) as a statement effect
    if (!SAFE_FUNCTIONS.has(name) && !EFFECTFUL_FUNCTIONS.has(name)) return `function ${f} may change search_path`;
  }
  return undefined;
}

export interface SessionNamesOptions {
  /** current_setting('search_path') when the session started (also what RESET returns to). */
  startupPath: string;
  /** The session's role (what `$user` stands for). */
  user: string;
  /** Without a catalog, a statement with unqualified names is refused unless the path has one schema. */
  catalog?: NameCatalog;
}

export class SessionNames {
  private readonly resetValue: string[] | null;
  private readonly user: string;
  private readonly catalog: NameCatalog | undefined;
  private confirmed: Machine;
  private readonly segments: Segment[] = [];

  constructor(opts: SessionNamesOptions) {
    this.resetValue = parseSearchPath(opts.startupPath);
    this.user = opts.user;
    this.catalog = opts.catalog;
    const cur = this.resetValue;
    this.confirmed = {
      s: { cur, sess: cur, why: `the session's search_path ${JSON.stringify(opts.startupPath)} cannot be read`, temps: NO_TEMPS, tempsUnknown: false, schemaChanged: false, ddl: 0, newViews: NO_VIEWS },
      frames: [],
      aborted: false,
    };
  }

  /** The effective search_path the next statement will see, as a list (null when unknown). */
  get searchPath(): string[] | null {
    return this.predictedNow().s.cur;
  }

  // -------------------------------------------------------------------------------------------
  // Deciding

  /**
   * Reads from the catalog what resolving these statements needs (before `resolve`). What it read
   * is kept per question (the names asked about, whether built-in function or operator names occur,
   * the relations read or written): a later message asking the same reuses the answers without a
   * catalog call for as long as every answer they rest on is still the catalog's current one
   * (`NameCatalog.fresh`: within its TTL, not invalidated, not an empty answer the catalog drops).
   */
  async prepare(statements: readonly AnalyzedStatement[]): Promise<void> {
    if (!this.catalog) {
      this.answers = NO_CATALOG;
      return;
    }
    const q = question(statements);
    const known = this.answerMemo.get(q.key);
    if (known && known.deps !== null && this.catalog.fresh?.(known.deps) === true) {
      this.answers = known;
      return;
    }
    const answers = await readAnswers(this.catalog, statements, q);
    if (answers.deps !== null) {
      this.answerMemo.delete(q.key);
      this.answerMemo.set(q.key, answers);
      if (this.answerMemo.size > ANSWER_MEMO_SIZE) this.answerMemo.delete(this.answerMemo.keys().next().value!);
    }
    this.answers = answers;
  }

  /** The catalog's answers for the message being decided. */
  private answers: Answers = NO_CATALOG;
  /** Answers by question (`question`), least recently stored first. */
  private readonly answerMemo = new Map<string, Answers>();
  private get lookups(): Map<string, string[]> {
    return this.answers.lookups;
  }
  private get usable(): Set<string> | null {
    return this.answers.usable;
  }
  private get lookupError(): string | undefined {
    return this.answers.lookupError;
  }
  private get sources(): Map<string, string[]> {
    return this.answers.sources;
  }
  private get functions(): Map<string, { schema: string; name: string }[]> {
    return this.answers.functions;
  }
  private get statsTables(): string[] {
    return this.answers.statsTables;
  }
  /** Function names defined outside pg_catalog (undefined: the catalog could not be read). */
  private get outside(): Map<string, string[]> | undefined {
    return this.answers.outside;
  }
  /** Operator names defined outside pg_catalog (undefined: the catalog could not be read). */
  private get outsideOps(): Map<string, string[]> | undefined {
    return this.answers.outsideOps;
  }

  /** What the session worked out about each action it made (one record per action: a WeakMap insertion costs more than the rest of a small record). */
  private readonly noted = new WeakMap<SqlAction, Noted>();

  private info(action: SqlAction): Noted {
    let n = this.noted.get(action);
    if (n === undefined) this.noted.set(action, (n = {}));
    return n;
  }

  /** A call of a built-in's name that a function outside pg_catalog on the path may answer is a call of unknown effect. */
  private withShadows(action: SqlAction, s: State, ast: unknown): SqlAction {
    if (!this.catalog || this.noted.get(action)?.refusal !== undefined) return action;
    const cur = s.cur === null ? null : this.expand(s.cur);
    const path = typeof cur === 'string' ? null : cur;
    // After DDL in the open transaction the committed catalog may not show a function it created.
    const why =
      shadowedBuiltin(action, path, s.schemaChanged ? undefined : this.outside) ??
      shadowedOperator(operatorNames(ast), path, s.schemaChanged ? undefined : this.outsideOps);
    if (!why) return action;
    const out = asCall(action, why);
    const map = this.noted.get(action)?.schemas;
    if (map) this.info(out).schemas = map;
    this.info(out).shadowed = true;
    markShadowed(out, action);
    return out;
  }

  /**
   * Reading a view reads its base relations, reading a partition or an inheritance child reads
   * its ancestors' data, and pg_stats/pg_stats_ext show values of every column the role may read:
   * `on tables [...]` rules see those tables too (issue 14 item 6).
   */
  private withSources(action: SqlAction, s: State): SqlAction {
    if (!this.catalog) return action;
    if (this.lookupError) {
      // What reading a relation runs (a view's functions, row security policies) is unknown.
      if (![...action.reads, ...action.writes].some((q) => !/^(pg_catalog|information_schema)\./.test(q))) return action;
      return this.refuse(action, `the gateway cannot tell what reading these tables runs: ${this.lookupError}`);
    }
    // A view created in the open transaction is not in the catalog yet: what its CREATE read counts.
    const more = (list: readonly string[]): string[] => {
      const out = new Set<string>();
      for (const r of list) {
        for (const x of this.sources.get(r) ?? []) if (!list.includes(x)) out.add(x);
        for (const x of s.newViews.get(r)?.reads ?? []) if (!list.includes(x)) out.add(x);
      }
      return [...out];
    };
    const reads = more(action.reads);
    const writes = more(action.writes);
    if (showsManyTables(action, reads)) reads.push(...this.statsTables.filter((t) => !action.reads.includes(t)));
    // Reading a view runs the functions its query calls, reading a table with row security its
    // policies' functions: they count as if the statement called them.
    // A written relation only by DML (ALTER TABLE of a row-secured table runs no policy).
    const dml = action.effects.some((k) => DML_KINDS.has(k));
    const runs = [...action.reads, ...(dml ? action.writes : [])].flatMap((q) => [...(this.functions.get(q) ?? []), ...(s.newViews.get(q)?.runs ?? [])]);
    if (reads.length === 0 && writes.length === 0 && runs.length === 0) return action;
    const out = withFunctions(withTables(action, reads, writes), runs);
    this.info(out).runs = runs;
    const why = this.noted.get(action)?.refusal;
    if (why) this.info(out).refusal = why;
    const map = this.noted.get(action)?.schemas;
    if (map) this.info(out).schemas = map;
    return out;
  }

  /**
   * The statements' actions with their unqualified names resolved, in order, each on the state
   * the statements before it leave (within a message a later statement runs only if the earlier
   * ones succeeded). Also remembers, per action, what forwarding it will change.
   */
  resolve(statements: readonly AnalyzedStatement[]): SqlAction[] {
    // With an earlier message still running, its outcome may differ from the prediction: decide on
    // both (the message being built, not yet ended by a Sync, is sequential with this one).
    const last = this.segments[this.segments.length - 1];
    const open = last && !last.closed ? last : undefined;
    const pending = this.segments.some((seg) => seg !== open && seg.entries.some((e) => e.ops.length > 0));
    let alt: Machine | undefined;
    if (pending) {
      alt = cloneMachine(this.confirmed);
      for (const e of open?.entries ?? []) applyAll(alt, e.ops, { ok: true, tag: '' }, this.resetValue);
    }
    // The same statements (the classifier's cached analysis of one text) on the same states with
    // the same catalog answers resolve to the same actions: those made last time are reused, with
    // what was remembered about them (ops, refusals, schema maps, keys), all keyed by the action.
    const predicted = this.predictedNow();
    const sig = alt ? `${machineSig(predicted)}\u0005${machineSig(alt)}` : machineSig(predicted);
    const memo = this.resolved.get(statements);
    const hit = memo?.find((r) => r.answers === this.answers && r.sig === sig);
    if (hit) {
      // An action may be the classifier's own (nothing to resolve), shared with other states: what
      // forwarding it changes is this state's.
      for (let i = 0; i < hit.actions.length; i++) {
        const a = hit.actions[i]!;
        this.info(a).ops = hit.ops[i]!;
        const key = hit.keys[i];
        if (key !== undefined) {
          this.info(a).key = key;
          this.info(a).original = statements[i]!.action;
        }
      }
      return hit.actions.slice();
    }
    const m = cloneMachine(predicted);
    const out: SqlAction[] = [];
    const opsOut: Op[][] = [];
    const keysOut: (string | undefined)[] = [];
    for (const st of statements) {
      let action = this.withShadows(this.withSources(this.resolveOn(m, st.action), m.s), m.s, st.ast);
      if (alt) {
        const other = this.withShadows(this.withSources(this.resolveOn(alt, st.action), alt.s), alt.s, st.ast);
        // An earlier statement still running changes search_path or temporary tables: whichever
        // way it ends, the statement is decided on the tables it may read.
        if (this.noted.get(action)?.refusal === undefined && this.noted.get(other)?.refusal === undefined) {
          const merged: Record<string, string[]> = { ...(this.noted.get(action)?.schemas ?? {}) };
          for (const [k, v] of Object.entries(this.noted.get(other)?.schemas ?? {})) merged[k] = [...new Set([...(merged[k] ?? []), ...v])];
          const shadowed = this.noted.get(action)?.shadowed === true || this.noted.get(other)?.shadowed === true;
          const original = shadowedOriginal(action) ?? action;
          action = withTables(this.noted.get(other)?.shadowed === true && this.noted.get(action)?.shadowed !== true ? asCall(action, other.reason ?? '') : action, other.reads, other.writes);
          action = withFunctions(action, this.noted.get(other)?.runs ?? []);
          if (shadowed) {
            this.info(action).shadowed = true;
            markShadowed(action, withFunctions(withTables(original, other.reads, other.writes), this.noted.get(other)?.runs ?? []));
          }
          this.info(action).schemas = merged;
        }
        else if (this.noted.get(other)?.refusal !== undefined && this.noted.get(action)?.refusal === undefined) action = this.refuse(action, this.noted.get(other)!.refusal!);
      }
      const ops = this.opsOf(m, st, action);
      this.info(action).ops = ops;
      opsOut.push(ops);
      const key = this.resolutionKey(m, st.action);
      keysOut.push(key);
      if (key !== undefined) {
        this.info(action).key = key;
        this.info(action).original = st.action;
      }
      applyAll(m, ops, { ok: true, tag: '' }, this.resetValue);
      if (alt) applyAll(alt, this.opsOf(alt, st, action), { ok: true, tag: '' }, this.resetValue);
      out.push(action);
    }
    const entry = { answers: this.answers, sig, actions: out.slice(), ops: opsOut, keys: keysOut };
    if (!memo) this.resolved.set(statements, [entry]);
    else {
      memo.unshift(entry);
      if (memo.length > RESOLVED_PER_TEXT) memo.pop();
    }
    return out;
  }

  /** Resolutions per analysed text: the catalog answers and states (`machineSig`) they were made on. */
  private readonly resolved = new WeakMap<readonly AnalyzedStatement[], { answers: Answers; sig: string; actions: SqlAction[]; ops: Op[][]; keys: (string | undefined)[] }[]>();


  private resolutionKey(m: Machine, original: SqlAction): string | undefined {
    const u = unqualifiedNames(original);
    if (!u) return undefined;
    const s = m.s;
    const path = s.cur === null ? null : this.expand(s.cur);
    const mine = s.temps.size === 0 ? [] : [...u.lookups, ...u.creates].filter((n) => s.temps.has(n)).sort();
    const temps = mine.length === 0 ? '' : JSON.stringify(mine);
    return `${typeof path === 'string' ? JSON.stringify(path) : pathSig(path)}\u0001${temps}\u0001${s.tempsUnknown ? 'U' : 'u'}${s.ddl}`;
  }

  /**
   * Why a statement prepared (Parse) earlier may not run now, or undefined: PostgreSQL parses a
   * prepared statement again when search_path changed since, or after DDL, so its unqualified names
   * may now mean other tables than the ones it was decided on.
   */
  bindCheck(action: SqlAction): string | undefined {
    const then = this.noted.get(action)?.key;
    if (then === undefined) return undefined;
    const original = this.noted.get(action)?.original ?? action;
    const now = this.resolutionKey(this.predictedNow(), original);
    if (now === then) return undefined;
    return 'search_path, temporary tables or the schema changed since this statement was prepared, so its table names may mean other tables now: prepare it again';
  }



  /** Why this statement is refused before any policy is asked, or undefined. */
  refusal(action: SqlAction): string | undefined {
    return this.noted.get(action)?.refusal;
  }

  private refuse(action: SqlAction, why: string): SqlAction {
    const own = withTables(action, [], []); // a copy: the classifier's cached action is shared
    this.info(own).refusal = why;
    return own;
  }

  /** For each unqualified relation name of a resolved action, the schema(s) it was resolved to (for the masker). */
  schemasOf(action: SqlAction): Record<string, string[]> | undefined {
    return this.noted.get(action)?.schemas;
  }

  /** The map being filled by the resolveOn in progress. */
  private filling: Record<string, string[]> = {};

  private note(name: string, schemas: string | readonly string[]): string | readonly string[] {
    const list = typeof schemas === 'string' ? [schemas] : schemas;
    const had = Object.hasOwn(this.filling, name) ? this.filling[name]! : [];
    this.filling[name] = [...new Set([...had, ...list])];
    return schemas;
  }

  /**
   * The action with its unqualified names resolved on `m`. What resolving one action of a shape
   * (stdlib `resolutionShape`: statements differing only in literal values share one) gives is
   * kept for the next of that shape under the same answers and state: the search_path list, the
   * temporary tables and the two flags are all the state it reads (lists and maps are never changed
   * in place, so the same object means the same value).
   */
  private resolveOn(m: Machine, action: SqlAction): SqlAction {
    const shape = resolutionShape(action);
    if (shape === undefined) return action;
    const s = m.s;
    const memo = this.shapes.get(shape);
    if (memo) {
      for (const e of memo) {
        if (e.answers === this.answers && e.cur === s.cur && e.temps === s.temps && e.tempsUnknown === s.tempsUnknown && e.schemaChanged === s.schemaChanged) return this.madeFrom(action, e);
      }
    }
    this.filling = Object.create(null) as Record<string, string[]>;
    const r = this.resolveFacts(m, action);
    if (r === undefined) return action;
    if (typeof r === 'string') return this.refuse(action, r);
    const e: ShapeResolution = { answers: this.answers, cur: s.cur, temps: s.temps, tempsUnknown: s.tempsUnknown, schemaChanged: s.schemaChanged, facts: r, schemas: Object.keys(this.filling).length > 0 ? this.filling : undefined };
    if (!memo) this.shapes.set(shape, [e]);
    else {
      memo.unshift(e);
      if (memo.length > RESOLVED_PER_TEXT) memo.pop();
    }
    return this.madeFrom(action, e);
  }

  /** Resolutions per shape (`resolveOn`). */
  private readonly shapes = new WeakMap<object, ShapeResolution[]>();

  private madeFrom(action: SqlAction, e: ShapeResolution): SqlAction {
    const out = withResolved(action, e.facts);
    if (e.schemas) this.info(out).schemas = e.schemas;
    return out;
  }

  /** The resolved facts, or why the names cannot be resolved (undefined: there are none). */
  private resolveFacts(m: Machine, action: SqlAction): ResolvedFacts | string | undefined {
    const u = unqualifiedNames(action);
    if (!u) return undefined;
    const s = m.s;
    if (this.lookupError && this.catalog) return `unqualified table names cannot be resolved: ${this.lookupError}`;
    const path = s.cur === null ? `${s.why}` : this.expand(s.cur);
    if (typeof path === 'string') {
      // The path cannot be followed: the statement is decided on every relation the name may be.
      // A name no schema holds yet (created in this transaction, or being created) may be in any
      // schema the role may use.
      const unsure = `the gateway cannot tell which tables unqualified names mean (${path}); SET search_path again or qualify the table names`;
      const anywhere = [...(this.usable ?? [])];
      if (!this.catalog || anywhere.length === 0) return unsure;
      return resolvedFacts(action, once((name, creating) => {
        if (creating) return anywhere;
        const all = [...(s.temps.has(name) || s.tempsUnknown ? ['pg_temp'] : []), ...(this.lookups.get(name) ?? [])];
        return this.note(name, all.length > 0 ? all : anywhere);
      }));
    }
    if (!this.catalog) {
      // No catalog: only a path with a single schema (besides pg_catalog and pg_temp) is certain.
      const explicit = path.filter((x) => x !== 'pg_catalog' && x !== 'pg_temp');
      if (explicit.length > 1 || s.temps.size > 0 || s.tempsUnknown) return 'unqualified table names cannot be resolved without the catalog';
    }
    // A relation created with no schema to create it in fails upstream; `public` names it meanwhile.
    return resolvedFacts(action, once((name, creating) => (creating ? (this.creationSchema(s) ?? 'public') : this.note(name, this.lookup(s, path, name)))));
  }

  /** The search list: `$user` as the role, implicit pg_temp and pg_catalog first; or why it cannot be followed. Shared: read-only. */
  private expand(cur: string[]): string[] | string {
    let known = this.expanded.get(cur);
    if (known === undefined) this.expanded.set(cur, (known = this.expandUncached(cur)));
    return known;
  }

  /** Paths (never changed in place: a SET makes a new list) to their search lists. */
  private readonly expanded = new WeakMap<readonly string[], string[] | string>();

  private expandUncached(cur: string[]): string[] | string {
    const list: string[] = [];
    for (const x of cur) {
      if (/^pg_(toast_)?temp_\d+$/.test(x)) return `search_path names a temporary schema by number (${x}), which the gateway cannot follow; use pg_temp`;
      list.push(x === '$user' ? this.user : x);
    }
    const out = [...list];
    if (!out.includes('pg_catalog')) out.unshift('pg_catalog');
    if (!out.includes('pg_temp')) out.unshift('pg_temp');
    return out;
  }

  private hasRelation(schema: string, name: string): boolean {
    if (!this.catalog) return schema !== 'pg_catalog' || pgCatalogHas(name);
    return (this.lookups.get(name) ?? []).includes(schema);
  }

  /** Where the server finds `name`: the first schema of the path that has it (all candidates when unsure). */
  private lookup(s: State, path: string[], name: string): string[] {
    const found: string[] = [];
    for (const schema of path) {
      if (schema === 'pg_temp') {
        if (s.temps.has(name)) {
          found.push('pg_temp');
          // A temporary relation code the gateway could not see may have dropped: the next one counts too.
          if (!s.tempsUnknown) return found;
        } else if (s.tempsUnknown) found.push('pg_temp');
        continue;
      }
      if (this.hasRelation(schema, name)) {
        found.push(schema);
        // The committed catalog may be stale after DDL in the open transaction: every later candidate counts.
        if (!s.schemaChanged) return found;
      }
    }
    if (found.length > 0) return found;
    // Not in the committed catalog: created in this transaction (or missing): where CREATE would put it.
    return [this.creationSchema(s) ?? 'public'];
  }

  /** The first explicit schema of the path that exists and may be used (pg_temp when it comes first). */
  private creationSchema(s: State): string | null {
    const explicit = (s.cur ?? []).map((x) => (x === '$user' ? this.user : x));
    for (const x of explicit) {
      if (x === 'pg_temp') return 'pg_temp';
      if (!this.catalog) return x;
      if (this.usable?.has(x)) return x;
    }
    return null;
  }

  /** The concrete changes forwarding this statement makes (temp names resolved on `m`). */
  private opsOf(m: Machine, st: AnalyzedStatement, action: SqlAction): Op[] {
    const ops: Op[] = [];
    const why = opaqueReason(st.action) ?? (this.noted.get(action)?.shadowed === true ? `"${action.text.slice(0, 60)}" may call a function the gateway cannot see` : undefined);
    if (why) ops.push({ k: 'opaque', reason: why });
    if (SCHEMA_CHANGING.has(action.kind)) ops.push({ k: 'schema_changed' });
    // A statement classified in the classifier pool carries its effects instead of its AST.
    for (const e of (st as { effects?: SessionEffect[] }).effects ?? sessionEffects(st.ast)) {
      if (e.k === 'create') {
        let temp = e.schema === 'pg_temp';
        if (e.schema === undefined) {
          temp = m.s.cur !== null && this.creationSchema(m.s) === 'pg_temp';
          // A view over a temporary relation is temporary itself.
          if (e.view && action.reads.some((r) => r.startsWith('pg_temp.'))) temp = true;
        }
        if (temp) ops.push({ k: 'temp_add', name: e.name, onCommitDrop: e.onCommitDrop });
        if (e.view) {
          const q = `${temp ? 'pg_temp' : (e.schema ?? this.creationSchema(m.s) ?? 'public')}.${e.name}`;
          // Its query's tables (the CREATE VIEW's reads, already with their own sources).
          // The functions its query calls (the CREATE's, with those of the relations it reads).
          const runs = action.functions.map((f) => (f.includes('.') ? { schema: f.slice(0, f.indexOf('.')), name: f.slice(f.indexOf('.') + 1) } : { schema: 'pg_catalog', name: f }));
          ops.push({ k: 'new_view', q, reads: action.reads.filter((r) => r !== q), runs });
        }
      } else if (e.k === 'drop' || e.k === 'rename') {
        const isTemp = e.schema === 'pg_temp' || (e.schema === undefined && this.resolvesToTemp(m.s, e.name));
        if (isTemp) {
          ops.push({ k: 'temp_drop', name: e.name });
          if (e.k === 'rename') ops.push({ k: 'temp_add', name: e.to, onCommitDrop: m.s.temps.get(e.name) ?? false });
        }
      } else ops.push(e);
    }
    return ops;
  }

  private resolvesToTemp(s: State, name: string): boolean {
    if (!s.temps.has(name) || s.cur === null) return false;
    const path = this.expand(s.cur);
    return Array.isArray(path) && this.lookup(s, path, name)[0] === 'pg_temp';
  }

  // -------------------------------------------------------------------------------------------
  // Following the server

  /** These statements are being sent (in order) as one message: a Query, or an Execute before its Sync. */
  forward(actions: readonly (SqlAction | undefined)[]): void {
    this.changed();
    const seg = this.openSegment();
    for (const a of actions) {
      if (!a) continue;
      seg.entries.push({ action: a, ops: this.noted.get(a)?.ops ?? [] });
    }
  }

  /** A message that ends a segment (Query, Sync, FunctionCall) was sent: its ReadyForQuery settles it. */
  boundary(): void {
    this.changed();
    this.openSegment().closed = true;
  }

  /** A FunctionCall runs a function by OID: a built-in changes nothing here, any other function is code the gateway does not follow. */
  forwardFunction(schema: string, name: string): void {
    this.changed();
    const seg = this.openSegment();
    const effect = EFFECTFUL_FUNCTIONS.get(name);
    const builtin = schema === 'pg_catalog' && name !== 'set_config' && (SAFE_FUNCTIONS.has(name) || (effect !== undefined && effect !== 'unknown' && effect !== 'do'));
    seg.entries.push({ action: OPAQUE_ACTION, ops: builtin ? [] : [{ k: 'opaque', reason: `function ${schema}.${name} was called by OID (FunctionCall)` }] });
  }

  /** The server finished the statement with this action (CommandComplete's tag). */
  completed(action: SqlAction | undefined, tag: string): void {
    this.changed();
    const seg = this.segments[0];
    if (!seg || !action) return;
    const e = seg.entries.find((x) => x.action === action && !x.done);
    if (e) e.done = { ok: true, tag };
  }

  /** The server reported an error (the statement, or the rest of its segment, did not run). */
  error(): void {
    this.changed();
    const seg = this.segments[0];
    if (seg) seg.error = true;
  }

  /** ReadyForQuery: the oldest segment is settled; `status` is the server's transaction status. */
  ready(status: string): void {
    this.changed();
    const seg = this.segments.shift() ?? { entries: [], error: false };
    const m = this.confirmed;
    const wasChanged = m.s.schemaChanged || seg.entries.some((e) => e.ops.some((o) => o.k === 'schema_changed'));
    if (m.frames.length === 0 && seg.entries.length > 0) m.frames.push({ name: null, implicit: true, saved: cloneState(m.s) });
    for (const e of seg.entries) {
      if (!e.done) {
        // The failing statement, or one skipped after it: whatever it changed is undone with its
        // (sub)transaction; an explicit transaction is now aborted.
        if (m.frames.some((f) => !f.implicit)) m.aborted = true;
        break;
      }
      applyAll(m, e.ops, e.done, this.resetValue);
      if (m.frames.length === 0) m.frames.push({ name: null, implicit: true, saved: cloneState(m.s) });
    }
    const implicit = m.frames[0]?.implicit === true;
    if (implicit) {
      // The message's (or pipeline's) implicit transaction ended here.
      if (seg.error) rollback(m);
      else commit(m);
    }
    if (status === 'I' && m.frames.length > 0) rollback(m); // ended without a COMMIT we saw (e.g. COMMIT failed)
    if ((status === 'T' || status === 'E') && m.frames.length === 0) {
      markUnknown(m.s, 'the transaction state diverged from what the gateway followed');
      m.frames.push({ name: null, implicit: false, saved: cloneState(m.s) });
    }
    m.aborted = status === 'E';
    if (status === 'I' && wasChanged) {
      m.s.schemaChanged = false;
      this.catalog?.invalidate();
    }
  }

  private openSegment(): Segment {
    let last = this.segments[this.segments.length - 1];
    if (!last || last.closed) {
      last = { entries: [], error: false };
      this.segments.push(last);
    }
    return last;
  }

  /** The confirmed state or the segments changed: the predicted state is worked out again when next asked. */
  private changed(): void {
    this.snapshot = undefined;
  }

  /** `predicted()` as of now, shared until the next change: read it, never change it (clone first). */
  private predictedNow(): Machine {
    return (this.snapshot ??= this.predicted());
  }

  private snapshot: Machine | undefined;

  /** confirmed + everything forwarded and not yet answered, assumed to succeed. */
  private predicted(): Machine {
    const m = cloneMachine(this.confirmed);
    for (const seg of this.segments) {
      for (const e of seg.entries) applyAll(m, e.ops, { ok: true, tag: e.done?.tag ?? '' }, this.resetValue);
    }
    return m;
  }
}

/** What `prepare` read from the catalog for one question (see `question`). */
interface Answers {
  /** For each name asked about: the schemas holding a relation of that name. */
  lookups: Map<string, string[]>;
  usable: Set<string> | null;
  lookupError: string | undefined;
  sources: Map<string, string[]>;
  functions: Map<string, { schema: string; name: string }[]>;
  statsTables: string[];
  outside: Map<string, string[]> | undefined;
  outsideOps: Map<string, string[]> | undefined;
  /** The catalog's tokens for the answers read (`NameCatalog.fresh`); null: not to be reused. */
  deps: unknown[] | null;
}

const NO_CATALOG: Answers = Object.freeze({
  lookups: new Map(), usable: null, lookupError: undefined, sources: new Map(), functions: new Map(), statsTables: [],
  outside: new Map(), outsideOps: new Map(), deps: null,
});

const ANSWER_MEMO_SIZE = 64;

/**
 * What `prepare` asks the catalog about a message, from its statements alone: the unqualified
 * names (looked up or created), whether a built-in function's or an operator's name occurs, and
 * the relations read or written. Two messages with the same key get the same answers from the same
 * catalog state (statements differing only in literal values share one).
 */
function question(statements: readonly AnalyzedStatement[]): Question {
  let q = QUESTIONS.get(statements);
  if (!q) QUESTIONS.set(statements, (q = questionOf(statements)));
  return q;
}

interface Question {
  key: string;
  names: string[];
  fns: boolean;
  ops: boolean;
}

/** Per analysed text (the classifier's cached statements): its question. */
const QUESTIONS = new WeakMap<readonly AnalyzedStatement[], Question>();

function questionOf(statements: readonly AnalyzedStatement[]): Question {
  const names: string[] = [];
  const relations: string[] = [];
  let fns = false;
  let ops = false;
  for (const st of statements) {
    const u = unqualifiedNames(st.action);
    if (u) {
      for (const n of u.lookups) if (!names.includes(n)) names.push(n);
      for (const n of u.creates) if (!names.includes(n)) names.push(n);
    }
    for (const r of st.action.reads) relations.push(r);
    relations.push('');
    for (const r of st.action.writes) relations.push(r);
    fns ||= trustedBuiltinNames(st.action).length > 0;
    ops ||= operatorNames(st.ast)?.size !== 0;
  }
  // NUL never occurs in a classified text (the classifier refuses such a text unparsed).
  return { key: `${names.join('\u0000')}\u0001${fns ? 'f' : ''}${ops ? 'o' : ''}\u0001${relations.join('\u0000')}`, names, fns, ops };
}

/** The catalog's answers to a question; a failure to read is recorded (`lookupError`), never thrown. */
async function readAnswers(catalog: NameCatalog, statements: readonly AnalyzedStatement[], q: Question): Promise<Answers> {
  const deps: unknown[] | null = catalog.fresh ? [] : null;
  const track = deps ?? undefined;
  let failed = false;
  const out: Answers = { lookups: new Map(), usable: null, lookupError: undefined, sources: new Map(), functions: new Map(), statsTables: [], outside: new Map(), outsideOps: new Map(), deps };
  if (q.fns) {
    out.outside = await catalog.functionsOutsideCatalog(track).catch(() => {
      failed = true;
      return undefined;
    });
  }
  if (q.ops) {
    out.outsideOps = await catalog.operatorsOutsideCatalog(track).catch(() => {
      failed = true;
      return undefined;
    });
  }
  try {
    if (q.names.length > 0) {
      const [rels, usable] = await Promise.all([catalog.relationSchemas(q.names, track), catalog.usableSchemas(track)]);
      out.lookups = rels;
      out.usable = new Set(usable);
    }
    // Every relation a statement may read, under any resolution: what reading it reads too.
    const qualified = new Set<string>();
    for (const st of statements) {
      for (const r of st.action.reads) qualified.add(r);
      for (const r of st.action.writes) qualified.add(r);
      for (const n of unqualifiedNames(st.action)?.lookups ?? []) {
        for (const schema of out.lookups.get(n) ?? []) qualified.add(`${schema}.${n}`);
        qualified.add(`pg_temp.${n}`);
      }
    }
    if (qualified.size > 0) [out.sources, out.functions] = await Promise.all([catalog.relationSources([...qualified], track), catalog.relationFunctions([...qualified], track)]);
    let stats = statements.some((st) => showsManyTables(st.action));
    for (const r of qualified) stats ||= STATISTICS.has(r);
    for (const list of out.sources.values()) for (const r of list) stats ||= STATISTICS.has(r);
    if (stats) out.statsTables = await catalog.statisticsTables(track);
  } catch (e) {
    out.lookupError = `the catalog could not be read (${(e as Error).message})`;
    failed = true;
  }
  // What failed is asked again by the next message.
  if (failed) out.deps = null;
  return out;
}

const OPAQUE_ACTION = Object.freeze({ type: 'sql', kind: 'call', effects: ['call'], reads: [], writes: [], columns: [], functions: [], has_where: true, limit: null, text: '', normalized: '', fingerprint: '' }) as unknown as SqlAction;

function markUnknown(s: State, why: string): void {
  s.cur = null;
  s.sess = null;
  s.why = why;
}

function commit(m: Machine): void {
  const s = m.s;
  s.cur = s.sess;
  if (s.newViews.size > 0) s.newViews = NO_VIEWS;
  if (s.cur === null && m.frames.length > 0) s.why = s.why || 'unknown';
  if ([...s.temps.values()].some((drop) => drop)) s.temps = new Map([...s.temps].filter(([, drop]) => !drop));
  m.frames = [];
  m.aborted = false;
}

function rollback(m: Machine): void {
  const bottom = m.frames[0];
  if (bottom) {
    const changed = m.s.schemaChanged;
    m.s = cloneState(bottom.saved);
    m.s.schemaChanged = changed;
  }
  m.frames = [];
  m.aborted = false;
}

function applyAll(m: Machine, ops: readonly Op[], done: { ok: boolean; tag: string }, reset: string[] | null): void {
  for (const o of ops) applyOp(m, o, done, reset);
}

function applyOp(m: Machine, o: Op, done: { ok: boolean; tag: string }, reset: string[] | null): void {
  const s = m.s;
  switch (o.k) {
    case 'opaque':
      markUnknown(s, o.reason);
      s.tempsUnknown = true;
      return;
    case 'schema_changed':
      s.schemaChanged = true;
      s.ddl++;
      return;
    case 'untracked':
      markUnknown(s, o.reason);
      return;
    case 'set': {
      const value = o.value === 'default' ? reset : o.value;
      s.cur = value;
      if (value === null) s.why = 'the search_path the session started with cannot be read';
      if (!o.local) s.sess = value;
      return;
    }
    case 'begin':
      if (m.frames[0]?.implicit) m.frames[0].implicit = false;
      else if (m.frames.length === 0) m.frames.push({ name: null, implicit: false, saved: cloneState(s) });
      return;
    case 'commit': {
      // COMMIT of an aborted transaction is a ROLLBACK (its tag says so).
      if (done.tag.startsWith('ROLLBACK') || m.aborted) rollback(m);
      else commit(m);
      if (o.chain) m.frames.push({ name: null, implicit: false, saved: cloneState(m.s) });
      return;
    }
    case 'rollback':
      rollback(m);
      if (o.chain) m.frames.push({ name: null, implicit: false, saved: cloneState(m.s) });
      return;
    case 'savepoint':
      if (m.frames.length > 0) m.frames.push({ name: o.name, implicit: false, saved: cloneState(s) });
      return;
    case 'release': {
      const i = findSavepoint(m, o.name);
      if (i > 0) m.frames.length = i;
      return;
    }
    case 'rollback_to': {
      const i = findSavepoint(m, o.name);
      if (i > 0) {
        const changed = s.schemaChanged;
        m.s = cloneState(m.frames[i]!.saved);
        m.s.schemaChanged = changed;
        m.frames.length = i + 1;
        m.aborted = false;
      }
      return;
    }
    case 'discard_temp':
      s.temps = NO_TEMPS;
      s.tempsUnknown = false;
      return;
    case 'temp_add':
      s.temps = new Map(s.temps).set(o.name, o.onCommitDrop);
      return;
    case 'temp_drop':
      if (s.temps.has(o.name)) {
        const temps = new Map(s.temps);
        temps.delete(o.name);
        s.temps = temps;
      }
      return;
    case 'new_view':
      s.newViews = new Map(s.newViews).set(o.q, { reads: o.reads, runs: o.runs });
      return;
    case 'create':
    case 'drop':
    case 'rename':
      return;
  }
}

function findSavepoint(m: Machine, name: string): number {
  for (let i = m.frames.length - 1; i > 0; i--) if (m.frames[i]!.name === name) return i;
  return -1;
}

/** Without a catalog: the relations pg_catalog is known to hold. */
function pgCatalogHas(name: string): boolean {
  return CATALOG_NAMES.has(name);
}

import { CATALOG_RELATIONS as CATALOG_NAMES } from '../../../stdlib/sql/catalog.ts';
