// A built-in's name is only the built-in when nothing else can answer to it. PostgreSQL resolves an
// unqualified call by overload resolution across the whole search_path: `lower(1)` runs a user's
// `public.lower(integer)` rather than `pg_catalog.lower(text)`, which would need a cast, and `1 ||
// 2` a user's `public.||(int, int)`. The classifier trusts a built-in's name (stdlib/sql/functions.ts);
// here a statement calling a trusted name that is also defined outside pg_catalog, in a schema the
// session's search_path has (any schema when the path is unknown), becomes a call of unknown effect,
// like a call of any user function (issue 14, write differential).

import type { SqlAction } from '../../../stdlib/facts.ts';
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
