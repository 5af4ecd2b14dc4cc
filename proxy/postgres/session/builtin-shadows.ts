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
import { isKnownBuiltin } from '../../../stdlib/sql/functions.ts';

/** The names of `action.functions` the classifier took for pg_catalog's built-ins (unqualified, or qualified as pg_catalog). */
export function trustedBuiltinNames(action: SqlAction): readonly string[] {
  if (action.functions.length === 0) return NONE;
  let known = TRUSTED.get(action.functions);
  if (!known) TRUSTED.set(action.functions, (known = Object.freeze(action.functions.filter((f) => !f.includes('.') && isKnownBuiltin(f)))));
  return known;
}

const NONE: readonly string[] = Object.freeze([]);
/** Function lists are frozen and shared by the actions made from one walk: each is filtered once. */
const TRUSTED = new WeakMap<readonly string[], readonly string[]>();

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
    let name = '';
    let first = '';
    for (let i = 0; i < list.length; i++) {
      const part = (list[i] as { String?: { sval?: string } } | null)?.String?.sval ?? '?';
      if (i === 0) first = name = part;
      else name = `${name}.${part}`;
    }
    if (list.length === 2 && first === 'pg_catalog') name = name.slice('pg_catalog.'.length);
    if (name.includes('BETWEEN')) for (const op of ['<', '>', '<=', '>=']) out.add(op);
    else out.add(name);
  };
  // A tree from the parser's JSON: every node is reached once, without a visited set or copies.
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const x: unknown = node[i];
        if (x !== null && typeof x === 'object') visit(x);
      }
      return;
    }
    const o = node as Record<string, unknown>;
    for (const k in o) {
      const v = o[k];
      if (v === null || typeof v !== 'object') continue;
      switch (k) {
        case 'A_Expr':
          addList((v as { name?: unknown }).name);
          break;
        case 'SubLink': {
          const sub = v as { operName?: unknown; subLinkType?: string };
          if (Array.isArray(sub.operName)) addList(sub.operName);
          else if (sub.subLinkType === 'ANY_SUBLINK' || sub.subLinkType === 'ALL_SUBLINK') out.add('=');
          break;
        }
        case 'SortBy': {
          const useOp = (v as { useOp?: unknown }).useOp;
          if (useOp) addList(useOp);
          break;
        }
        case 'CaseExpr':
          if ((v as { arg?: unknown }).arg) out.add('=');
          break;
        case 'JoinExpr': {
          const join = v as { usingClause?: unknown[]; isNatural?: boolean };
          if ((join.usingClause?.length ?? 0) > 0 || join.isNatural) out.add('=');
          break;
        }
      }
      visit(v);
    }
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
