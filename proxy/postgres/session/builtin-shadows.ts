// A built-in's name is only the built-in when nothing else can answer to it. PostgreSQL resolves an
// unqualified call by overload resolution across the whole search_path: `lower(1)` runs a user's
// `public.lower(integer)` rather than `pg_catalog.lower(text)`, which would need a cast, and `1 ||
// 2` a user's `public.||(int, int)`. The classifier trusts a built-in's name (stdlib/sql/functions.ts);
// here a statement calling a trusted name that is also defined outside pg_catalog, in a schema the
// session's search_path has (any schema when the path is unknown), becomes a call of unknown effect,
// like a call of any user function (issue 14, write differential).

import type { SqlAction } from '../../../stdlib/facts.ts';

/**
 * A statement made a call here, mapped to what it was before (a `select` with its tables): the
 * policy decides both, so a rule scoped to reads (a mask) still applies to it; see proxy/enforcement/decide.ts.
 */
const ORIGINALS = new WeakMap<SqlAction, SqlAction>();

export function markShadowed(call: SqlAction, original: SqlAction): void {
  ORIGINALS.set(call, ORIGINALS.get(original) ?? original);
}

/** What this action was before it was made a call for a shadowed built-in name, or undefined. */
export function shadowedOriginal(action: SqlAction): SqlAction | undefined {
  return ORIGINALS.get(action);
}
import { EFFECTFUL_FUNCTIONS, SAFE_FUNCTIONS } from '../../../stdlib/sql/functions.ts';

/** The names of `action.functions` the classifier took for pg_catalog's built-ins (unqualified, or qualified as pg_catalog). */
export function trustedBuiltinNames(action: SqlAction): string[] {
  return action.functions.filter((f) => !f.includes('.') && (SAFE_FUNCTIONS.has(f) || EFFECTFUL_FUNCTIONS.has(f)));
}

/**
 * Why this statement's built-in names may mean other functions, or undefined. `path` is the
 * session's expanded search_path (null: unknown, so every schema counts); `outside` maps a function
 * name to the schemas outside pg_catalog defining it (undefined: the catalog could not be read).
 */
export function shadowedBuiltin(action: SqlAction, path: readonly string[] | null, outside: ReadonlyMap<string, readonly string[]> | undefined): string | undefined {
  const names = trustedBuiltinNames(action);
  if (names.length === 0) return undefined;
  if (!outside) return `the gateway cannot tell whether a function outside pg_catalog answers to ${names.join(', ')}: the call may run another function`;
  for (const name of names) {
    const schemas = (outside.get(name) ?? []).filter((s) => path === null || path.includes(s));
    if (schemas.length > 0) return `${name}() may run ${schemas.map((s) => `${s}.${name}`).join(', ')} rather than the built-in (a function of that name outside pg_catalog, on the search_path)`;
  }
  return undefined;
}

/** Trees are shared (the classifier caches them): their operators are worked out once. */
const OPERATORS = new WeakMap<object, Set<string>>();

/**
 * The operators a statement's expressions name (libpg-query's raw tree), explicit or implied:
 * `a BETWEEN b AND c` is `>=` and `<=`, `CASE x WHEN`, `IN`, `JOIN ... USING` and `x = ANY
 * (SELECT ...)` are `=`. Qualified names keep their schema (`pg_catalog.` dropped: only the
 * built-in answers to it); null when there is no tree to read (classified in the pool).
 */
export function operatorNames(ast: unknown): ReadonlySet<string> | null {
  if (ast === null || typeof ast !== 'object') return null;
  const known = OPERATORS.get(ast);
  if (known) return known;
  const out = new Set<string>();
  OPERATORS.set(ast, out);
  const addList = (list: unknown): void => {
    if (!Array.isArray(list)) return;
    const parts = list.map((x) => (x as { String?: { sval?: string } })?.String?.sval ?? '?');
    const name = parts.length === 2 && parts[0] === 'pg_catalog' ? parts[1]! : parts.join('.');
    if (/BETWEEN/.test(name)) for (const op of ['<', '>', '<=', '>=']) out.add(op);
    else out.add(name);
  };
  const seen = new Set<unknown>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const x of node) visit(x);
      return;
    }
    const o = node as Record<string, unknown>;
    const expr = o.A_Expr as { name?: unknown } | undefined;
    if (expr) addList(expr.name);
    const sub = o.SubLink as { operName?: unknown; subLinkType?: string } | undefined;
    if (sub) {
      if (Array.isArray(sub.operName)) addList(sub.operName);
      else if (sub.subLinkType === 'ANY_SUBLINK' || sub.subLinkType === 'ALL_SUBLINK') out.add('=');
    }
    const sort = o.SortBy as { useOp?: unknown } | undefined;
    if (sort?.useOp) addList(sort.useOp);
    if ((o.CaseExpr as { arg?: unknown } | undefined)?.arg) out.add('=');
    const join = o.JoinExpr as { usingClause?: unknown[]; isNatural?: boolean } | undefined;
    if (join && ((join.usingClause?.length ?? 0) > 0 || join.isNatural)) out.add('=');
    for (const v of Object.values(o)) visit(v);
  };
  visit(ast);
  return out;
}

/**
 * Why this statement's operators may be another's than pg_catalog's, or undefined: an operator
 * qualified with another schema (`OPERATOR(public.+)`), or an unqualified one that a schema of the
 * path (any, when unknown) also defines; when the tree is not at hand, any operator outside pg_catalog
 * on the path.
 */
export function shadowedOperator(ops: ReadonlySet<string> | null, path: readonly string[] | null, outside: ReadonlyMap<string, readonly string[]> | undefined): string | undefined {
  if (ops !== null && ops.size === 0) return undefined;
  for (const op of ops ?? []) if (op.includes('.')) return `the operator ${op} is not a built-in`;
  if (!outside) return `the gateway cannot tell whether an operator outside pg_catalog answers to ${[...(ops ?? ['these operators'])].join(' ')}`;
  for (const [name, schemas] of outside) {
    if (ops !== null && !ops.has(name)) continue;
    const on = schemas.filter((s) => path === null || path.includes(s));
    if (on.length > 0) return `the operator ${name} may be ${on.map((s) => `${s}.${name}`).join(', ')} rather than the built-in (an operator of that name outside pg_catalog, on the search_path)`;
  }
  return undefined;
}
