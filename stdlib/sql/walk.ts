// The statement walker: turns one libpg-query statement node into SqlAction facts.
//
// The walk is generic over the JSON tree (so no sub-expression is ever skipped: a function hidden
// in a sub-sub-query's ORDER BY is still seen) with handlers for the node types that carry
// meaning. Statement nodes (`*Stmt`) are looked up in STATEMENTS; a statement type that is not
// there is `unknown`, never `select`.

import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import { SQL_KINDS, type SqlKind } from '../../language/ast.ts';
import type { SqlAction, SqlClassifyOptions } from '../facts.ts';
import { CATALOG_RELATIONS } from './catalog.ts';
import { searchPathRisk } from './search-path.ts';
import { splitStatements, type RawStatement } from './split.ts';
import { BUILTIN_TABLESAMPLE_METHODS, EFFECTFUL_FUNCTIONS, SAFE_FUNCTIONS, settingDependentBody, settingKind, unreadableTextSetting } from './functions.ts';

type Obj = Record<string, unknown>;

/** A from-list entry visible to column references: a table (qualified name) or a derived relation (null). */
interface ScopeItem {
  names: string[];
  table: string | null;
}

/**
 * A small insertion-ordered set. Statements name a handful of tables, columns and functions, so an
 * array scanned on insert is cheaper than a Set (and allocated only when something is added).
 */
export class SmallSet<T> {
  items: T[] | null = null;

  add(x: T): void {
    if (this.items === null) this.items = [x];
    else if (!this.items.includes(x)) this.items.push(x);
  }

  has(x: T): boolean {
    return this.items !== null && this.items.includes(x);
  }

  get size(): number {
    return this.items === null ? 0 : this.items.length;
  }

  [Symbol.iterator](): Iterator<T> {
    return (this.items ?? []).values();
  }
}

/** Facts gathered while walking one statement (possibly through nested bodies). */
export interface Facts {
  effects: SmallSet<SqlKind>;
  reads: SmallSet<string>;
  writes: SmallSet<string>;
  columns: SmallSet<string>;
  functions: SmallSet<string>;
  reasons: string[];
  /** AND over every UPDATE/DELETE found: false as soon as one lacks a WHERE. */
  hasWhere: boolean;
  limit: number | null;
  /** The statement refers to session state (EXECUTE, FETCH): its facts depend on options.prepared / options.cursors. */
  usesPrepared: boolean;
}

export function newFacts(): Facts {
  return {
    effects: new SmallSet(), reads: new SmallSet(), writes: new SmallSet(), columns: new SmallSet(), functions: new SmallSet(),
    reasons: [], hasWhere: true, limit: null, usesPrepared: false,
  };
}

const MAX_DEPTH = 12; // nested bodies (function body inside a function body...) before we give up

class Walker {
  readonly f: Facts;
  readonly options: SqlClassifyOptions | undefined;
  /** CTE names visible at this point, innermost last. */
  readonly ctes: Set<string>[] = [];
  readonly scopes: ScopeItem[][] = [];
  /** >0 while inside plain EXPLAIN: statements are planned, not run, so only function effects count. */
  planOnly = 0;
  /** >0 while naming a relation being created (its schema is the search_path's creation schema). */
  creating = 0;
  readonly depth: number;
  /** The text of the statement being walked (PL/pgSQL bodies are parsed from the whole CREATE). */
  readonly text: string;

  constructor(f: Facts, options: SqlClassifyOptions | undefined, depth: number, text: string) {
    this.f = f;
    this.options = options;
    this.depth = depth;
    this.text = text;
  }

  // ------------------------------------------------------------------------------------------
  // effects

  stmtEffect(kind: SqlKind): void {
    if (this.planOnly > 0 && kind !== 'unknown') return;
    this.f.effects.add(kind);
  }

  unknown(reason: string): void {
    this.f.effects.add('unknown');
    this.f.reasons.push(reason);
  }

  // ------------------------------------------------------------------------------------------
  // generic walk

  walk(node: unknown): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) this.walk(n);
      return;
    }
    const o = node as Obj;
    // A typed node is `{ TypeName: {...} }`: one key, capitalised. (for-in: no key array per node)
    let first: string | undefined;
    let count = 0;
    for (const k in o) {
      if (count++ === 0) first = k;
      else break;
    }
    if (count === 1) {
      const c = first!.charCodeAt(0);
      if (c >= 65 && c <= 90) {
        this.visit(first!, o[first!] as Obj);
        return;
      }
    }
    if (isRangeVar(o)) {
      this.rangeVar(o, 'read');
      return;
    }
    for (const k in o) {
      const v = o[k];
      if (v !== null && typeof v === 'object') this.walk(v);
    }
  }

  /** Walk every field of a node except the named ones (handled by the caller). */
  walkExcept(n: Obj, skip: readonly string[]): void {
    for (const k in n) {
      if (skip.includes(k)) continue;
      const v = n[k];
      if (v !== null && typeof v === 'object') this.walk(v);
    }
  }

  visit(type: string, n: Obj): void {
    switch (type) {
      case 'RangeVar': this.rangeVar(n, 'read'); return;
      case 'FuncCall': this.funcCall(n); return;
      case 'ColumnRef': this.columnRef(n); return;
      case 'A_Indirection': this.indirection(n); return;
      case 'RangeTableSample': this.tableSample(n); return;
      case 'String': case 'Integer': case 'Float': case 'Boolean': case 'BitString': case 'A_Const':
      case 'ParamRef': case 'A_Star': case 'SQLValueFunction':
        return;
    }
    if (type.endsWith('Stmt')) {
      const handler = STATEMENTS[type];
      if (handler === undefined) {
        this.unknown(`statement type ${type} is not classified`);
        this.walk(n);
        return;
      }
      if (typeof handler === 'string') {
        this.stmtEffect(handler);
        this.walk(n);
        return;
      }
      handler(this, n);
      return;
    }
    this.walk(n);
  }

  // ------------------------------------------------------------------------------------------
  // names

  /**
   * A relation's name as a fact. An unqualified name is left as a placeholder (unqualifiedName):
   * which schema it lands in depends on the session's search_path and the catalog, which the
   * caller resolves afterwards (index.ts `resolveNames`; without that, `public` as before).
   */
  qualify(rv: Obj): string {
    const rel = str(rv.relname);
    if (typeof rv.schemaname === 'string' && rv.schemaname !== '') return `${rv.schemaname}.${rel}`;
    if (rv.relpersistence === 't') return `pg_temp.${rel}`;
    return unqualifiedName(rel, this.creating > 0);
  }

  isCte(rv: Obj): boolean {
    if (typeof rv.schemaname === 'string' && rv.schemaname !== '') return false;
    const name = str(rv.relname);
    for (let i = this.ctes.length - 1; i >= 0; i--) if (this.ctes[i]!.has(name)) return true;
    return false;
  }

  rangeVar(rv: Obj, mode: 'read' | 'write'): string | null {
    if (mode === 'read' && this.isCte(rv)) return null;
    const name = this.qualify(rv);
    if (mode === 'write' && this.planOnly === 0) this.f.writes.add(name);
    else this.f.reads.add(name);
    return name;
  }

  /** Mark every RangeVar in a field (single, wrapped, or list) as written. */
  writeTargets(v: unknown): void {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) this.writeTargets(x);
      return;
    }
    const o = v as Obj;
    if (isRangeVar(o)) this.rangeVar(o, 'write');
    else if (o.RangeVar) this.rangeVar(o.RangeVar as Obj, 'write');
    else if (o.VacuumRelation) this.writeTargets((o.VacuumRelation as Obj).relation);
    else this.walk(o);
  }

  /** writeTargets, naming relations being created when `creates`. */
  creatingTargets(creates: boolean, v: unknown): void {
    if (creates) this.creating++;
    try {
      this.writeTargets(v);
    } finally {
      if (creates) this.creating--;
    }
  }

  /** A dotted name given as a list of String nodes (DROP TABLE a.b). */
  nameFromList(items: unknown): string | null {
    const parts = listStrings(items);
    if (parts === null || parts.length === 0) return null;
    const rel = parts[parts.length - 1]!;
    return parts.length >= 2 ? `${parts[parts.length - 2]!}.${rel}` : unqualifiedName(rel, false);
  }

  // ------------------------------------------------------------------------------------------
  // functions

  funcCall(n: Obj): void {
    const parts = listStrings(n.funcname) ?? ['?'];
    const qualified = parts.length === 2 && parts[0] === 'pg_catalog' ? [parts[1]!] : parts;
    const name = qualified.join('.');
    this.f.functions.add(name);
    this.walk(n.args);
    this.walkExcept(n, ['funcname', 'args']);
    if (qualified.length !== 1) {
      this.f.effects.add('call');
      return;
    }
    if (name === 'set_config') {
      this.setConfig(n.args);
      return;
    }
    this.functionEffect(name);
  }

  /** The effect of calling the unqualified function `name`, from the function table. */
  functionEffect(name: string): void {
    if (SAFE_FUNCTIONS.has(name)) return;
    const effect = EFFECTFUL_FUNCTIONS.get(name);
    if (effect === 'unknown') this.unknown(`${name}() runs SQL the classifier cannot see`);
    else this.f.effects.add(effect ?? 'call');
  }

  /**
   * `(expr).name`: PostgreSQL reads a field selection on a value that is not composite as the call
   * `name(expr)` (functional notation; a type name makes it a cast), so `('s'::regclass).nextval`
   * is `nextval('s')`. libpg-query shows an A_Indirection, not a FuncCall. Without the column
   * types we cannot tell a composite value from a scalar one, so only a ROW(...) constructor counts
   * as composite; a column (or a field of one) may be composite, so there only a name the function
   * table knows as effectful counts as a call (a composite field called `nextval` is not worth the
   * risk). Everything else is a call of that name, and an unknown name is a `call` (fail closed).
   */
  indirection(n: Obj): void {
    this.walk(n.arg);
    const arg = (n.arg ?? {}) as Obj;
    // 'row': provably composite; 'maybe': a column or a field of a value; 'scalar': anything else.
    let base: 'row' | 'maybe' | 'scalar' = arg.RowExpr ? 'row' : arg.ColumnRef ? 'maybe' : 'scalar';
    for (const ind of (Array.isArray(n.indirection) ? n.indirection : []) as Obj[]) {
      if (!ind.String) {
        this.walk(ind); // subscripts, `.*`
        continue;
      }
      const name = str((ind.String as Obj).sval);
      if (base === 'scalar' || (base === 'maybe' && EFFECTFUL_FUNCTIONS.has(name))) {
        this.f.functions.add(name);
        this.functionEffect(name);
        base = 'scalar';
      } else base = 'maybe';
    }
  }

  /**
   * `TABLESAMPLE method(...)`: an extension's method (tsm_system_rows...) is a function, called;
   * the built-in ones are part of the grammar and no function call (listed among `functions`,
   * an unknown name there made the session's search_path unknown to the gateway).
   */
  tableSample(n: Obj): void {
    const name = (listStrings(n.method) ?? ['?']).join('.');
    if (!BUILTIN_TABLESAMPLE_METHODS.has(name)) {
      this.f.functions.add(name);
      this.f.effects.add('call');
    }
    this.walkExcept(n, ['method']);
  }

  setConfig(args: unknown): void {
    const first = Array.isArray(args) ? constString(args[0]) : null;
    if (first === null) {
      this.f.effects.add('grant');
      this.f.reasons.push('set_config() with a setting name that is not a constant');
      return;
    }
    const value = Array.isArray(args) ? constValue(args[1]) : null;
    this.f.effects.add(settingKind(first, value));
    const unreadable = unreadableTextSetting(first, value);
    if (unreadable) this.f.reasons.push(unreadable);
  }

  // ------------------------------------------------------------------------------------------
  // columns

  pushScope(items: ScopeItem[]): void {
    this.scopes.push(items);
  }

  popScope(): void {
    this.scopes.pop();
  }

  /** The from-list entries of a FROM clause: tables with their visible names, derived relations as null. */
  scopeOf(from: unknown): ScopeItem[] {
    const items: ScopeItem[] = [];
    const add = (v: unknown): void => {
      if (v === null || typeof v !== 'object') return;
      if (Array.isArray(v)) return v.forEach(add);
      const o = v as Obj;
      if (o.RangeVar || isRangeVar(o)) {
        const rv = (o.RangeVar ?? o) as Obj;
        const alias = aliasName(rv.alias);
        const rel = str(rv.relname);
        const table = this.isCte(rv) ? null : this.qualify(rv);
        items.push({ names: alias !== null ? [alias] : [rel, ...(table ? [table] : [])], table });
      } else if (o.RangeTableSample) {
        add((o.RangeTableSample as Obj).relation);
      } else if (o.JoinExpr) {
        const j = o.JoinExpr as Obj;
        add(j.larg);
        add(j.rarg);
      } else {
        const inner = Object.values(o)[0] as Obj | undefined;
        const alias = inner && typeof inner === 'object' ? aliasName(inner.alias) : null;
        items.push({ names: alias !== null ? [alias] : [], table: null });
      }
    };
    add(from);
    return items;
  }

  columnRef(n: Obj): void {
    const fields = Array.isArray(n.fields) ? (n.fields as Obj[]) : [];
    const parts: (string | null)[] = fields.map((x) => (x.String ? str((x.String as Obj).sval) : null)); // null = *
    if (parts.length === 0) return;
    // `t.nextval` is `nextval(t)` (whole row) and `t.col.nextval` is `nextval(t.col)` when no column
    // or field of that name exists: functional notation again (see `indirection`). A name the
    // function table knows as effectful counts as that call wherever it follows the first part.
    for (let i = 1; i < parts.length; i++) {
      const p = parts[i];
      if (p != null && EFFECTFUL_FUNCTIONS.has(p)) {
        this.f.functions.add(p);
        this.functionEffect(p);
      }
    }
    const last = parts[parts.length - 1];
    const col = last === null ? '*' : last;
    const scope = this.scopes[this.scopes.length - 1] ?? [];
    if (parts.length === 1) {
      if (col === '*') {
        for (const item of scope) this.f.columns.add(item.table ? `${item.table}.*` : '*');
        if (scope.length === 0) this.f.columns.add('*');
        return;
      }
      const only = scope.length === 1 ? scope[0]! : null;
      this.f.columns.add(only?.table ? `${only.table}.${col}` : col);
      return;
    }
    if (parts.length === 2) {
      const qual = parts[0] ?? '';
      for (let i = this.scopes.length - 1; i >= 0; i--) {
        const hit = this.scopes[i]!.find((it) => it.names.includes(qual));
        if (hit) {
          this.f.columns.add(hit.table ? `${hit.table}.${col}` : col);
          return;
        }
      }
      this.f.columns.add(col);
      return;
    }
    // schema.table.column (or db.schema.table.column)
    const tail = parts.slice(-3).map((p) => p ?? '*');
    this.f.columns.add(tail.join('.'));
  }

  // ------------------------------------------------------------------------------------------
  // CTEs

  /**
   * Walk a WITH clause, making each CTE name visible as PostgreSQL does (a non-recursive CTE sees
   * only the CTEs before it; a recursive WITH sees all). The names stay visible for the statement
   * body until `exitWith`. Returns whether a scope was pushed.
   */
  enterWith(withClause: unknown): boolean {
    if (!withClause || typeof withClause !== 'object') return false;
    const w = withClause as Obj;
    const ctes = (Array.isArray(w.ctes) ? w.ctes : []) as Obj[];
    const visible = new Set<string>();
    if (w.recursive) for (const c of ctes) visible.add(str(((c.CommonTableExpr ?? {}) as Obj).ctename));
    this.ctes.push(visible);
    for (const c of ctes) {
      const cte = (c.CommonTableExpr ?? {}) as Obj;
      this.walk(cte.ctequery);
      this.walkExcept(cte, ['ctequery']);
      visible.add(str(cte.ctename));
    }
    return true;
  }

  exitWith(pushed: boolean): void {
    if (pushed) this.ctes.pop();
  }

  // ------------------------------------------------------------------------------------------
  // nested SQL (function bodies, DO blocks, rules)

  /** Classify SQL text found inside the statement (a SQL function body) into the same facts. */
  nestedSql(text: string, what: string): void {
    if (this.depth >= MAX_DEPTH) {
      this.unknown(`${what} nests too deeply to classify`);
      return;
    }
    let stmts: RawStatement[];
    try {
      const parsed = parseSync(text) as unknown as { stmts?: [] };
      stmts = splitStatements(text, parsed.stmts ?? []);
    } catch {
      this.unknown(`${what} does not parse`);
      return;
    }
    for (const s of stmts) new Walker(this.f, this.options, this.depth + 1, s.text).walk(s.stmt);
  }

  /** Classify a PL/pgSQL function (given as a full CREATE FUNCTION text) into the same facts. */
  plpgsql(createText: string, what: string): void {
    if (this.depth >= MAX_DEPTH) {
      this.unknown(`${what} nests too deeply to classify`);
      return;
    }
    let tree: unknown;
    try {
      tree = parsePlPgSQLSync(createText);
    } catch {
      this.unknown(`${what} does not parse as PL/pgSQL`);
      return;
    }
    this.plpgsqlNode(tree, what);
  }

  plpgsqlNode(node: unknown, what: string): void {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const n of node) this.plpgsqlNode(n, what);
      return;
    }
    const o = node as Obj;
    for (const [k, v] of Object.entries(o)) {
      if (k.startsWith('PLpgSQL_stmt_dyn') || k === 'dynquery') {
        this.unknown(`${what} runs dynamic SQL (EXECUTE)`);
      }
      if (k === 'PLpgSQL_expr') {
        this.plpgsqlExpr(v as Obj, what);
        continue;
      }
      if (v !== null && typeof v === 'object') this.plpgsqlNode(v, what);
    }
  }

  plpgsqlExpr(e: Obj, what: string): void {
    const query = str(e.query);
    const mode = typeof e.parseMode === 'number' ? e.parseMode : 0;
    // parseMode 0: a whole statement; 2: an expression; 3-5: an assignment `target := expr`.
    let sql = query;
    if (mode === 2) sql = `SELECT ${query}`;
    else if (mode >= 3) {
      const at = query.indexOf(':=');
      const eq = query.indexOf('=');
      const cut = at >= 0 ? at + 2 : eq >= 0 ? eq + 1 : -1;
      if (cut < 0) {
        this.unknown(`${what} has an assignment the classifier cannot read`);
        return;
      }
      sql = `SELECT ${query.slice(cut)}`;
    }
    this.nestedSql(sql, what);
  }
}

// ----------------------------------------------------------------------------------------------
// statements

type Handler = SqlKind | ((w: Walker, n: Obj) => void);

const ddl: SqlKind = 'ddl';
const grant: SqlKind = 'grant';

// Handlers push and pop scopes without try/finally: a walker that throws is discarded whole
// (the statement becomes `unknown`), so its stacks never need unwinding. No closures either:
// this is the per-statement hot path.

function targetScope(w: Walker, rv: unknown): ScopeItem[] {
  return rv && typeof rv === 'object' ? w.scopeOf([rv]) : [];
}

function selectStmt(w: Walker, n: Obj, top: boolean): void {
  const pushed = w.enterWith(n.withClause);
  if (n.op && n.op !== 'SETOP_NONE') {
    // The branches of UNION/INTERSECT/EXCEPT are inline SelectStmt bodies (no type wrapper).
    w.stmtEffect('select');
    if (n.larg && typeof n.larg === 'object') selectStmt(w, n.larg as Obj, false);
    if (n.rarg && typeof n.rarg === 'object') selectStmt(w, n.rarg as Obj, false);
    w.walkExcept(n, SKIP_SETOP);
  } else {
    w.stmtEffect('select');
    const items = w.scopeOf(n.fromClause);
    // JOIN ... ON conditions see the from-list, so the FROM clause is walked inside the scope.
    w.pushScope(items);
    w.walkExcept(n, SKIP_SELECT);
    w.popScope();
    if (n.intoClause) {
      w.stmtEffect('ddl');
      w.creatingTargets(true, (n.intoClause as Obj).rel);
    }
    if (Array.isArray(n.lockingClause) && n.lockingClause.length > 0) {
      // FOR UPDATE / FOR SHARE take row locks: a write, on the locked tables.
      w.stmtEffect('update');
      for (const item of items) if (item.table && w.planOnly === 0) w.f.writes.add(item.table);
    }
  }
  w.exitWith(pushed);
  if (top && w.planOnly === 0) w.f.limit = constLimit(n.limitCount);
}

const SKIP_SETOP = ['withClause', 'larg', 'rarg'] as const;
const SKIP_SELECT = ['withClause', 'intoClause'] as const;
const SKIP_RELATION = ['relation'] as const;

/** `SET col = ...` / `INSERT (col, ...)` targets, qualified by the written table. */
function targetColumns(w: Walker, target: string | null, list: unknown): void {
  if (!Array.isArray(list) || target === null) return;
  for (const t of list as Obj[]) {
    const rt = (t.ResTarget ?? {}) as Obj;
    if (typeof rt.name === 'string') w.f.columns.add(`${target}.${rt.name}`);
  }
}

/**
 * `RETURNING`: the statement also reads the rows it wrote back to the client, so it has the
 * `select` effect and its target among `reads` (a mask rule scoped to reads must see them).
 */
function returning(w: Walker, n: Obj, target: string | null): void {
  w.walk(n.returningClause);
  // libpg-query 18 (PostgreSQL 18's grammar): `returningClause: { exprs: [...] }`.
  const exprs = (n.returningClause as Obj | undefined)?.exprs;
  if (target === null || !Array.isArray(exprs) || exprs.length === 0 || w.planOnly > 0) return;
  w.stmtEffect('select');
  w.f.reads.add(target);
}

function insertStmt(w: Walker, n: Obj): void {
  const pushed = w.enterWith(n.withClause);
  w.stmtEffect('insert');
  const target = w.rangeVar(n.relation as Obj, 'write');
  targetColumns(w, target, n.cols);
  // The source query does not see the target table's columns: its own scope.
  w.walk(n.selectStmt);
  w.pushScope(targetScope(w, n.relation));
  const oc = n.onConflictClause as Obj | undefined;
  if (oc) {
    if (oc.action === 'ONCONFLICT_UPDATE') w.stmtEffect('update');
    targetColumns(w, target, oc.targetList);
    w.walk(oc);
  }
  returning(w, n, target);
  w.popScope();
  w.exitWith(pushed);
}

function updateStmt(w: Walker, n: Obj): void {
  const pushed = w.enterWith(n.withClause);
  w.stmtEffect('update');
  if (!n.whereClause && w.planOnly === 0) w.f.hasWhere = false;
  const target = w.rangeVar(n.relation as Obj, 'write');
  w.pushScope([...targetScope(w, n.relation), ...w.scopeOf(n.fromClause)]);
  w.walk(n.fromClause);
  targetColumns(w, target, n.targetList);
  for (const t of (Array.isArray(n.targetList) ? n.targetList : []) as Obj[]) {
    const rt = (t.ResTarget ?? {}) as Obj;
    w.walk(rt.val);
    w.walk(rt.indirection);
  }
  w.walk(n.whereClause);
  returning(w, n, target);
  w.popScope();
  w.exitWith(pushed);
}

function deleteStmt(w: Walker, n: Obj): void {
  const pushed = w.enterWith(n.withClause);
  w.stmtEffect('delete');
  if (!n.whereClause && w.planOnly === 0) w.f.hasWhere = false;
  const target = w.rangeVar(n.relation as Obj, 'write');
  w.pushScope([...targetScope(w, n.relation), ...w.scopeOf(n.usingClause)]);
  w.walk(n.usingClause);
  w.walk(n.whereClause);
  returning(w, n, target);
  w.popScope();
  w.exitWith(pushed);
}

function mergeStmt(w: Walker, n: Obj): void {
  const pushed = w.enterWith(n.withClause);
  w.stmtEffect('merge');
  const target = w.rangeVar(n.relation as Obj, 'write');
  // A join condition that is a bare constant (ON true) bounds nothing.
  const bounded = !!n.joinCondition && !(n.joinCondition as Obj).A_Const;
  w.pushScope([...targetScope(w, n.relation), ...w.scopeOf([n.sourceRelation])]);
  w.walk(n.sourceRelation);
  w.walk(n.joinCondition);
  for (const c of (Array.isArray(n.mergeWhenClauses) ? n.mergeWhenClauses : []) as Obj[]) {
    const mw = (c.MergeWhenClause ?? {}) as Obj;
    const kind = mw.commandType === 'CMD_DELETE' ? 'delete' : mw.commandType === 'CMD_UPDATE' ? 'update'
      : mw.commandType === 'CMD_INSERT' ? 'insert' : null;
    if (kind) w.stmtEffect(kind);
    if ((kind === 'delete' || kind === 'update') && !bounded && w.planOnly === 0) w.f.hasWhere = false;
    w.walk(mw);
  }
  returning(w, n, target);
  w.popScope();
  w.exitWith(pushed);
}

/**
 * A statement of `kind` whose `field` names the table(s) it writes; its other fields are walked
 * (in the column scope of that table when `scope`, e.g. index expressions).
 */
function targets(kind: SqlKind, field: string, scope = false, creates = false): Handler {
  const skip = [field];
  return (w, n) => {
    w.stmtEffect(kind);
    w.creatingTargets(creates, n[field]);
    if (scope) inTargetScope(w, n);
    else w.walkExcept(n, skip);
  };
}

/** Walk every field but `relation` in the scope of the table `relation` names. */
function inTargetScope(w: Walker, n: Obj): void {
  w.pushScope(targetScope(w, n.relation));
  w.walkExcept(n, SKIP_RELATION);
  w.popScope();
}

const STATEMENTS: Record<string, Handler> = {
  SelectStmt: (w, n) => selectStmt(w, n, false),
  InsertStmt: insertStmt,
  UpdateStmt: updateStmt,
  DeleteStmt: deleteStmt,
  MergeStmt: mergeStmt,
  CopyStmt: (w, n) => {
    if (n.is_program) {
      w.stmtEffect('do');
      w.f.reasons.push('COPY ... PROGRAM runs a program on the database server');
    } else if (typeof n.filename === 'string') {
      w.stmtEffect('do');
      w.f.reasons.push('COPY with a server-side file reads or writes the server filesystem');
    }
    if (n.is_from) {
      w.stmtEffect('copy_from');
      const target = w.rangeVar(n.relation as Obj, 'write');
      if (target) for (const a of listStrings(n.attlist) ?? []) w.f.columns.add(`${target}.${a}`);
      w.pushScope(targetScope(w, n.relation));
      w.walk(n.whereClause);
      w.popScope();
      return;
    }
    w.stmtEffect('copy_to');
    if (n.relation) {
      const source = w.rangeVar(n.relation as Obj, 'read');
      const attrs = listStrings(n.attlist) ?? [];
      if (source) for (const a of attrs.length > 0 ? attrs : ['*']) w.f.columns.add(`${source}.${a}`);
    }
    w.walk(n.query);
  },
  ExplainStmt: (w, n) => {
    w.stmtEffect('explain');
    if (explainAnalyzes(n.options)) {
      w.walk(n.query);
      return;
    }
    w.planOnly++;
    try {
      w.walk(n.query);
    } finally {
      w.planOnly--;
    }
  },
  CreateTableAsStmt: (w, n) => {
    w.stmtEffect('ddl');
    w.creatingTargets(true, (n.into as Obj | undefined)?.rel);
    w.walk(n.query);
  },
  PrepareStmt: (w, n) => {
    w.walk(n.query);
    w.walk(n.argtypes);
  },
  ExecuteStmt: (w, n) => {
    w.f.usesPrepared = true;
    const name = str(n.name);
    const prepared = w.options?.prepared?.get(name);
    if (!prepared) w.unknown(`EXECUTE ${name}: the prepared statement is not known`);
    else mergeAction(w, prepared);
    w.walk(n.params);
  },
  DeclareCursorStmt: (w, n) => w.walk(n.query),
  FetchStmt: (w, n) => {
    // FETCH and MOVE run the cursor's query (its row locks, its volatile functions): they carry
    // its facts. A cursor the caller does not know (one opened inside a function) is unknown.
    w.f.usesPrepared = true;
    w.stmtEffect(n.ismove ? 'utility' : 'select');
    const name = str(n.portalname);
    const cursor = w.options?.cursors?.get(name);
    if (!cursor) w.unknown(`${n.ismove ? 'MOVE' : 'FETCH'} ${name}: the cursor is not known`);
    else mergeAction(w, cursor);
  },
  ClosePortalStmt: 'utility',
  DeallocateStmt: 'utility',
  VariableSetStmt: (w, n) => {
    const name = str(n.name).toLowerCase();
    if (n.kind === 'VAR_SET_MULTI' && name === 'transaction') w.stmtEffect('transaction');
    else {
      // The new value when it is one constant; `undefined` for RESET / SET ... TO DEFAULT.
      const args = Array.isArray(n.args) ? n.args : [];
      const resets = n.kind === 'VAR_RESET' || n.kind === 'VAR_SET_DEFAULT' || n.kind === 'VAR_RESET_ALL';
      const value = resets ? undefined : args.length === 1 ? constValue(args[0]) : null;
      // search_path is an identity setting for set_config (grant), but a plain SET or RESET of it
      // is followed by the gateway, which resolves later names through it: `set` — unless the
      // value would let a schema shadow pg_catalog's functions (grant, with the reason).
      if (name === 'search_path') {
        const list = resets ? [] : args.map((a) => constValue(a));
        const risk = list.some((x) => x === null) ? 'SET search_path to a value that is not a list of names' : searchPathRisk(list as string[]);
        w.stmtEffect(risk ? 'grant' : 'set');
        if (risk) w.f.reasons.push(risk);
      } else {
        w.stmtEffect(settingKind(name, value));
        const unreadable = unreadableTextSetting(name, value);
        if (unreadable) w.f.reasons.push(unreadable);
      }
    }
    w.walk(n.args);
  },
  VariableShowStmt: 'utility',
  TransactionStmt: (w, n) => {
    // Two-phase commit reaches past the session: a prepared transaction keeps its locks and holds
    // back vacuum after the session ends, and COMMIT/ROLLBACK PREPARED end a transaction some
    // other session ran (any session of the gateway's role may). Side effects outside the session.
    const twoPhase = n.kind === 'TRANS_STMT_PREPARE' || n.kind === 'TRANS_STMT_COMMIT_PREPARED' || n.kind === 'TRANS_STMT_ROLLBACK_PREPARED';
    w.stmtEffect(twoPhase ? 'call' : 'transaction');
  },
  ConstraintsSetStmt: 'transaction',
  DiscardStmt: (w, n) => {
    // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT: an identity change.
    w.stmtEffect(n.target === 'DISCARD_ALL' ? 'grant' : 'set');
  },
  ListenStmt: 'utility',
  UnlistenStmt: 'utility',
  // NOTIFY delivers a message other sessions may act on: a side effect outside the tables.
  NotifyStmt: 'call',
  CheckPointStmt: 'utility',
  LoadStmt: (w) => {
    w.stmtEffect('do');
    w.f.reasons.push('LOAD loads a shared library into the server');
  },
  DoStmt: (w, n) => {
    w.stmtEffect('do');
    w.f.reasons.push('DO runs an anonymous code block');
    const { language, body } = functionOptions(n.args);
    const dependent = body !== null ? settingDependentBody(body, 'the DO block') : undefined;
    if (dependent) w.f.reasons.push(dependent);
    if (body !== null && (language ?? 'plpgsql') === 'plpgsql') {
      w.plpgsql(`CREATE FUNCTION hoop_do() RETURNS void LANGUAGE plpgsql AS ${dollarQuote(body)}`, 'the DO block');
    }
  },
  CallStmt: (w, n) => {
    w.stmtEffect('call');
    // `funccall` is an inline FuncCall (no type wrapper).
    if (n.funccall && typeof n.funccall === 'object') w.funcCall(n.funccall as Obj);
  },
  VacuumStmt: (w, n) => {
    const full = defElemNames(n.options).has('full');
    w.stmtEffect(full ? 'ddl' : 'utility');
    if (full) w.writeTargets(n.rels);
    else w.walk(n.rels);
  },
  CreateFunctionStmt: (w, n) => createFunction(w, n),
  TruncateStmt: targets('truncate', 'relations'),
  LockStmt: targets('update', 'relations'),
  ClusterStmt: targets('ddl', 'relation'),
  ReindexStmt: targets('ddl', 'relation'),
  RefreshMatViewStmt: targets('ddl', 'relation'),
  CreateStmt: targets('ddl', 'relation', false, true),
  ViewStmt: targets('ddl', 'view', false, true),
  IndexStmt: targets('ddl', 'relation', true),
  CreateTrigStmt: targets('ddl', 'relation'),
  RuleStmt: targets('ddl', 'relation'),
  CreatePolicyStmt: targets('grant', 'table'),
  AlterPolicyStmt: targets('grant', 'table'),
  CreateSeqStmt: targets('ddl', 'sequence', false, true),
  AlterSeqStmt: targets('ddl', 'sequence'),
  AlterObjectSchemaStmt: targets('ddl', 'relation'),
  CompositeTypeStmt: targets('ddl', 'typevar', false, true),
  CreateForeignTableStmt: (w, n) => {
    w.stmtEffect('ddl');
    const base = (n.base ?? {}) as Obj;
    w.creatingTargets(true, base.relation);
    w.walkExcept(base, ['relation']);
    w.walkExcept(n, ['base']);
  },
  AlterTableStmt: (w, n) => {
    w.stmtEffect('ddl');
    for (const c of (Array.isArray(n.cmds) ? n.cmds : []) as Obj[]) {
      const sub = str(((c.AlterTableCmd ?? {}) as Obj).subtype);
      // Row-level security switches and owner changes decide who sees which rows: privilege changes.
      if (/RowSecurity$|^AT_ChangeOwner$/.test(sub)) w.stmtEffect('grant');
    }
    w.writeTargets(n.relation);
    inTargetScope(w, n);
  },
  DropStmt: (w, n) => {
    w.stmtEffect('ddl');
    const relational = /^OBJECT_(TABLE|VIEW|MATVIEW|SEQUENCE|FOREIGN_TABLE|INDEX)$/.test(str(n.removeType));
    for (const o of (Array.isArray(n.objects) ? n.objects : []) as Obj[]) {
      const name = relational ? w.nameFromList((o.List as Obj | undefined)?.items) : null;
      if (name) w.f.writes.add(name);
      else w.walk(o);
    }
  },
  RenameStmt: (w, n) => {
    w.stmtEffect(n.renameType === 'OBJECT_ROLE' ? 'grant' : 'ddl');
    w.writeTargets(n.relation);
    w.walkExcept(n, ['relation']);
  },
  GrantStmt: (w, n) => {
    w.stmtEffect('grant');
    if (n.objtype === 'OBJECT_TABLE' || n.objtype === 'OBJECT_SEQUENCE') w.writeTargets(n.objects);
    w.walkExcept(n, ['objects']);
  },
  CommentStmt: ddl, CreateSchemaStmt: ddl, ReplicaIdentityStmt: ddl, AlterCollationStmt: ddl,
  AlterDomainStmt: ddl, CreateTableSpaceStmt: ddl, DropTableSpaceStmt: ddl,
  AlterTableSpaceOptionsStmt: ddl, AlterTableMoveAllStmt: ddl, CreateExtensionStmt: ddl,
  AlterExtensionStmt: ddl, AlterExtensionContentsStmt: ddl, CreateFdwStmt: ddl, AlterFdwStmt: ddl,
  CreateForeignServerStmt: ddl, AlterForeignServerStmt: ddl, ImportForeignSchemaStmt: ddl,
  CreateAmStmt: ddl, CreateEventTrigStmt: ddl, AlterEventTrigStmt: ddl, CreatePLangStmt: ddl,
  DefineStmt: ddl, CreateDomainStmt: ddl, CreateOpClassStmt: ddl, CreateOpFamilyStmt: ddl,
  AlterOpFamilyStmt: ddl, CreateStatsStmt: ddl, AlterStatsStmt: ddl, AlterFunctionStmt: ddl,
  AlterObjectDependsStmt: ddl, AlterOperatorStmt: ddl, AlterTypeStmt: ddl,
  CreateEnumStmt: ddl, CreateRangeStmt: ddl, AlterEnumStmt: ddl, CreatedbStmt: ddl,
  AlterDatabaseStmt: ddl, AlterDatabaseRefreshCollStmt: ddl, DropdbStmt: ddl,
  CreateConversionStmt: ddl, CreateCastStmt: ddl, CreateTransformStmt: ddl,
  AlterTSDictionaryStmt: ddl, AlterTSConfigurationStmt: ddl, CreatePublicationStmt: ddl,
  AlterPublicationStmt: ddl, CreateSubscriptionStmt: ddl, AlterSubscriptionStmt: ddl,
  DropSubscriptionStmt: ddl,
  // Identity, privileges and server configuration.
  GrantRoleStmt: grant, AlterDefaultPrivilegesStmt: grant, CreateRoleStmt: grant,
  AlterRoleStmt: grant, AlterRoleSetStmt: grant, DropRoleStmt: grant, AlterSystemStmt: grant,
  AlterDatabaseSetStmt: grant, DropOwnedStmt: grant, ReassignOwnedStmt: grant, AlterOwnerStmt: grant,
  CreateUserMappingStmt: grant, AlterUserMappingStmt: grant, DropUserMappingStmt: grant,
  SecLabelStmt: grant,
  // Only valid inside SQL function bodies (BEGIN ATOMIC ... RETURN expr).
  ReturnStmt: (w, n) => w.walk(n.returnval),
};

function createFunction(w: Walker, n: Obj): void {
  w.stmtEffect('ddl');
  const { language, body, linkSymbol } = functionOptions(n.options);
  const lang = (language ?? 'sql').toLowerCase();
  const what = n.is_procedure ? 'the procedure body' : 'the function body';
  w.walk(n.parameters);
  w.walk(n.returnType);
  if (n.sql_body) {
    w.walk(n.sql_body);
    return;
  }
  const dependent = body !== null ? settingDependentBody(body, what) : undefined;
  if (dependent) w.f.reasons.push(dependent);
  if (lang === 'sql') {
    if (body !== null) w.nestedSql(body, what);
    return;
  }
  if (lang === 'plpgsql') {
    if (body !== null) w.plpgsql(w.text, what);
    return;
  }
  w.stmtEffect('do');
  w.f.reasons.push(`${what} is in language ${lang}${linkSymbol ? ` (${linkSymbol})` : ''}, which the classifier cannot analyse`);
}

function mergeAction(w: Walker, a: SqlAction): void {
  for (const e of a.effects) w.stmtEffect(e);
  if (a.effects.length === 0) w.stmtEffect(a.kind);
  for (const r of a.reads) w.f.reads.add(r);
  for (const r of a.writes) w.f.writes.add(r);
  for (const c of a.columns) w.f.columns.add(c);
  // PostgreSQL re-parses a prepared statement with the new search_path when it changed since the
  // PREPARE: its unqualified names are resolved again for this EXECUTE (on top of the PREPARE's).
  const raw = readRaw(a);
  if (raw) {
    for (const r of raw.reads) w.f.reads.add(r);
    for (const r of raw.writes) w.f.writes.add(r);
    for (const c of raw.columns) w.f.columns.add(c);
  }
  for (const fn of a.functions) w.f.functions.add(fn);
  if (!a.has_where) w.f.hasWhere = false;
  if (a.reason) w.f.reasons.push(a.reason);
}

// ----------------------------------------------------------------------------------------------
// helpers

/**
 * Marks an unqualified relation name inside a fact (`reads`, `writes`, `columns`): NUL cannot occur
 * in an identifier, so the placeholder cannot be spelled by a statement. `r` is a name looked up
 * through the search_path, `c` a relation being created (placed in the creation schema).
 */
export const UNQUALIFIED = '\u0000';
export const UNQUALIFIED_RE = /\u0000([rc]):([^\u0000]*)\u0000/g;

/**
 * The facts of an action as the walker left them (placeholders in), for actions with unqualified
 * names; kept for resolved actions too, so an EXECUTE of a prepared statement can resolve them again.
 * `names` caches their unqualified names (index.ts `unqualifiedNames`).
 */
export interface RawNames {
  reads: readonly string[];
  writes: readonly string[];
  columns: readonly string[];
  names?: { lookups: readonly string[]; creates: readonly string[] };
  /** Their resolution without a session (`public`, pg_catalog for its own relations). */
  defaults?: { reads: string[]; writes: string[]; columns: string[] };
}

/** Where an action keeps its raw facts (index.ts: a field of its own), told by `readRawNamesWith`. */
let readRaw: (a: SqlAction) => RawNames | undefined = () => undefined;

export function readRawNamesWith(read: (a: SqlAction) => RawNames | undefined): void {
  readRaw = read;
}

export function unqualifiedName(rel: string, creating: boolean): string {
  return `${UNQUALIFIED}${creating ? 'c' : 'r'}:${rel}${UNQUALIFIED}`;
}

/** The schema an unqualified name gets without a session to resolve it: pg_catalog's own relations, else `public`. */
export function defaultSchema(rel: string, creating: boolean): string {
  return !creating && CATALOG_RELATIONS.has(rel) ? 'pg_catalog' : 'public';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isRangeVar(o: Obj): boolean {
  return typeof o.relname === 'string' && 'relpersistence' in o;
}

function aliasName(alias: unknown): string | null {
  return alias && typeof alias === 'object' && typeof (alias as Obj).aliasname === 'string'
    ? ((alias as Obj).aliasname as string) : null;
}

/** A list of `{String: {sval}}` nodes as strings; null when any item is not a String. */
function listStrings(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  const out: string[] = [];
  for (const x of v as Obj[]) {
    const s = x && typeof x === 'object' ? (x.String as Obj | undefined) : undefined;
    if (!s) return null;
    out.push(str(s.sval));
  }
  return out;
}

function constString(v: unknown): string | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Obj;
  if (o.TypeCast) return constString((o.TypeCast as Obj).arg);
  const c = o.A_Const as Obj | undefined;
  if (!c || !c.sval) return null;
  return str((c.sval as Obj).sval);
}

/** A constant's text (strings, numbers, booleans, identifiers as in `SET x TO on`), else null. */
function constValue(v: unknown): string | null {
  const s = constString(v);
  if (s !== null) return s;
  if (!v || typeof v !== 'object') return null;
  const c = (v as Obj).A_Const as Obj | undefined;
  if (!c) return null;
  if (c.ival && typeof c.ival === 'object') return String((c.ival as Obj).ival ?? 0);
  if (c.boolval && typeof c.boolval === 'object') return (c.boolval as Obj).boolval ? 'true' : 'false';
  if (c.fval && typeof c.fval === 'object') return str((c.fval as Obj).fval);
  return null;
}

function constLimit(v: unknown): number | null {
  if (!v || typeof v !== 'object') return null;
  const c = (v as Obj).A_Const as Obj | undefined;
  if (!c) return null;
  if (c.ival && typeof c.ival === 'object') {
    const i = (c.ival as Obj).ival;
    return typeof i === 'number' ? i : 0; // libpg-query omits zero values: `{ival: {}}` is 0
  }
  // A fractional or out-of-int32 constant (libpg-query gives those as `fval`) is rounded by the
  // server; report it as not constant rather than guess.
  return null;
}

function defElemNames(options: unknown): Set<string> {
  const out = new Set<string>();
  for (const o of (Array.isArray(options) ? options : []) as Obj[]) {
    const d = o.DefElem as Obj | undefined;
    if (d && typeof d.defname === 'string') out.add(d.defname.toLowerCase());
  }
  return out;
}

/** EXPLAIN runs the statement only with ANALYZE; `ANALYZE false/off/0` does not. Unclear → it runs. */
function explainAnalyzes(options: unknown): boolean {
  for (const o of (Array.isArray(options) ? options : []) as Obj[]) {
    const d = o.DefElem as Obj | undefined;
    if (!d || str(d.defname).toLowerCase() !== 'analyze') continue;
    if (!d.arg) return true;
    const a = d.arg as Obj;
    const s = a.String ? str((a.String as Obj).sval).toLowerCase() : null;
    if (s !== null && ['off', 'false', 'no', '0'].includes(s)) continue;
    if (a.Boolean && !(a.Boolean as Obj).boolval) continue;
    if (a.Integer && !(a.Integer as Obj).ival) continue;
    return true;
  }
  return false;
}

function functionOptions(options: unknown): { language: string | null; body: string | null; linkSymbol: string | null } {
  let language: string | null = null;
  let body: string | null = null;
  let linkSymbol: string | null = null;
  for (const o of (Array.isArray(options) ? options : []) as Obj[]) {
    const d = o.DefElem as Obj | undefined;
    if (!d) continue;
    const arg = (d.arg ?? {}) as Obj;
    if (d.defname === 'language' && arg.String) language = str((arg.String as Obj).sval);
    if (d.defname === 'as') {
      if (arg.String) body = str((arg.String as Obj).sval);
      const items = listStrings((arg.List as Obj | undefined)?.items);
      if (items && items.length > 0) {
        body = items[0]!;
        linkSymbol = items[1] ?? null;
      }
    }
  }
  return { language, body, linkSymbol };
}

function dollarQuote(body: string): string {
  let tag = 'hoop';
  while (body.includes(`$${tag}$`)) tag += 'x';
  return `$${tag}$${body}$${tag}$`;
}

// ----------------------------------------------------------------------------------------------
// entry point

/** The worst kind first, no duplicates. */
export function orderKinds(kinds: SmallSet<SqlKind>): SqlKind[] {
  const out: SqlKind[] = [];
  for (const k of SQL_KINDS) if (kinds.has(k)) out.push(k);
  return out;
}

/**
 * Walk one top-level statement node (`RawStmt.stmt`). `text` is the statement's own text
 * (needed to hand PL/pgSQL bodies to the PL/pgSQL parser).
 */
export function classifyStatement(stmt: unknown, text: string, options: SqlClassifyOptions | undefined): Facts {
  const f = newFacts();
  const w = new Walker(f, options, 0, text);
  const o = stmt as Obj | null;
  const type = o && typeof o === 'object' ? Object.keys(o)[0] : undefined;
  if (type === 'SelectStmt') selectStmt(w, o![type] as Obj, true);
  else if (type !== undefined && type.endsWith('Stmt')) w.walk(o);
  else w.unknown(`not a statement (${type ?? 'empty'})`);
  if (f.effects.size === 0) w.unknown('no effect recognised');
  return f;
}
