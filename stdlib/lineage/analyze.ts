// Column lineage of one SQL statement (libpg-query AST) with respect to a set of masked columns.
//
// For every output column the analysis says whether it is clear, a direct copy of a masked column,
// derived from masked columns, or opaque; and it lists the reasons to block the statement outright:
// flows the gateway cannot follow (user-defined or unknown functions, DO, CALL), channels other
// than the result rows (COPY TO, masked data written into tables, error messages that quote a
// value — casts of masked values to non-text types —, planner statistics), or anything it does not
// understand. Unknown is never clear: every construct not modelled here is opaque when a masked
// column reaches it.
//
// The walk is asynchronous because relations, views, functions and operators are looked up in the
// upstream catalog (cached by the Catalog implementation; view analyses cached per call in
// `LineageCache`).

import { routineTrusted, type Catalog, type CatalogRelation } from './catalog.ts';
import { CLEAR, derive, direct, describe, isClear, opaque, union, type Flow } from './flow.ts';
import { CLEAR_RESULT, ECHO_SAFE, ECHO_SAFE_OPERATORS, READS_DATA, STATISTICS_RELATIONS, SYSTEM_COLUMNS, SAFE_CAST_TYPES } from './functions.ts';
import type { StatementParser } from './parse.ts';
import { functionName, list, names, outputName, relName, selectBody, unwrap, unwrapRel, type Node } from './ast-access.ts';
import { applyAlias, findCte, newScope, schemaRank, shapeColumns, toShape, wholeRow, zipUnion, type Entry, type Scope, type Shape } from './scope.ts';

/** One output position. A `spread` stands for an unknown number of columns (a function's `*`). */
export type OutputColumn = { name: string; flow: Flow; spread?: false } | { name: string; flow: Flow; spread: true };

export interface StatementLineage {
  /**
   * `rows`: the statement returns rows whose columns are `outputs`, by position. `none`: it returns
   * no rows. `unknown`: it may return rows the analysis cannot describe (FETCH, EXECUTE): the
   * masker must account for every field by its table OID or refuse.
   */
  result: 'rows' | 'none' | 'unknown';
  outputs: OutputColumn[];
  /** Why the statement must not run (empty: it may). Each names the column and the reason. */
  blocks: string[];
  /**
   * The statement reads a relation with a masked column (directly, or through a view or a nested
   * query). Its errors and notices may then quote a masked value, whichever expression failed.
   */
  touchesMasked: boolean;
}

/** View analyses shared between statements (key: oid + masked set). Owned by the caller. */
export type LineageCache = Map<string, Promise<ViewLineage>>;

interface ViewLineage {
  columns: Flow[];
  blocks: string[];
  touchesMasked: boolean;
}

export interface LineageOptions {
  catalog: Catalog;
  /** Masked columns, normalised `schema.table.column` (compared case-insensitively). */
  masked: ReadonlySet<string>;
  /** Parses view definitions. */
  parse: StatementParser;
  cache?: LineageCache;
  /**
   * The schema(s) an unqualified relation name of the statement resolves to in its session
   * (search_path, temporary tables); without it every schema holding the name is a candidate.
   * Not used inside view definitions (their names were bound when the view was made).
   */
  schemasOf?: (relname: string) => readonly string[] | undefined;
}

const MAX_VIEW_DEPTH = 16;

export class LineageAnalyzer {
  private readonly blocks: string[] = [];
  private readonly masked: ReadonlySet<string>;
  private touched = false;

  constructor(
    private readonly opts: LineageOptions,
    private readonly depth = 0,
  ) {
    this.masked = new Set([...opts.masked].map((c) => c.toLowerCase()));
  }

  /** Lineage of one statement (`RawStmt.stmt`, e.g. `{ SelectStmt: ... }`). Never throws for a well-formed AST. */
  async statement(ast: unknown): Promise<StatementLineage> {
    const u = unwrap(ast);
    if (u === undefined) return { result: 'unknown', outputs: [], blocks: ['the statement could not be parsed'], touchesMasked: true };
    const [type, body] = u;
    let result: StatementLineage['result'] = 'none';
    let outputs: OutputColumn[] = [];
    switch (type) {
      case 'SelectStmt': {
        outputs = await this.select(body, undefined);
        result = 'rows';
        const into = body.intoClause as Node | undefined;
        if (into) {
          this.blockCopies(outputs, `SELECT INTO ${relName(unwrapRel(into.rel))}`);
          outputs = [];
          result = 'none';
        }
        break;
      }
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        outputs = await this.write(type, body);
        result = outputs.length > 0 ? 'rows' : 'none';
        break;
      case 'CopyStmt':
        await this.copy(body);
        break;
      case 'ExplainStmt':
        // The plan text holds expressions and constants, never row values; the inner statement is
        // still checked (EXPLAIN ANALYZE runs it: its errors and side channels are real).
        await this.nested(body.query);
        outputs = [{ name: 'QUERY PLAN', flow: CLEAR, spread: true }];
        result = 'rows';
        break;
      case 'DeclareCursorStmt':
      case 'PrepareStmt':
        // DECLARE and PREPARE return no rows themselves; a FETCH or EXECUTE returns the query's, and
        // its result is masked with this lineage (the gateway plans a FETCH's or EXECUTE's rows with
        // the DECLARE's or PREPARE's text).
        outputs = await this.nestedOutputs(body.query);
        result = 'rows';
        break;
      case 'CreateTableAsStmt': {
        if (unwrap(body.query)?.[0] === 'ExecuteStmt') {
          // CREATE TABLE AS EXECUTE: the rows are a prepared statement's, which this text does not show.
          this.block('CREATE TABLE AS EXECUTE is not allowed while columns are masked: the copy could hold the prepared statement\'s masked columns unmasked');
          break;
        }
        const outs = await this.nestedOutputs(body.query);
        // A materialized view is followed like a view when read; a table copy is not.
        if (body.objtype !== 'OBJECT_MATVIEW') this.blockCopies(outs, `CREATE TABLE ${relName(unwrapRel((body.into as Node | undefined)?.rel))} AS`);
        break;
      }
      case 'DoStmt':
        this.block('DO runs procedural code the gateway cannot follow (it could read masked columns and return them in notices or errors)');
        break;
      case 'CallStmt':
        this.block('CALL runs a procedure the gateway cannot follow (it could read masked columns and return them)');
        break;
      case 'ExecuteStmt':
      case 'FetchStmt':
        // The rows (and errors) come from a query decided earlier: assume it reads masked columns.
        result = 'unknown';
        this.touched = true;
        break;
      case 'VariableShowStmt':
        outputs = [{ name: 'setting', flow: CLEAR, spread: true }];
        result = 'rows';
        break;
      case 'CreateFunctionStmt':
      case 'CreateTrigStmt':
      case 'RuleStmt':
      case 'CreateEventTrigStmt':
        this.block('defining functions, triggers or rules while columns are masked is not allowed: their code would read masked columns unmasked');
        break;
      case 'ViewStmt': {
        // The gateway reads view definitions over its own connection, which cannot see a view
        // (re)defined in the session's open transaction: a view over masked columns would look
        // like the old definition until committed. So such views cannot be defined while masks apply.
        const outs = await this.nestedOutputs(body.query);
        for (const o of outs) {
          if (!isClear(o.flow) && o.flow.t !== 'opaque') {
            this.block(`defining a view over masked column ${describe(o.flow)} is not allowed while columns are masked (the gateway cannot see the new definition before it is committed)`);
          }
        }
        break;
      }
      case 'TransactionStmt':
        // COMMIT (and PREPARE TRANSACTION, COMMIT PREPARED) runs the deferred triggers of earlier
        // statements: their errors and notices can quote what those read.
        if (['TRANS_STMT_COMMIT', 'TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED'].includes(String(body.kind))) this.touched = true;
        break;
      case 'ConstraintsSetStmt':
        // SET CONSTRAINTS ... IMMEDIATE fires pending deferred triggers now.
        this.touched = true;
        break;
      case 'VariableSetStmt':
      case 'ListenStmt':
      case 'UnlistenStmt':
      case 'NotifyStmt':
      case 'ClosePortalStmt':
      case 'DeallocateStmt':
      case 'DiscardStmt':
        break;
      default:
        // Utility statements (DDL, GRANT, VACUUM, ...) return no rows. Any query inside is checked,
        // and so is every relation they name: DDL on a table with masked columns (ALTER COLUMN
        // TYPE, CREATE INDEX on an expression, ...) can fail with an error quoting a value.
        await this.scanForQueries(body, type);
        break;
    }
    return { result, outputs, blocks: [...new Set(this.blocks)], touchesMasked: this.touched };
  }

  /** Reasons to block recorded so far (for callers that use `relationColumns` directly). */
  recordedBlocks(): string[] {
    return [...new Set(this.blocks)];
  }

  private block(reason: string): void {
    this.blocks.push(reason);
  }

  /** A flow that blocks: record it, and pass it on (so callers see the column is opaque). */
  private opaque(reason: string): Flow {
    this.block(reason);
    return opaque(reason);
  }

  private blockCopies(outputs: OutputColumn[], what: string): void {
    for (const o of outputs) {
      if (!isClear(o.flow) && o.flow.t !== 'opaque') {
        this.block(`${what} would copy masked column ${describe(o.flow)} out of the masked result`);
      }
    }
  }

  private async nested(query: unknown): Promise<void> {
    await this.nestedOutputs(query);
  }

  private async nestedOutputs(query: unknown): Promise<OutputColumn[]> {
    const u = unwrap(query);
    if (u === undefined) return [];
    const inner = await new LineageAnalyzer(this.opts, this.depth).statement(query);
    for (const b of inner.blocks) this.block(b);
    if (inner.touchesMasked) this.touched = true;
    return inner.outputs;
  }

  /** Unknown statement types: check any query they embed. */
  private async scanForQueries(body: Node, statementType: string): Promise<void> {
    const visit = async (node: Node, isRangeVar: boolean): Promise<void> => {
      if (isRangeVar && typeof node.relname === 'string') {
        const shape = await this.relationShape(node.relname, typeof node.schemaname === 'string' ? node.schemaname : undefined);
        const masked = shape.cols.filter((c) => !isClear(c.flow) && c.flow.t !== 'opaque');
        if (masked.length > 0) this.block(`${statementType} on ${relName(node)}, which has masked columns (${masked.map((c) => describe(c.flow)).join(', ')}): its errors can quote values`);
        return;
      }
      for (const v of Object.values(node)) {
        for (const item of list(v)) {
          if (item === null || typeof item !== 'object') continue;
          const u = unwrap(item);
          if (u === undefined) await visit(item as Node, 'relname' in (item as Node));
          else if (u[0] === 'SelectStmt') this.blockCopies(await this.select(u[1], undefined), statementType);
          else if (['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].includes(u[0])) await this.write(u[0], u[1]);
          else await visit(u[1], u[0] === 'RangeVar');
        }
      }
    };
    await visit(body, false);
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  private async withClause(body: Node, scope: Scope): Promise<void> {
    const withClause = body.withClause as Node | undefined;
    if (!withClause) return;
    const recursive = withClause.recursive === true;
    for (const c of list(withClause.ctes)) {
      const cte = unwrap(c)?.[1];
      if (!cte) continue;
      const name = String(cte.ctename);
      const aliases = names(cte.aliascolnames);
      if (recursive) scope.ctes.set(name, 'pending');
      let outs = await this.cteQuery(cte.ctequery, scope);
      if (recursive) {
        // Iterate to a fixed point: the recursive term may feed masked values back into any column.
        for (let i = 0; i < 4; i++) {
          scope.ctes.set(name, toShape(outs, aliases));
          const again = await this.cteQuery(cte.ctequery, scope);
          const merged = outs.map((o, k) => ({ ...o, flow: union([o.flow, again[k]?.flow ?? CLEAR]) }));
          if (JSON.stringify(merged) === JSON.stringify(outs)) break;
          outs = merged;
        }
      }
      scope.ctes.set(name, toShape(outs, aliases));
    }
  }

  private async cteQuery(query: unknown, scope: Scope): Promise<OutputColumn[]> {
    const u = unwrap(query);
    if (u === undefined) return [];
    if (u[0] === 'SelectStmt') return this.select(u[1], scope);
    if (['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].includes(u[0])) return this.write(u[0], u[1], scope);
    this.block(`a WITH query of type ${u[0]} is not understood`);
    return [];
  }

  /** Output columns of a SELECT (or VALUES, or set operation). `outer` is visible for correlation and LATERAL. */
  async select(body: Node, outer: Scope | undefined): Promise<OutputColumn[]> {
    const scope = newScope(outer);
    await this.withClause(body, scope);

    let outputs: OutputColumn[];
    if (body.op !== undefined && body.op !== 'SETOP_NONE') {
      const l = await this.select(selectBody(body.larg), scope);
      const r = await this.select(selectBody(body.rarg), scope);
      outputs = zipUnion(l, r);
    } else if (body.valuesLists !== undefined) {
      let rows: OutputColumn[] | undefined;
      for (const row of list(body.valuesLists)) {
        const exprs = list(unwrap(row)?.[1].items);
        const flows: OutputColumn[] = [];
        for (let i = 0; i < exprs.length; i++) flows.push({ name: `column${i + 1}`, flow: await this.expr(exprs[i], scope) });
        rows = rows === undefined ? flows : zipUnion(rows, flows);
      }
      outputs = rows ?? [];
    } else {
      for (const item of list(body.fromClause)) {
        const shape = await this.fromItem(item, scope);
        scope.star.push(shape);
      }
      outputs = [];
      for (const t of list(body.targetList)) {
        const rt = unwrap(t)?.[1];
        if (!rt) continue;
        const val = unwrap(rt.val);
        if (val?.[0] === 'ColumnRef' && names(val[1].fields).at(-1) === '*') {
          outputs.push(...this.expandStar(names(val[1].fields), scope));
          continue;
        }
        const flow = await this.expr(rt.val, scope);
        outputs.push({ name: rt.name !== undefined ? String(rt.name) : outputName(rt.val), flow });
      }
    }
    // Everything else is evaluated for its side channels (casts, functions), not for its values:
    // filters and ordering on masked columns are allowed (see docs/masking.md).
    for (const key of ['whereClause', 'havingClause', 'limitCount', 'limitOffset']) await this.expr(body[key], scope);
    // ORDER BY, GROUP BY and DISTINCT ON may also name output columns (`ORDER BY nsp` where `nsp`
    // is an alias, or a column of a UNION): those resolve after the FROM items.
    const byOutput = newScope(scope);
    byOutput.entries.push({ ref: '?output', shape: { cols: outputs.filter((o) => !o.spread).map((o) => ({ name: o.name, flow: o.flow })) } });
    for (const key of ['groupClause', 'sortClause', 'distinctClause', 'windowClause']) {
      for (const e of list(body[key])) await this.expr(e, key === 'windowClause' ? scope : byOutput);
    }
    return outputs;
  }

  private expandStar(fields: string[], scope: Scope): OutputColumn[] {
    if (fields.length === 1) {
      const out: OutputColumn[] = [];
      for (const shape of scope.star) out.push(...shapeColumns(shape));
      return out;
    }
    const ref = fields[fields.length - 2];
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const entry = s.entries.find((e) => e.ref === ref);
      if (entry) return shapeColumns(entry.shape);
    }
    return [{ name: `${ref}.*`, flow: this.opaque(`${ref}.* refers to a relation the gateway cannot resolve`), spread: true }];
  }

  // -------------------------------------------------------------------------------------------
  // FROM items

  private async fromItem(item: unknown, scope: Scope): Promise<Shape> {
    const u = unwrap(item);
    if (u === undefined) return { cols: [] };
    const [type, body] = u;
    switch (type) {
      case 'RangeVar': {
        const shape = await this.rangeVar(body, scope);
        const alias = body.alias as Node | undefined;
        const renamed = applyAlias(shape, alias);
        scope.entries.push({ ref: alias ? String(alias.aliasname) : String(body.relname), shape: renamed });
        return renamed;
      }
      case 'RangeSubselect': {
        const sub = unwrap(body.subquery);
        const outs = sub ? await this.select(sub[1], body.lateral === true ? scope : scope.parent) : [];
        const alias = body.alias as Node | undefined;
        const shape = toShape(outs, alias ? names(alias.colnames) : []);
        scope.entries.push({ ref: alias ? String(alias.aliasname) : '?subquery', shape });
        return shape;
      }
      case 'JoinExpr': {
        const left = await this.fromItem(body.larg, scope);
        const right = await this.fromItem(body.rarg, scope);
        let using = names(body.usingClause);
        if (body.isNatural === true) {
          const rightNames = new Set(right.cols.map((c) => c.name));
          using = left.cols.map((c) => c.name).filter((n) => rightNames.has(n));
        }
        const merged = using.map((n) => ({
          name: n,
          flow: union([left.cols.find((c) => c.name === n)?.flow ?? left.open ?? CLEAR, right.cols.find((c) => c.name === n)?.flow ?? right.open ?? CLEAR]),
        }));
        const shape: Shape = {
          cols: [...merged, ...left.cols.filter((c) => !using.includes(c.name)), ...right.cols.filter((c) => !using.includes(c.name))],
          open: left.open || right.open ? union([left.open ?? CLEAR, right.open ?? CLEAR]) : undefined,
        };
        // JOIN ... USING / NATURAL compares the merged columns with =, like `l.c = r.c`.
        if (merged.length > 0) await this.operatorCheck(['='], derive(merged.map((m) => m.flow)));
        await this.expr(body.quals, scope);
        const alias = body.alias as Node | undefined;
        if (alias) {
          const renamed = applyAlias(shape, alias);
          scope.entries.push({ ref: String(alias.aliasname), shape: renamed });
          return renamed;
        }
        // USING columns are visible unqualified as the merged column.
        if (merged.length > 0) scope.entries.push({ ref: '?join', shape: { cols: merged } });
        return shape;
      }
      case 'RangeFunction':
        return this.rangeFunction(body, scope);
      case 'RangeTableSample': {
        for (const a of list(body.args)) await this.expr(a, scope);
        await this.expr(body.repeatable, scope);
        return this.fromItem(body.relation, scope);
      }
      default: {
        // XMLTABLE, JSON_TABLE, ...: their input is parsed (errors quote it) and their columns are not modelled.
        const inside = await this.exprChildren(body, scope);
        const flow = isClear(inside) ? CLEAR : this.opaque(`${type} over masked column ${describe(inside)} is not supported (parse errors can quote the value)`);
        const alias = body.alias as Node | undefined;
        const shape: Shape = { cols: [], open: flow };
        scope.entries.push({ ref: alias ? String(alias.aliasname) : `?${type}`, shape });
        return shape;
      }
    }
  }

  private async rangeVar(body: Node, scope: Scope): Promise<Shape> {
    const relname = String(body.relname);
    const schemaname = body.schemaname === undefined ? undefined : String(body.schemaname);
    if (schemaname === undefined) {
      const cte = findCte(scope, relname);
      if (cte === 'pending') return { cols: [], open: CLEAR };
      if (cte !== undefined) return cte;
    }
    return this.relationShape(relname, schemaname);
  }

  private async relationShape(relname: string, schemaname: string | undefined): Promise<Shape> {
    if (STATISTICS_RELATIONS.has(relname) && (schemaname === undefined || schemaname === 'pg_catalog')) {
      const flow = this.opaque(`reading planner statistics (${relname}) can reveal values of masked columns`);
      return { cols: [], open: flow };
    }
    let rels = await this.opts.catalog.relations(relname, schemaname);
    const session = schemaname === undefined ? this.opts.schemasOf?.(relname) : undefined;
    if (session) {
      // The session says which schema(s) the name means; pg_temp is the session's own temporary
      // schema, which the catalog shows among every session's (pg_temp_N): all of those count.
      const mine = rels.filter((r) => session.includes(r.schema) || (session.includes('pg_temp') && /^pg_temp_\d+$/.test(r.schema)));
      if (mine.length > 0) rels = mine;
    }
    if (rels.length === 0) {
      const flow = this.opaque(`relation ${schemaname ? `${schemaname}.` : ''}${relname} is not in the catalog, so its columns cannot be checked`);
      return { cols: [], open: flow };
    }
    // An unqualified name may resolve to any candidate under the session's search_path: merge them
    // by column name (a masked column in any candidate masks that name), in a plausible order.
    const ordered = [...rels].sort((a, b) => schemaRank(a.schema) - schemaRank(b.schema) || a.schema.localeCompare(b.schema));
    const shapes = await Promise.all(ordered.map((r) => this.relationColumns(r)));
    if (shapes.length === 1) return shapes[0];
    const first = shapes[0];
    return {
      cols: first.cols.map((c) => ({ name: c.name, flow: union(shapes.map((s) => s.cols.find((x) => x.name === c.name)?.flow ?? CLEAR)) })),
      open: derive(shapes.slice(1).flatMap((s) => s.cols.map((c) => c.flow))),
    };
  }

  /** Columns of a relation with their flows; views and materialized views are analysed (cached). */
  async relationColumns(rel: CatalogRelation): Promise<Shape> {
    // A mask names a column of this relation or of an ancestor (a partitioned parent, an
    // inheritance parent): reading a partition directly is reading the masked table.
    const owners = [rel, ...(rel.ancestors ?? [])];
    const ownMask = (column: string): Flow => {
      for (const o of owners) {
        const key = `${o.schema}.${o.name}.${column}`.toLowerCase();
        if (this.masked.has(key)) return direct(key);
      }
      return CLEAR;
    };
    let shape: Shape;
    if (rel.kind === 'v' || rel.kind === 'm') {
      const view = await this.view(rel);
      for (const b of view.blocks) this.block(b);
      if (view.touchesMasked) this.touched = true;
      shape = {
        cols: rel.columns.map((c, i) => ({
          name: c.name,
          flow: union([view.columns[i] ?? this.opaque(`view ${rel.schema}.${rel.name} has more columns than its definition yields`), ownMask(c.name)]),
        })),
      };
    } else shape = { cols: rel.columns.map((c) => ({ name: c.name, flow: ownMask(c.name) })) };
    if (shape.cols.some((c) => !isClear(c.flow))) this.touched = true;
    return shape;
  }

  private view(rel: CatalogRelation): Promise<ViewLineage> {
    const key = `${rel.oid}:${rel.schema}.${rel.name}:${[...this.masked].sort().join(',')}`;
    const cache = this.opts.cache;
    const hit = cache?.get(key);
    if (hit) return hit;
    const p = this.analyzeView(rel);
    cache?.set(key, p);
    // A failed lookup must not stay cached (the next statement retries).
    p.catch(() => cache?.delete(key));
    return p;
  }

  private async analyzeView(rel: CatalogRelation): Promise<ViewLineage> {
    const what = `view ${rel.schema}.${rel.name}`;
    if (this.depth >= MAX_VIEW_DEPTH) return { columns: [], blocks: [`${what}: views nested deeper than ${MAX_VIEW_DEPTH} levels are not followed`], touchesMasked: true };
    if (rel.viewDefinition === undefined) return { columns: [], blocks: [`${what}: its definition is not readable, so its columns cannot be checked`], touchesMasked: true };
    const parsed = this.opts.parse(rel.viewDefinition);
    if (parsed.length !== 1 || parsed[0].ast === null) return { columns: [], blocks: [`${what}: its definition does not parse`], touchesMasked: true };
    const inner = await new LineageAnalyzer({ ...this.opts, schemasOf: undefined }, this.depth + 1).statement(parsed[0].ast);
    if (inner.outputs.some((o) => o.spread)) return { columns: [], blocks: [`${what}: its columns cannot be matched to its definition`], touchesMasked: true };
    return { columns: inner.outputs.map((o) => o.flow), blocks: inner.blocks.map((b) => `${what}: ${b}`), touchesMasked: inner.touchesMasked };
  }

  private async rangeFunction(body: Node, scope: Scope): Promise<Shape> {
    const flows: Flow[] = [];
    let defined: string[] = [];
    for (const f of list(body.functions)) {
      const pair = list(unwrap(f)?.[1].items);
      flows.push(await this.expr(pair[0], scope));
      // The column definition list of ROWS FROM items (an empty node when absent).
      for (const cd of list(pair[1])) {
        const def = unwrap(cd);
        if (def?.[0] === 'ColumnDef') defined.push(String(def[1].colname));
      }
    }
    for (const cd of list(body.coldeflist)) {
      const def = unwrap(cd);
      if (def?.[0] === 'ColumnDef') defined.push(String(def[1].colname));
    }
    // Every column of a set-returning function is computed from all its arguments.
    const flow = derive(flows);
    const alias = body.alias as Node | undefined;
    const aliasCols = alias ? names(alias.colnames) : [];
    if (aliasCols.length > defined.length) defined = aliasCols;
    else aliasCols.forEach((n, i) => (defined[i] = n));
    let shape: Shape;
    if (defined.length > 0) shape = { cols: defined.map((n) => ({ name: n, flow })) };
    else if (list(body.functions).length === 1 && alias) {
      // A scalar function's single column takes the alias as its name; a composite one is open.
      shape = { cols: [{ name: String(alias.aliasname), flow }], open: flow };
    } else shape = { cols: [], open: flow };
    if (body.ordinality === true && shape.open === undefined) shape.cols.push({ name: 'ordinality', flow: CLEAR });
    scope.entries.push({ ref: alias ? String(alias.aliasname) : functionName(body) ?? '?function', shape });
    return shape;
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  private async write(type: string, body: Node, outer?: Scope): Promise<OutputColumn[]> {
    // Triggers, constraints and rules run code the analysis does not see (a trigger may read a
    // masked column and raise it in an error or notice), and a constraint error quotes the failing
    // row (`Failing row contains (...)`): a write's error text is never trusted (`touched`: the
    // gateway withholds it), so an UPDATE, DELETE, MERGE or ON CONFLICT DO UPDATE of a table with
    // masked columns runs, its RETURNING masked like a SELECT's outputs, its errors withheld.
    this.touched = true;
    const scope = newScope(outer);
    await this.withClause(body, scope);
    const relation = unwrapRel(body.relation);
    const target = relation ? await this.rangeVar(relation, scope) : { cols: [] };
    const targetName = relation ? relName(relation) : '?';
    const alias = relation?.alias as Node | undefined;
    const targetEntry: Entry = { ref: alias ? String(alias.aliasname) : String(relation?.relname ?? '?'), shape: target };

    if (type === 'InsertStmt') {
      const source = unwrap(body.selectStmt);
      if (source?.[0] === 'SelectStmt') this.blockCopies(await this.select(source[1], scope), `INSERT INTO ${targetName}`);
      const conflict = body.onConflictClause as Node | undefined;
      if (conflict) {
        const s = newScope(scope);
        s.entries.push(targetEntry, { ref: 'excluded', shape: target });
        s.star.push(target);
        await this.expr(conflict.whereClause, s);
        if (conflict.action === 'ONCONFLICT_UPDATE') {
          await this.assignments(list(conflict.targetList), s, targetName);
        }
      }
    } else {
      for (const item of list(type === 'MergeStmt' ? body.sourceRelation : type === 'UpdateStmt' ? body.fromClause : body.usingClause)) {
        scope.star.push(await this.fromItem(item, scope));
      }
      scope.entries.push(targetEntry);
      if (type === 'MergeStmt') {
        await this.expr(body.joinCondition, scope);
        for (const w of list(body.mergeWhenClauses)) {
          const clause = unwrap(w)?.[1];
          if (!clause) continue;
          await this.expr(clause.condition, scope);
          await this.assignments(list(clause.targetList), scope, targetName);
          for (const v of list(clause.values)) {
            const f = await this.expr(v, scope);
            if (!isClear(f) && f.t !== 'opaque') this.block(`MERGE into ${targetName} would write masked column ${describe(f)}`);
          }
        }
      } else {
        await this.assignments(list(body.targetList), scope, targetName);
        await this.expr(body.whereClause, scope);
      }
    }

    const returning = list(body.returningList ?? (body.returningClause as Node | undefined)?.exprs);
    if (returning.length === 0) return [];
    const rs = newScope(scope);
    rs.entries.push(targetEntry);
    rs.star.push(target);
    const outputs: OutputColumn[] = [];
    for (const t of returning) {
      const rt = unwrap(t)?.[1];
      if (!rt) continue;
      const val = unwrap(rt.val);
      if (val?.[0] === 'ColumnRef' && names(val[1].fields).at(-1) === '*') {
        outputs.push(...(names(val[1].fields).length === 1 ? shapeColumns(target) : this.expandStar(names(val[1].fields), rs)));
        continue;
      }
      outputs.push({ name: rt.name !== undefined ? String(rt.name) : outputName(rt.val), flow: await this.expr(rt.val, rs) });
    }
    return outputs;
  }

  private async assignments(targets: unknown[], scope: Scope, targetName: string): Promise<void> {
    for (const t of targets) {
      const rt = unwrap(t)?.[1];
      if (!rt) continue;
      const f = await this.expr(rt.val, scope);
      if (!isClear(f) && f.t !== 'opaque') this.block(`writing ${describe(f)} into ${targetName}.${String(rt.name)} would copy a masked value where it is not masked`);
    }
  }

  private async copy(body: Node): Promise<void> {
    if (body.is_from === true) return; // client → server: nothing leaves the database
    const relation = unwrapRel(body.relation);
    let outputs: OutputColumn[] = [];
    if (relation) {
      const shape = await this.relationShape(String(relation.relname), relation.schemaname === undefined ? undefined : String(relation.schemaname));
      const wanted = names(body.attlist);
      outputs = shapeColumns(shape).filter((c) => wanted.length === 0 || wanted.includes(c.name));
    } else {
      outputs = await this.nestedOutputs(body.query);
    }
    for (const o of outputs) {
      if (!isClear(o.flow) && o.flow.t !== 'opaque') {
        this.block(`COPY ... TO would send masked column ${describe(o.flow)} outside result masking (COPY data is not masked; use SELECT)`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  async expr(node: unknown, scope: Scope): Promise<Flow> {
    if (node === undefined || node === null) return CLEAR;
    if (Array.isArray(node)) return derive(await Promise.all(node.map((n) => this.expr(n, scope))));
    const u = unwrap(node);
    if (u === undefined) return CLEAR;
    const [type, b] = u;
    switch (type) {
      case 'A_Const':
      case 'ParamRef':
      case 'SQLValueFunction':
      case 'SetToDefault':
      case 'CurrentOfExpr':
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'A_Star':
      case 'TypeName':
        return CLEAR;
      case 'ColumnRef':
        return this.columnRef(names(b.fields), scope);
      case 'ResTarget':
        return this.expr(b.val, scope);
      case 'TypeCast': {
        const f = await this.expr(b.arg, scope);
        if (isClear(f) || f.t === 'opaque') return f;
        const tn = (b.typeName ?? {}) as Node;
        const typeName = names(tn.names).at(-1) ?? '?';
        if (!SAFE_CAST_TYPES.has(typeName) || list(tn.arrayBounds).length > 0) {
          return this.opaque(`cast of masked column ${describe(f)} to ${typeName}${list(tn.arrayBounds).length > 0 ? '[]' : ''}: an invalid value would be quoted in the error message`);
        }
        return derive([f]);
      }
      case 'FuncCall':
        return this.funcCall(b, scope);
      case 'A_Expr':
        return this.aExpr(b, scope);
      case 'BoolExpr':
      case 'CoalesceExpr':
      case 'MinMaxExpr':
      case 'RowExpr':
        return derive([await this.expr(b.args, scope)]);
      case 'A_ArrayExpr':
        return derive([await this.expr(b.elements, scope)]);
      case 'NullTest':
      case 'BooleanTest':
      case 'CollateClause':
      case 'NamedArgExpr':
        return derive([await this.expr(b.arg, scope)]);
      case 'CaseExpr': {
        const flow = derive([await this.expr(b.arg, scope), await this.expr(b.args, scope), await this.expr(b.defresult, scope)]);
        // `CASE x WHEN v ...` compares with the operator = that `x = v` would resolve to.
        return b.arg === undefined || flow.t === 'opaque' ? flow : this.operatorCheck(['='], flow);
      }
      case 'CaseWhen':
        return derive([await this.expr(b.expr, scope), await this.expr(b.result, scope)]);
      case 'A_Indirection':
        return this.indirection(b, scope);
      case 'A_Indices':
        return derive([await this.expr(b.lidx, scope), await this.expr(b.uidx, scope)]);
      case 'SortBy':
        // ORDER BY x USING op calls op's function on every pair of values: checked like `x op x`.
        if (list(b.useOp).length > 0) return this.aExpr({ kind: 'AEXPR_OP', name: b.useOp, lexpr: b.node, rexpr: b.node }, scope);
        return this.expr(b.node, scope);
      case 'GroupingSet':
        return derive([await this.expr(b.content, scope)]);
      case 'GroupingFunc':
        await this.expr(b.args, scope);
        return CLEAR;
      case 'WindowDef':
        return derive([await this.expr(b.partitionClause, scope), await this.expr(b.orderClause, scope)]);
      case 'SubLink':
        return this.subLink(b, scope);
      case 'List':
        return derive([await this.expr(b.items, scope)]);
      case 'SelectStmt': {
        const outs = await this.select(b, scope);
        return derive(outs.map((o) => o.flow));
      }
      case 'XmlExpr': {
        const f = derive([await this.expr(b.args, scope), await this.expr(b.named_args, scope)]);
        if (!isClear(f) && f.t !== 'opaque' && b.op !== 'IS_XMLELEMENT' && b.op !== 'IS_XMLFOREST' && b.op !== 'IS_XMLCONCAT') {
          return this.opaque(`XML parsing of masked column ${describe(f)}: parse errors quote the value`);
        }
        return f;
      }
      default: {
        // Not modelled (SQL/JSON constructors and predicates, ...): clear only if nothing masked reaches it.
        const inside = await this.exprChildren(b, scope);
        if (isClear(inside) || inside.t === 'opaque') return inside;
        return this.opaque(`${type} over masked column ${describe(inside)} is not supported by the gateway's lineage analysis`);
      }
    }
  }

  /** The combined flow of every node inside `body`. */
  private async exprChildren(body: Node, scope: Scope): Promise<Flow> {
    const flows: Flow[] = [];
    for (const v of Object.values(body)) {
      for (const item of list(v)) {
        if (item === null || typeof item !== 'object') continue;
        // Wrapped nodes are expressions; bare structs (JsonValueExpr, JsonBehavior, ...) are searched inside.
        flows.push(unwrap(item) !== undefined ? await this.expr(item, scope) : await this.exprChildren(item as Node, scope));
      }
    }
    return derive(flows);
  }

  private async columnRef(fields: string[], scope: Scope): Promise<Flow> {
    if (fields.at(-1) === '*') {
      const cols = this.expandStar(fields, scope);
      return derive(cols.map((c) => c.flow));
    }
    if (fields.length === 1) {
      const name = fields[0];
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const hits: Flow[] = [];
        let open: Flow | undefined;
        for (const e of s.entries) {
          const col = e.shape.cols.find((c) => c.name === name);
          if (col) hits.push(col.flow);
          else if (e.shape.open) open = open ? union([open, e.shape.open]) : e.shape.open;
        }
        if (hits.length > 0) return union(hits);
        if (open) return open;
        // A bare table alias is a whole-row reference: every column, as a record.
        const entry = s.entries.find((e) => e.ref === name);
        if (entry) return wholeRow(entry.shape);
      }
      if (SYSTEM_COLUMNS.has(name)) return CLEAR;
      return this.opaque(`column ${name} cannot be resolved by the gateway`);
    }
    const [ref, name] = fields.slice(-2);
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const entry = s.entries.find((e) => e.ref === ref);
      if (!entry) continue;
      const col = entry.shape.cols.find((c) => c.name === name);
      if (col) return col.flow;
      if (entry.shape.open) return entry.shape.open;
      if (SYSTEM_COLUMNS.has(name)) return CLEAR;
      return this.opaque(`column ${ref}.${name} cannot be resolved by the gateway`);
    }
    // `t.col.f` / `col.f`: a field of a composite column. (PostgreSQL reads an unparenthesised
    // `col.f` as a table reference and fails; functional notation needs `(col).f`, or `t.f` on a
    // relation alias, which is refused above as an unresolvable column.) Checked like `(col).f`
    // all the same: resolve the longest leading column reference, then each further name.
    for (let i = 0; i + 1 < fields.length - 1; i++) {
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const entry = s.entries.find((e) => e.ref === fields[i]);
        const col = entry?.shape.cols.find((c) => c.name === fields[i + 1]);
        if (col) return this.fieldChain(col.flow, 'column', fields.slice(i + 2));
      }
    }
    return this.fieldChain(await this.columnRef([fields[0]], scope), 'column', fields.slice(1), this.wholeRowEntry(fields[0], scope));
  }

  /** The relation a bare name refers to as a whole-row value (no column of that name is visible first). */
  private wholeRowEntry(name: string, scope: Scope): Shape | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      if (s.entries.some((e) => e.shape.cols.some((c) => c.name === name) || e.shape.open)) return undefined;
      const entry = s.entries.find((e) => e.ref === name);
      if (entry) return entry.shape;
    }
    return undefined;
  }

  private entryShape(ref: string, scope: Scope): Shape | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const entry = s.entries.find((e) => e.ref === ref);
      if (entry) return entry.shape;
    }
    return undefined;
  }

  private async fieldChain(base: Flow, kind: 'row' | 'column' | 'scalar', rest: string[], composite?: Shape): Promise<Flow> {
    let flow = base;
    let k = kind;
    let shape = composite;
    for (const name of rest) {
      flow = await this.fieldOrCall(name, flow, k, shape);
      k = 'column';
      shape = undefined;
    }
    return flow;
  }

  /**
   * `(expr).name` (A_Indirection with a field name): a field of a composite value, or functional
   * notation, which PostgreSQL runs as `name(expr)` (a type name makes it a cast) when `expr` has
   * no field `name` (issue 14 item 2). Without types the gateway cannot always tell which, so:
   * a field of a relation's whole row takes that column's flow; a field of ROW(...) is derived;
   * otherwise, when functions of that name exist, it is checked as the call `name(expr)` (data
   * readers and user-defined functions block; a masked value reaches only ECHO_SAFE functions), and
   * when none exists a masked value blocks unless `name` is a text-like type (a cast to any other
   * type quotes the value in its error).
   */
  private async fieldOrCall(name: string, base: Flow, kind: 'row' | 'column' | 'scalar', composite: Shape | undefined): Promise<Flow> {
    if (base.t === 'opaque') return base;
    const field = composite?.cols.find((c) => c.name === name);
    if (field) return derive([field.flow]);
    if (kind === 'row') return derive([base]);
    if (READS_DATA.has(name)) return this.opaque(`(...).${name} is the call ${name}(...), which can read or expose data outside the result masking`);
    const candidates = await this.opts.catalog.functions(name);
    if (candidates.length === 0) {
      if (isClear(base) || SAFE_CAST_TYPES.has(name)) return derive([base]);
      return this.opaque(`(...).${name} over masked column ${describe(base)}: a field selection or a cast the gateway cannot tell apart (a cast's error quotes the value)`);
    }
    const untrusted = candidates.find((c) => !routineTrusted(c));
    if (untrusted) return this.opaque(`(...).${name} is the call ${untrusted.schema}.${name}(...), which is not known to be safe: it could read or return masked data`);
    if (isClear(base)) return CLEAR;
    const safe = ECHO_SAFE.get(name);
    if (!safe || (safe.masked !== 'any' && !safe.masked.includes(0)) || name === 'format') {
      return this.opaque(`(...).${name} is the call ${name}() on masked column ${describe(base)}: it is not known to keep the value out of error messages`);
    }
    return derive([base]);
  }

  private async indirection(b: Node, scope: Scope): Promise<Flow> {
    const arg = unwrap(b.arg);
    let flow = await this.expr(b.arg, scope);
    let kind: 'row' | 'column' | 'scalar' = arg?.[0] === 'RowExpr' ? 'row' : arg?.[0] === 'ColumnRef' ? 'column' : 'scalar';
    const fields = arg?.[0] === 'ColumnRef' ? names(arg[1].fields) : [];
    // `(t)` and `(t.*)` are t's whole row: a field of it is that column.
    let composite = fields.length === 1 ? this.wholeRowEntry(fields[0], scope) : fields.length === 2 && fields[1] === '*' ? this.entryShape(fields[0], scope) : undefined;
    for (const ind of list(b.indirection)) {
      const u = unwrap(ind);
      if (u?.[0] === 'String') {
        flow = await this.fieldOrCall(String(u[1].sval ?? ''), flow, kind, composite);
        kind = 'column';
      } else if (u?.[0] === 'A_Star') {
        flow = derive([flow]);
      } else {
        // A subscript: the element may be composite or scalar, like a column.
        flow = derive([flow, await this.expr(ind, scope)]);
        if (kind === 'row') kind = 'column';
      }
      composite = undefined;
    }
    return flow;
  }

  private async funcCall(b: Node, scope: Scope): Promise<Flow> {
    const parts = names(b.funcname);
    const fname = parts.at(-1) ?? '?';
    const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
    // Every input whose value can reach the result counts as an argument: the direct arguments
    // (also of window functions), the aggregate's ORDER BY (for WITHIN GROUP it holds the very
    // values `mode()` / `percentile_disc()` return; for `string_agg(x, ',' ORDER BY email)` it
    // decides the result), and FILTER (which rows an aggregate sees is a side channel on the
    // filtered value: counted as a flow, to be conservative). See aggregateInputs.
    const inputs = aggregateInputs(b);
    const args = list(b.args);
    const argFlows: Flow[] = [];
    for (const a of args) argFlows.push(await this.expr(a, scope));
    const argFlow = derive([...argFlows, await this.expr(inputs, scope)]);
    // The window's PARTITION BY / ORDER BY only orders and groups rows, like a query's ORDER BY /
    // GROUP BY (allowed on masked columns, docs/masking.md): checked for side channels only.
    const over = b.over as Node | undefined;
    if (over) {
      await this.expr(over.partitionClause, scope);
      await this.expr(over.orderClause, scope);
    }
    if (argFlow.t === 'opaque') return argFlow;
    const display = parts.join('.');

    if (READS_DATA.has(fname)) return this.opaque(`function ${display} can read or expose data outside the result masking`);
    const candidates = await this.opts.catalog.functions(fname);
    const relevant = schema !== undefined ? candidates.filter((c) => c.schema === schema) : candidates;
    if (relevant.length === 0) return this.opaque(`function ${display} is not in the catalog`);
    // Every function of that name must be a built-in or come from an extension known to be pure:
    // the session's search_path and the argument types decide which overload runs.
    const untrusted = relevant.find((c) => !routineTrusted(c));
    if (untrusted) {
      return this.opaque(
        untrusted.extension !== undefined
          ? `function ${display} resolves to ${untrusted.schema}.${fname} of extension ${untrusted.extension}, which is not known to be safe: it could read or return masked data`
          : `function ${display} resolves to ${untrusted.schema}.${fname}, which is user-defined: the gateway cannot follow what it reads or returns`,
      );
    }

    if (isClear(argFlow)) return CLEAR;
    const safe = ECHO_SAFE.get(fname);
    if (!safe) {
      return this.opaque(`function ${display} applied to masked column ${describe(argFlow)}: it is not known to keep the value out of error messages`);
    }
    if (safe.masked !== 'any') {
      // Only some positions are known not to be quoted in an error (functions.ts): a masked value
      // anywhere else, passed by name, or spread by VARIADIC, blocks.
      const allowed = safe.masked;
      for (let i = 0; i < args.length; i++) {
        if (isClear(argFlows[i])) continue;
        const named = unwrap(args[i])?.[0] === 'NamedArgExpr';
        const spread = b.func_variadic === true && i === args.length - 1;
        if (named || spread || !allowed.includes(i)) {
          return this.opaque(`function ${display} with masked column ${describe(argFlows[i])} as argument ${i + 1}: its error messages can quote that argument`);
        }
      }
    }
    if (fname === 'format') {
      const first = argFlows[0] ?? CLEAR;
      if (!isClear(first)) return this.opaque(`format() with masked column ${describe(first)} as the format string: errors quote it`);
      // `%*s` reads a width from an argument and quotes it when it is not an integer.
      const fmt = unwrap(args[0]);
      const text = fmt?.[0] === 'A_Const' ? (fmt[1].sval as Node | undefined)?.sval : undefined;
      if (typeof text !== 'string' || text.includes('*')) {
        return this.opaque(`format() over masked column ${describe(argFlow)} needs a constant format string without *: a width argument is quoted when it is not an integer`);
      }
    }
    if (CLEAR_RESULT.has(fname)) {
      // `count(email)` says only how many values are non-NULL; `count(*) FILTER (WHERE email = ..)`
      // says how many rows hold a given value: the FILTER / ORDER BY inputs keep their flow.
      const extra = derive([await this.expr(inputs, scope)]);
      return isClear(extra) ? CLEAR : derive([extra]);
    }
    return derive([argFlow]);
  }

  private async aExpr(b: Node, scope: Scope): Promise<Flow> {
    const flow = derive([await this.expr(b.lexpr, scope), await this.expr(b.rexpr, scope)]);
    if (flow.t === 'opaque') return flow;
    const kind = String(b.kind);
    // BETWEEN is spelled as a keyword but runs >= and <= (SYMMETRIC: also the other way round).
    if (BETWEEN_KINDS.has(kind)) {
      for (const op of ['>=', '<=']) {
        const f = await this.operatorCheck([op], flow);
        if (f.t === 'opaque') return f;
      }
      return flow;
    }
    return this.operatorCheck(names(b.name), flow);
  }

  /** The catalog and error-text checks of one operator applied to operands of combined flow `flow`. */
  private async operatorCheck(op: string[], flow: Flow): Promise<Flow> {
    const opName = op.at(-1) ?? '?';
    const schema = op.length > 1 ? op[op.length - 2] : undefined;
    // Keyword forms (IN, LIKE, BETWEEN, ...) carry operator names too; check every symbol against the catalog.
    if (op.length > 0 && /^[^a-z]/.test(opName)) {
      const candidates = (await this.opts.catalog.operators(opName)).filter((c) => schema === undefined || c.schema === schema);
      if (candidates.length === 0 && schema !== undefined) return this.opaque(`operator ${op.join('.')} is not in the catalog`);
      const untrusted = candidates.find((c) => !routineTrusted(c));
      if (untrusted) return this.opaque(`operator ${opName} has a user-defined version in schema ${untrusted.schema}: the gateway cannot tell which one runs`);
    }
    // An operator is a function call too: a masked operand may reach only the operators known not
    // to quote it in an error (functions.ts, ECHO_SAFE_OPERATORS).
    if (!isClear(flow) && !ECHO_SAFE_OPERATORS.has(opName)) {
      return this.opaque(`operator ${op.join('.')} applied to masked column ${describe(flow)}: it is not known to keep the value out of error messages`);
    }
    return flow;
  }

  private async subLink(b: Node, scope: Scope): Promise<Flow> {
    const sub = unwrap(b.subselect);
    const outs = sub?.[0] === 'SelectStmt' ? await this.select(sub[1], scope) : [];
    const test = await this.expr(b.testexpr, scope);
    switch (b.subLinkType) {
      case 'EXISTS_SUBLINK':
        // Like a WHERE clause: it filters on masked values but returns none of them.
        return test.t === 'opaque' ? test : CLEAR;
      case 'EXPR_SUBLINK':
        // `(SELECT email FROM ...)` is the masked value itself.
        return outs.length === 1 ? outs[0].flow : derive(outs.map((o) => o.flow));
      case 'ANY_SUBLINK':
      case 'ALL_SUBLINK':
      case 'ROWCOMPARE_SUBLINK': {
        // `x IN (SELECT ...)`, `x op ANY/ALL (...)` compare with an operator (IN: =) like `x op y`.
        const flow = derive([test, ...outs.map((o) => o.flow)]);
        if (flow.t === 'opaque') return flow;
        const op = names(b.operName);
        return this.operatorCheck(op.length > 0 ? op : ['='], flow);
      }
      default:
        return derive([test, ...outs.map((o) => o.flow)]);
    }
  }
}

const BETWEEN_KINDS: ReadonlySet<string> = new Set(['AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM']);

/**
 * The inputs of a call besides its direct arguments whose values reach the result: the aggregate
 * ORDER BY (`agg_order`: with `agg_within_group` the ordered-set aggregate's values) and FILTER.
 */
function aggregateInputs(b: Node): unknown[] {
  return [...list(b.agg_order), ...list(b.agg_filter)];
}
