// What lineage needs to know about the upstream database. Implementations (proxy/masking's
// PgCatalog over the upstream connection; plain objects in tests) do their own caching. Every
// method may reject (connection lost): the analysis then fails closed.

export interface CatalogColumn {
  name: string;
  /** pg_attribute.attnum (1-based, gaps where columns were dropped). */
  attnum: number;
  typeOid: number;
}

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign table, ... */
  kind: string;
  /** Live columns (attnum > 0, not dropped), in attnum order: what `*` expands to. */
  columns: CatalogColumn[];
  /** The query of a view or materialized view (`pg_get_viewdef`), as SQL text. */
  viewDefinition?: string;
  /** Partitioned or inheritance parents, nearest first: their column masks apply here too. */
  ancestors?: { schema: string; name: string }[];
}

export interface CatalogRoutine {
  schema: string;
  /** The extension that owns it (pg_depend), when it belongs to one. */
  extension?: string;
}

export interface Catalog {
  /**
   * Relations called `name` (exact, as stored in pg_class) in `schema`, or in every schema when
   * `schema` is undefined (an unqualified name: the analysis considers every candidate, because the
   * session's search_path may differ from the catalog connection's).
   */
  relations(name: string, schema?: string): Promise<CatalogRelation[]>;
  relationByOid(oid: number): Promise<CatalogRelation | undefined>;
  /** Schemas holding a function or procedure called `name` (any signature). */
  functions(name: string): Promise<CatalogRoutine[]>;
  /** Schemas holding an operator called `name` (any signature). */
  operators(name: string): Promise<CatalogRoutine[]>;
}

/** Schemas whose functions and operators ship with PostgreSQL (only a superuser can add to them). */
export const TRUSTED_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema']);

/**
 * Contrib extensions whose functions and operators are pure functions of their arguments (types,
 * text search, crypto digests, index support). Extensions that read storage or run SQL
 * (pageinspect, pg_walinspect, dblink, tablefunc's crosstab, postgres_fdw, adminpack, ...) are
 * absent, wherever they are installed, pg_catalog included.
 */
export const SAFE_EXTENSIONS: ReadonlySet<string> = new Set([
  'citext', 'hstore', 'pg_trgm', 'unaccent', 'fuzzystrmatch', 'btree_gin', 'btree_gist', 'uuid-ossp', 'pgcrypto',
  'intarray', 'ltree', 'cube', 'earthdistance', 'isn', 'seg', 'bloom', 'tsm_system_rows', 'tsm_system_time', 'plpgsql',
]);

/** A function or operator the analysis may see through: built-in, or from a pure extension. */
export function routineTrusted(r: CatalogRoutine): boolean {
  if (r.extension !== undefined) return SAFE_EXTENSIONS.has(r.extension);
  return TRUSTED_SCHEMAS.has(r.schema);
}
