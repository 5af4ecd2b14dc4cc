// Name normalisation shared by the compiler and the reference interpreter, so both read a policy's
// column references and table globs the same way.

/** The schema a table or column reference gets when it names none (PostgreSQL's default). */
export const DEFAULT_SCHEMA = 'public';

/**
 * `table.column` or `schema.table.column` → lower-case `schema.table.column`; undefined when the
 * reference has another shape (one part, more than three, or an empty part).
 */
export function normaliseColumn(ref: string): string | undefined {
  const parts = ref.split('.');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.trim() === '' || p !== p.trim())) return undefined;
  if (parts.length === 2) parts.unshift(DEFAULT_SCHEMA);
  return parts.join('.').toLowerCase();
}

/** A table glob without a schema (no `.`) means schema `public`. */
export function qualifyTableGlob(glob: string): string {
  return glob.includes('.') ? glob : `${DEFAULT_SCHEMA}.${glob}`;
}

/** A rule's fully qualified id: `package.name`, or `name` in the root package. */
export function ruleId(pkg: string, name: string): string {
  return pkg === '' ? name : `${pkg}.${name}`;
}
