// Name scopes of the lineage walk: the FROM items visible to an expression, their columns and
// flows, CTEs, and the helpers that turn output columns into the shape of a FROM item and back.

import type { OutputColumn } from './analyze.ts';
import { derive, union, type Flow } from './flow.ts';
import { names, type Node } from './ast-access.ts';

/** Columns of a FROM item. `open` means its column list is unknown (a function without a column definition list). */
export interface Shape {
  cols: { name: string; flow: Flow }[];
  open?: Flow;
}

export interface Entry {
  /** The name it is referred to by: the alias, else the relation name. */
  ref: string;
  shape: Shape;
}

export interface Scope {
  entries: Entry[];
  /** Shapes for `*` expansion, one per top-level FROM item, in order. */
  star: Shape[];
  ctes: Map<string, Shape | 'pending'>;
  parent?: Scope;
}

export function newScope(parent?: Scope): Scope {
  return { entries: [], star: [], ctes: new Map(), parent };
}

export function findCte(scope: Scope | undefined, name: string): Shape | 'pending' | undefined {
  for (let s = scope; s; s = s.parent) {
    const found = s.ctes.get(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A whole-row reference (`SELECT c FROM customers c`): every column, as one record value. */
export function wholeRow(shape: Shape): Flow {
  const flows = shape.cols.map((c) => c.flow);
  if (shape.open !== undefined) flows.push(shape.open);
  return derive(flows);
}

/** Plausible search_path order for merging same-named relations (pg_temp, pg_catalog, public, others). */
export function schemaRank(schema: string): number {
  if (schema.startsWith('pg_temp')) return 0;
  if (schema === 'pg_catalog') return 1;
  if (schema === 'public') return 2;
  return 3;
}

/** `FROM t AS a(x, y)`: rename the first columns. */
export function applyAlias(shape: Shape, alias: Node | undefined): Shape {
  const cols = alias ? names(alias.colnames) : [];
  if (cols.length === 0) return shape;
  return { cols: shape.cols.map((c, i) => ({ name: cols[i] ?? c.name, flow: c.flow })), open: shape.open };
}

/** A subquery's or CTE's outputs as a FROM item (spreads become the open part). */
export function toShape(outs: OutputColumn[], aliases: string[]): Shape {
  const fixed = outs.filter((o) => !o.spread);
  const spreads = outs.filter((o) => o.spread);
  return {
    cols: fixed.map((o, i) => ({ name: aliases[i] ?? o.name, flow: o.flow })),
    open: spreads.length > 0 ? union(spreads.map((s) => s.flow)) : undefined,
  };
}

/** A FROM item's columns as `*` expands them. */
export function shapeColumns(shape: Shape): OutputColumn[] {
  const out: OutputColumn[] = shape.cols.map((c) => ({ name: c.name, flow: c.flow }));
  if (shape.open !== undefined) out.push({ name: '*', flow: shape.open, spread: true });
  return out;
}

/** Position-wise union of two branches of a set operation (or of VALUES rows). */
export function zipUnion(l: OutputColumn[], r: OutputColumn[]): OutputColumn[] {
  if (l.some((o) => o.spread) || r.some((o) => o.spread) || l.length !== r.length) {
    const all = union([...l, ...r].map((o) => o.flow));
    return [{ name: '*', flow: all, spread: true }];
  }
  return l.map((o, i) => ({ name: o.name, flow: union([o.flow, r[i].flow]) }));
}
