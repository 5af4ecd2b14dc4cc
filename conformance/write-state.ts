// The write differential's oracle, read directly from the server (not through the gateway): the
// database's state as text, so that a difference can be shown line by line. It covers the rows of
// every table, sequence values, the catalog objects a statement could create or change, large
// objects, prepared transactions, replication slots, whether the throwaway backend still lives,
// the cluster's next transaction id, and every lock held by another backend (session-level
// advisory locks survive the statement's transaction). Installed by the superuser in a schema of
// its own.

import pg from 'pg';
import type { Cluster } from '../testing/pg-cluster.ts';

export const ORACLE_SQL = `
CREATE SCHEMA hoop_oracle;
REVOKE ALL ON SCHEMA hoop_oracle FROM PUBLIC;
CREATE FUNCTION hoop_oracle.state(throwaway int) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
  r record;
  acc text := '';
  x text;
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hoop_oracle', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    ORDER BY 1::text
  LOOP
    IF r.relkind = 'S' THEN
      EXECUTE format('SELECT last_value || '':'' || is_called FROM %s', r.rel) INTO x;
    ELSE
      EXECUTE format('SELECT count(*) || '':'' || coalesce(md5(string_agg(x::text, '','' ORDER BY x::text)), '''') FROM %s x', r.rel) INTO x;
    END IF;
    acc := acc || 'rows ' || r.rel::text || ' = ' || x || E'\\n';
  END LOOP;
  acc := acc || coalesce((SELECT string_agg(format('relation %s.%s kind=%s acl=%s owner=%s', n.nspname, c.relname, c.relkind, c.relacl, c.relowner::regrole), E'\\n' ORDER BY 1)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'), '') || E'\\n';
  acc := acc || coalesce((SELECT string_agg(format('column %s.%s %s', a.attrelid::regclass, a.attname, a.atttypid::regtype), E'\\n' ORDER BY 1)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped), '') || E'\\n';
  acc := acc || coalesce((SELECT string_agg(format('routine %s %s acl=%s', p.oid::regprocedure, md5(p.prosrc), p.proacl), E'\\n' ORDER BY 1)
    FROM pg_proc p WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)), '') || E'\\n';
  acc := acc || 'namespaces ' || (SELECT string_agg(nspname || coalesce(nspacl::text, ''), ',' ORDER BY nspname) FROM pg_namespace) || E'\\n';
  acc := acc || 'types ' || (SELECT count(*) FROM pg_type) || E'\\n';
  acc := acc || 'triggers ' || (SELECT count(*) FROM pg_trigger) || ' rules ' || (SELECT count(*) FROM pg_rewrite)
    || ' policies ' || (SELECT count(*) FROM pg_policy) || ' event triggers ' || (SELECT count(*) FROM pg_event_trigger) || E'\\n';
  -- Comments on user objects (OIDs from FirstNormalObjectId on) and on shared objects.
  acc := acc || 'comments ' || coalesce((SELECT md5(string_agg(objoid || ':' || description, ',' ORDER BY objoid, objsubid)) FROM pg_description WHERE objoid >= 16384), '')
    || ' shared ' || coalesce((SELECT md5(string_agg(objoid || ':' || description, ',' ORDER BY objoid)) FROM pg_shdescription WHERE objoid >= 16384), '') || E'\\n';
  acc := acc || 'roles ' || (SELECT string_agg(format('%s:%s:%s:%s', rolname, rolsuper, rolcanlogin, rolcreaterole), ',' ORDER BY rolname) FROM pg_authid)
    || ' members ' || (SELECT count(*) FROM pg_auth_members) || ' role settings ' || coalesce((SELECT string_agg(setconfig::text, ',' ORDER BY setrole, setdatabase) FROM pg_db_role_setting), '') || E'\\n';
  acc := acc || 'databases ' || (SELECT string_agg(format('%s:%s:%s', datname, datacl, datconnlimit), ',' ORDER BY datname) FROM pg_database) || E'\\n';
  acc := acc || 'extensions ' || (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension) || ' default acls ' || (SELECT count(*) FROM pg_default_acl)
    || ' publications ' || (SELECT count(*) FROM pg_publication) || ' subscriptions ' || (SELECT count(*) FROM pg_subscription) || E'\\n';
  acc := acc || 'large objects ' || coalesce((SELECT string_agg(format('%s:%s', oid, lomacl), ',' ORDER BY oid) FROM pg_largeobject_metadata), '')
    || ' data ' || coalesce((SELECT md5(string_agg(loid || ':' || pageno || ':' || md5(data), ',' ORDER BY loid, pageno)) FROM pg_largeobject), '') || E'\\n';
  acc := acc || 'prepared transactions ' || coalesce((SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts), '') || E'\\n';
  acc := acc || 'replication slots ' || coalesce((SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots), '') || E'\\n';
  acc := acc || 'throwaway backend alive ' || (SELECT count(*) FROM pg_stat_activity WHERE pid = throwaway) || E'\\n';
  -- The next transaction id of the whole cluster: nothing else assigns one while the differential
  -- runs, so this sees a statement that got one even when it ended its own transaction.
  acc := acc || 'next transaction id ' || pg_snapshot_xmax(pg_current_snapshot()) || E'\\n';
  acc := acc || coalesce((SELECT string_agg(format('lock %s %s %s %s %s %s %s %s %s granted=%s', l.locktype, l.database, l.relation::regclass, l.page, l.tuple,
      l.classid, l.objid, l.objsubid, l.mode, l.granted), E'\\n' ORDER BY 1)
    FROM pg_locks l WHERE l.pid IS DISTINCT FROM pg_backend_pid()), 'no locks') || E'\\n';
  RETURN acc;
END
$f$;
CREATE FUNCTION hoop_oracle.locks_of(backend int) RETURNS text LANGUAGE sql AS $f$
  SELECT coalesce(string_agg(format('lock %s %s %s %s %s %s %s %s', l.locktype, l.relation::regclass, l.page, l.tuple, l.classid, l.objid, l.objsubid, l.mode), E'\\n' ORDER BY 1), '')
  FROM pg_locks l
  WHERE l.pid = backend AND l.locktype <> 'virtualxid' AND NOT (l.locktype = 'relation' AND l.mode = 'AccessShareLock')
    -- currval() opens its sequence as nextval() does (RowExclusiveLock): a step shows in the state.
    AND NOT (l.locktype = 'relation' AND l.mode = 'RowExclusiveLock' AND EXISTS (SELECT FROM pg_class c WHERE c.oid = l.relation AND c.relkind = 'S'))
$f$;
`;

/** The session's own settings and identity, read through the session itself. */
const SESSION_STATE = "current_user || ' ' || session_user || E'\\n' || string_agg(name || '=' || setting, E'\\n' ORDER BY name)";
export const SESSION_STATE_SQL = `SELECT ${SESSION_STATE} FROM pg_settings`;
/** The same, as an MD5 (the common case: compare, and read the text only when it changed). */
export const SESSION_STATE_HASH_SQL = `SELECT md5(${SESSION_STATE}) FROM pg_settings`;

/** Lines of `after` not in `before` (prefixed +) and the reverse (prefixed -). */
export function diffLines(before: string, after: string): string[] {
  const b = new Set(before.split('\n'));
  const a = new Set(after.split('\n'));
  return [...[...b].filter((l) => !a.has(l)).map((l) => `- ${l}`), ...[...a].filter((l) => !b.has(l)).map((l) => `+ ${l}`)];
}

/**
 * The oracle on a cluster: the superuser's connection with ORACLE_SQL installed, and a throwaway
 * backend of the application role (a statement that terminates it shows in the state).
 */
export interface WriteOracle {
  direct: pg.Client;
  throwaway: pg.Client;
  throwawayPid: number;
  /** The database's state as text (see ORACLE_SQL). */
  state(): Promise<string>;
  close(): Promise<void>;
}

export async function openWriteOracle(cluster: Cluster): Promise<WriteOracle> {
  const direct = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${cluster.port}/${cluster.appUser.database}` });
  await direct.connect();
  await direct.query(ORACLE_SQL);
  await direct.query("SET statement_timeout = '10s'");
  const throwaway = new pg.Client({ connectionString: cluster.appUser.url });
  throwaway.on('error', () => undefined);
  await throwaway.connect();
  const throwawayPid = (await throwaway.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return {
    direct,
    throwaway,
    throwawayPid,
    state: async () => (await direct.query<{ s: string }>('SELECT hoop_oracle.state($1) AS s', [throwawayPid])).rows[0]!.s,
    async close() {
      await throwaway.end().catch(() => undefined);
      await direct.end();
    },
  };
}
