// The lineage Catalog over the upstream's own system catalogs (pg_class, pg_attribute,
// pg_namespace, pg_proc, pg_operator), read through a dedicated connection with the gateway's
// upstream credentials. Answers are cached for `ttlMs` (default 5 s) so a busy session costs no
// extra round trips, while DDL (a replaced view, a new column) is seen within the TTL; `invalidate`
// drops the cache at once (the session calls it after DDL it forwarded). DDL run elsewhere (a
// DBA's migration) is seen at once too where the database has hoop's event trigger
// (CATALOG_TRIGGER_SQL): the connection LISTENs on CATALOG_CHANNEL, which the trigger notifies when
// a DDL transaction commits. Empty answers are never cached: a table created a moment ago must not
// stay "unknown".

import pg from 'pg';
import type { Catalog, CatalogRelation, CatalogRoutine } from '../../stdlib/lineage/index.ts';

export interface PgCatalogOptions {
  connection: pg.ClientConfig;
  ttlMs?: number;
  /** Called when the cache was dropped because the database said its catalog changed. */
  onChange?: () => void;
}

/** The channel hoop's event trigger notifies on; the catalog connection listens on it. */
export const CATALOG_CHANNEL = 'hoop_catalog';

/**
 * Optional, installed by a superuser in each upstream database whose DDL may happen outside the
 * gateway: every committed DDL command then tells the gateway to re-read the catalog at once.
 */
export const CATALOG_TRIGGER_SQL = `CREATE OR REPLACE FUNCTION public.hoop_catalog_changed() RETURNS event_trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${CATALOG_CHANNEL}', tg_tag); END $$;
DROP EVENT TRIGGER IF EXISTS hoop_catalog_changed;
CREATE EVENT TRIGGER hoop_catalog_changed ON ddl_command_end EXECUTE FUNCTION public.hoop_catalog_changed();`;

const RELATION_SQL = `
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END AS def,
       COALESCE((SELECT json_agg(json_build_object('name', a.attname, 'attnum', a.attnum, 'typeOid', a.atttypid::int8) ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
       COALESCE((WITH RECURSIVE up(oid, depth) AS (
                   SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid
                   UNION SELECT i.inhparent, up.depth + 1 FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid WHERE up.depth < 32)
                 SELECT json_agg(json_build_object('schema', pn.nspname, 'name', p.relname) ORDER BY up.depth)
                   FROM up JOIN pg_catalog.pg_class p ON p.oid = up.oid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace), '[]') AS ancestors
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

/**
 * What reading relation ($1.$2) runs: the functions of its views' queries (the rewrite rule's
 * tree), of row security policies (their expressions) and of domain constraints checked on the
 * way. pg_depend does not list built-in (pinned) functions, so the stored expression trees are
 * read as well (FuncExpr, Aggref, WindowFunc, and operators by their function); an operator or a
 * cast of pg_catalog is PostgreSQL's own arithmetic or conversion and runs nothing else. A table's
 * policies count whether or not row security is enabled: `ALTER TABLE ... ENABLE ROW LEVEL
 * SECURITY` in the open transaction is not in the committed catalog this connection reads.
 */
const RELATION_FUNCTIONS_SQL = `
WITH RECURSIVE
  objects(owner, classid, objid, tree) AS NOT MATERIALIZED (
    SELECT r.ev_class, 'pg_catalog.pg_rewrite'::regclass, r.oid, r.ev_action::text FROM pg_catalog.pg_rewrite r
      JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
      JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace AND vn.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT p.polrelid, 'pg_catalog.pg_policy'::regclass, p.oid, COALESCE(p.polqual::text, '') || ' ' || COALESCE(p.polwithcheck::text, '')
      FROM pg_catalog.pg_policy p
    UNION ALL
    SELECT c.contypid, 'pg_catalog.pg_constraint'::regclass, c.oid, COALESCE(c.conbin::text, '') FROM pg_catalog.pg_constraint c WHERE c.contypid <> 0),
  reached(oid, depth) AS (
    SELECT c.oid, 0 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relname = $2 AND (CASE WHEN $1 = 'pg_temp' THEN n.nspname ~ '^pg_temp_' ELSE n.nspname = $1 END)
    UNION SELECT d.refobjid, r.depth + 1 FROM reached r JOIN objects o ON o.owner = r.oid
      JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid
     WHERE d.refclassid IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_type'::regclass) AND d.refobjid <> r.oid AND r.depth < 32),
  mine AS MATERIALIZED (SELECT o.* FROM objects o WHERE o.owner IN (SELECT oid FROM reached)),
  operators(opr) AS (
    SELECT d.refobjid FROM mine o JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass
    UNION SELECT m[1]::oid FROM mine o, regexp_matches(o.tree, ':(?:opno|eqop|sortop) ([0-9]+)', 'g') m
    UNION SELECT x::oid FROM mine o, regexp_matches(o.tree, ':opnos [(]o ([0-9 ]+)[)]', 'g') m, unnest(string_to_array(m[1], ' ')) x WHERE x <> ''),
  called(fn) AS (
    SELECT d.refobjid FROM mine o JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
    UNION SELECT m[1]::oid FROM mine o, regexp_matches(o.tree, ':(?:funcid|aggfnoid|winfnoid) ([0-9]+)', 'g') m
    UNION SELECT p.oprcode FROM operators x JOIN pg_catalog.pg_operator p ON p.oid = x.opr
     WHERE p.oprnamespace <> 'pg_catalog'::regnamespace)
SELECT DISTINCT n.nspname AS schema, p.proname AS name FROM called c
  JOIN pg_catalog.pg_proc p ON p.oid = c.fn JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE NOT (n.nspname = 'pg_catalog' AND EXISTS (SELECT 1 FROM pg_catalog.pg_cast k WHERE k.castfunc = p.oid))
 ORDER BY 1, 2`;

const ROUTINE_TABLES = {
  function: { table: 'pg_proc', name: 'proname', namespace: 'pronamespace' },
  operator: { table: 'pg_operator', name: 'oprname', namespace: 'oprnamespace' },
} as const;

interface RelationRow {
  oid: string;
  schema: string;
  name: string;
  kind: string;
  def: string | null;
  columns: { name: string; attnum: number; typeOid: number }[];
  ancestors: { schema: string; name: string }[];
}

export class PgCatalog implements Catalog {
  private client: Promise<pg.Client> | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttlMs: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: PgCatalogOptions) {
    this.ttlMs = options.ttlMs ?? 5_000;
  }

  relations(name: string, schema?: string): Promise<CatalogRelation[]> {
    // pg_temp means the *session's* temporary schema, which this connection cannot name: match any.
    const bySchema = schema === undefined ? '' : schema === 'pg_temp' ? ` AND n.nspname LIKE 'pg\\_temp\\_%'` : ` AND n.nspname = $2`;
    const sql = `${RELATION_SQL} AND c.relname = $1${bySchema}`;
    const params = schema === undefined || schema === 'pg_temp' ? [name] : [name, schema];
    return this.cached(`rel:${schema ?? ''}:${name}`, async () => (await this.query<RelationRow>(sql, params)).map(toRelation));
  }

  relationByOid(oid: number): Promise<CatalogRelation | undefined> {
    return this.cached(`oid:${oid}`, async () => {
      const rows = await this.query<RelationRow>(`${RELATION_SQL} AND c.oid = $1::int8::oid`, [oid]);
      return rows.length === 0 ? undefined : toRelation(rows[0]);
    });
  }

  functions(name: string): Promise<CatalogRoutine[]> {
    return this.cached(`fn:${name}`, () => this.routines(ROUTINE_TABLES.function, name));
  }

  operators(name: string): Promise<CatalogRoutine[]> {
    return this.cached(`op:${name}`, () => this.routines(ROUTINE_TABLES.operator, name));
  }

  /**
   * For each name, the schemas holding a relation of that name (any kind: a sequence or an index
   * shadows a table of the same name just as well) that this role may use (USAGE; the server skips
   * other schemas of the search_path). Temporary schemas are left out: the session's own temporary
   * relations are tracked by the session.
   */
  async relationSchemas(names: readonly string[], deps?: unknown[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const answers = await Promise.all(
      names.map((name) =>
        this.cached(`relns:${name}`, deps, async () =>
          (
            await this.query<{ schema: string }>(
              `SELECT n.nspname AS schema FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = $1 AND n.nspname !~ '^pg_(toast_)?temp_' AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')`,
              [name],
            )
          ).map((r) => r.schema),
        ),
      ),
    );
    names.forEach((name, i) => out.set(name, answers[i]!));
    return out;
  }

  /**
   * For each `schema.name`, the relations reading it reads as well: a view's base relations (its
   * rewrite rule's dependencies, through nested views) and the inheritance or partition ancestors
   * of a table (through the views' bases too). `pg_temp` matches every session's temporary schema.
   */
  async relationSources(qualified: readonly string[], deps?: unknown[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const answers = await Promise.all(
      qualified.map((q) => {
        const dot = q.indexOf('.');
        const schema = q.slice(0, dot);
        const name = q.slice(dot + 1);
        // Wrapped: "no sources" (most tables) is an answer worth caching too.
        return this.cached(`relsrc:${q}`, deps, async () => ({
          sources: (
            await this.query<{ q: string }>(
              `WITH RECURSIVE
                 edges(child, parent) AS (
                   SELECT r.ev_class, d.refobjid FROM pg_catalog.pg_rewrite r
                     JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
                    WHERE d.refobjid <> r.ev_class
                   UNION ALL SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i),
                 up(oid, depth) AS (
                   SELECT c.oid, 0 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relname = $2 AND (CASE WHEN $1 = 'pg_temp' THEN n.nspname ~ '^pg_temp_' ELSE n.nspname = $1 END)
                   UNION SELECT e.parent, up.depth + 1 FROM up JOIN edges e ON e.child = up.oid WHERE up.depth < 32)
               SELECT DISTINCT n.nspname || '.' || c.relname AS q FROM up JOIN pg_catalog.pg_class c ON c.oid = up.oid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE up.depth > 0 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
              [schema, name],
            )
          ).map((r) => r.q.replace(/^pg_temp_\d+\./, 'pg_temp.')),
        }));
      }),
    );
    qualified.forEach((q, i) => out.set(q, answers[i]!.sources));
    return out;
  }

  /**
   * For each `schema.name`, the functions reading it runs: those its view query calls (the view's
   * rewrite rule's dependencies, an operator by its function), through nested views, and those the
   * row security policies of a table call (enabled or not: see RELATION_FUNCTIONS_SQL), for the
   * relation itself and every relation reached through views and policies. Reading a materialized
   * view runs nothing, but its rows are what its query's functions returned when it was refreshed:
   * they count as called too (a matview over a user function that reads a masked table is that
   * table's data, and no table scope sees it otherwise). Views of pg_catalog and
   * information_schema (initdb's own, superuser-owned) are not looked into. `pg_temp` matches every session's temporary schema.
   */
  async relationFunctions(qualified: readonly string[], deps?: unknown[]): Promise<Map<string, { schema: string; name: string }[]>> {
    const out = new Map<string, { schema: string; name: string }[]>();
    const answers = await Promise.all(
      qualified.map((q) => {
        const dot = q.indexOf('.');
        return this.cached(`relfn:${q}`, deps, async () => ({
          functions: await this.query<{ schema: string; name: string }>(RELATION_FUNCTIONS_SQL, [q.slice(0, dot), q.slice(dot + 1)]),
        }));
      }),
    );
    qualified.forEach((q, i) => out.set(q, answers[i]!.functions));
    return out;
  }

  /** Every table whose planner statistics this role may read (pg_stats shows a column it may SELECT). */
  statisticsTables(deps?: unknown[]): Promise<string[]> {
    return this.cached('stats-tables', deps, async () =>
      (
        await this.query<{ q: string }>(
          `SELECT n.nspname || '.' || c.relname AS q FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm', 'f') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_(toast_)?temp_'
              AND n.nspname <> 'pg_toast' AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT')`,
          [],
        )
      ).map((r) => r.q),
    );
  }

  /** Schemas this role may use (USAGE), temporary ones excepted. */
  usableSchemas(deps?: unknown[]): Promise<string[]> {
    return this.cached('usable-schemas', deps, async () =>
      (
        await this.query<{ schema: string }>(
          `SELECT nspname AS schema FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_' AND pg_catalog.has_schema_privilege(oid, 'USAGE')`,
          [],
        )
      ).map((r) => r.schema),
    );
  }

  /**
   * Every function name defined outside pg_catalog, with the schemas defining it: a call of a
   * built-in's name may resolve to one of these instead (overload resolution picks the best match
   * of argument types across the whole search_path). Members of an extension owned by a superuser
   * (citext's `translate(citext, ...)`, an extension's `=`) are left out: no role below the
   * superuser wrote them (an extension's owner may add its own function to it, but that one is
   * the owner's, not a superuser's). Always cached, even when empty (one query per TTL, not per
   * statement); DDL through the gateway or hoop's event trigger drops it at once.
   */
  async routineNamesOutsideCatalog(kind: 'function' | 'operator', deps?: unknown[]): Promise<Map<string, string[]>> {
    const t = ROUTINE_TABLES[kind];
    const owner = kind === 'function' ? 'proowner' : 'oprowner';
    const answer = await this.cached(`outside:${kind}`, deps, async () => ({
      rows: await this.query<{ name: string; schemas: string[] }>(
        `SELECT r.${t.name} AS name, array_agg(DISTINCT n.nspname::text) AS schemas
           FROM pg_catalog.${t.table} r JOIN pg_catalog.pg_namespace n ON n.oid = r.${t.namespace}
          WHERE n.nspname <> 'pg_catalog'
            AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.${t.table}'::pg_catalog.regclass AND d.objid = r.oid AND d.deptype = 'e')
                     AND COALESCE((SELECT a.rolsuper FROM pg_catalog.pg_roles a WHERE a.oid = r.${owner}), false))
          GROUP BY r.${t.name}`,
        [],
      ),
    }));
    return outsideMap(answer);
  }

  /** The function with this OID (what a FunctionCall message names), or undefined. */
  functionByOid(oid: number): Promise<{ schema: string; name: string; argTypes: number[] } | undefined> {
    return this.cached(`fnoid:${oid}`, async () => {
      const rows = await this.query<{ schema: string; name: string; arg_types: string }>(
        `SELECT n.nspname AS schema, p.proname AS name, array_to_string(p.proargtypes::pg_catalog.oid[], ',') AS arg_types
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = $1::int8::oid`,
        [oid],
      );
      const r = rows[0];
      return r && { schema: r.schema, name: r.name, argTypes: r.arg_types === '' ? [] : r.arg_types.split(',').map(Number) };
    });
  }

  /** Schemas (and owning extension) of every function or operator called `name`. */
  private async routines(t: { table: string; name: string; namespace: string }, name: string): Promise<CatalogRoutine[]> {
    const rows = await this.query<{ schema: string; extension: string | null }>(
      `SELECT DISTINCT n.nspname AS schema, e.extname AS extension
         FROM pg_catalog.${t.table} r JOIN pg_catalog.pg_namespace n ON n.oid = r.${t.namespace}
         LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.${t.table}'::regclass AND d.objid = r.oid AND d.deptype = 'e'
         LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
        WHERE r.${t.name} = $1`,
      [name],
    );
    return rows.map((r) => (r.extension === null ? { schema: r.schema } : { schema: r.schema, extension: r.extension }));
  }

  invalidate(): void {
    this.cache.clear();
  }

  /**
   * Whether every answer behind these tokens (pushed onto a `deps` array by the methods taking
   * one) is still the cached answer: not expired, not invalidated, not an empty or failed answer
   * (those are dropped, so they are asked again). A caller that kept what it worked out from the
   * answers may reuse it while this holds: asking again would give the same answers.
   */
  fresh(deps: readonly unknown[]): boolean {
    const now = Date.now();
    for (const d of deps) {
      const e = d as CacheEntry;
      if (this.cache.get(e.key) !== e || now - e.at >= this.ttlMs) return false;
    }
    return true;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.then((c) => c.end()).catch(() => undefined);
  }

  private cached<T>(key: string, deps: unknown[] | undefined, load: () => Promise<T>): Promise<T>;
  private cached<T>(key: string, load: () => Promise<T>): Promise<T>;
  private cached<T>(key: string, a: unknown[] | undefined | (() => Promise<T>), b?: () => Promise<T>): Promise<T> {
    const deps = typeof a === 'function' ? undefined : a;
    const load = typeof a === 'function' ? a : b!;
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < this.ttlMs) {
      deps?.push(hit);
      return hit.value as Promise<T>;
    }
    const value = load();
    const entry: CacheEntry = { key, at: now, value };
    deps?.push(entry);
    this.cache.set(key, entry);
    value.then(
      (v) => {
        if ((Array.isArray(v) && v.length === 0) || v === undefined) this.cache.delete(key);
      },
      () => this.cache.delete(key),
    );
    return value;
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    // A catalog answer that never comes must not hold statements forever: time out (fail closed).
    const client = new pg.Client({ connectionTimeoutMillis: 10_000, query_timeout: 10_000, ...this.options.connection, application_name: 'hoop-gateway-catalog' });
    // LISTEN costs nothing where the trigger is not installed. A fresh connection may have missed
    // notifications while there was none: start from an empty cache.
    const connecting = client.connect().then(async () => {
      await client.query(`LISTEN ${CATALOG_CHANNEL}`);
      this.invalidate();
      this.options.onChange?.();
      return client;
    });
    client.on('notification', (n) => {
      if (n.channel !== CATALOG_CHANNEL) return;
      this.invalidate();
      this.options.onChange?.();
    });
    client.on('error', () => {
      if (this.client === connecting) this.client = undefined;
    });
    client.on('end', () => {
      if (this.client === connecting) this.client = undefined;
    });
    connecting.catch(() => {
      if (this.client === connecting) this.client = undefined;
    });
    this.client = connecting;
    return connecting;
  }

  /** One query at a time on the connection (the driver's implicit queue is deprecated). */
  private query<T>(sql: string, params: unknown[]): Promise<T[]> {
    const run = this.queue.then(async () => {
      const client = await this.connect();
      const result = await client.query(sql, params);
      return result.rows as T[];
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

interface CacheEntry {
  key: string;
  at: number;
  value: Promise<unknown>;
}

/** One Map per answer of routineNamesOutsideCatalog (built once, shared: read-only). */
const OUTSIDE_MAPS = new WeakMap<object, Map<string, string[]>>();
function outsideMap(answer: { rows: { name: string; schemas: string[] }[] }): Map<string, string[]> {
  let m = OUTSIDE_MAPS.get(answer);
  if (!m) OUTSIDE_MAPS.set(answer, (m = new Map(answer.rows.map((r) => [r.name, r.schemas]))));
  return m;
}

function toRelation(r: RelationRow): CatalogRelation {
  const rel: CatalogRelation = {
    oid: Number(r.oid),
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    columns: r.columns.map((c) => ({ name: c.name, attnum: Number(c.attnum), typeOid: Number(c.typeOid) })),
  };
  if (r.def !== null) rel.viewDefinition = r.def;
  if (r.ancestors.length > 0) rel.ancestors = r.ancestors;
  return rel;
}
