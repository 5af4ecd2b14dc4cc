// The facts docs/facts.md promises, one case per claim.

import { beforeAll, describe, expect, it } from 'vitest';
import type { SqlAction } from '../facts.ts';
import { loadSqlClassifier } from './index.ts';

let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;
beforeAll(async () => {
  sql = await loadSqlClassifier();
});

const one = (text: string): SqlAction => {
  const actions = sql.classify(text);
  expect(actions).toHaveLength(1);
  return actions[0]!;
};

describe('kinds', () => {
  const cases: [string, string, string[]?][] = [
    ['SHOW work_mem', 'utility'],
    ['LISTEN jobs', 'utility'],
    ['UNLISTEN *', 'utility'],
    ['CHECKPOINT', 'utility'],
    ['CLOSE c', 'utility'],
    ['DEALLOCATE ALL', 'utility'],
    ['VACUUM users', 'utility'],
    ['ANALYZE users', 'utility'],
    ['VACUUM (FULL, ANALYZE) users', 'ddl'],
    ['REINDEX TABLE users', 'ddl'],
    ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'transaction'],
    ['START TRANSACTION READ ONLY', 'transaction'],
    ['COMMIT', 'transaction'],
    ['ROLLBACK TO SAVEPOINT s', 'transaction'],
    // Two-phase commit outlives the session and ends other sessions' transactions.
    ["PREPARE TRANSACTION 'x'", 'call'],
    ["COMMIT PREPARED 'x'", 'call'],
    ["ROLLBACK PREPARED 'x'", 'call'],
    ['SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'transaction'],
    ['SET CONSTRAINTS ALL DEFERRED', 'transaction'],
    ["SET statement_timeout = '5s'", 'set'],
    ["SET LOCAL work_mem = '64MB'", 'set'],
    ['RESET ALL', 'set'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'set'],
    ['DISCARD PLANS', 'set'],
    ['SET TIME ZONE UTC', 'set'],
    // search_path is followed by the gateway (proxy/postgres/session/search-path.ts); set_config of it stays grant.
    ['RESET search_path', 'set'],
    ['SET search_path = evil, public', 'set'],
    ["SET NAMES 'SJIS'", 'grant'],
    ["SET client_encoding TO 'UTF8'", 'set'],
    ['RESET client_encoding', 'set'],
    ['SET standard_conforming_strings = off', 'grant'],
    ['SET standard_conforming_strings TO on', 'set'],
    ["SELECT set_config('client_encoding', 'GBK', false)", 'grant'],
    ['SET backslash_quote = on', 'grant'],
    ['SET dynamic_library_path = \'/tmp\'', 'grant'],
    ['ALTER ROLE a RENAME TO b', 'grant'],
    ['ALTER DATABASE app OWNER TO agent', 'grant'],
    ['ALTER TABLE users FORCE ROW LEVEL SECURITY', 'grant'],
    ['SECURITY LABEL ON TABLE users IS \'secret\'', 'grant'],
    ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO public', 'grant'],
    ['REASSIGN OWNED BY a TO b', 'grant'],
    ['COMMENT ON TABLE users IS \'x\'', 'ddl'],
    ['CREATE EXTENSION pgcrypto', 'ddl'],
    ['ALTER TABLE users ADD COLUMN x int', 'ddl'],
    ['EXPLAIN SELECT * FROM users', 'explain'],
    ['EXPLAIN (ANALYZE off) DELETE FROM users', 'explain'],
    ['EXPLAIN (ANALYZE false) DELETE FROM users', 'explain'],
    ['EXPLAIN (ANALYZE 0) DELETE FROM users', 'explain'],
    ['EXPLAIN (ANALYZE 1) DELETE FROM users', 'delete'],
    ['COPY users TO STDOUT', 'copy_to'],
    ['COPY (SELECT id FROM users) TO STDOUT', 'copy_to'],
    ['COPY users (id, email) FROM STDIN', 'copy_from'],
    ['SELECT * FROM t TABLESAMPLE bernoulli(10)', 'select'],
    ['SELECT * FROM t TABLESAMPLE system_rows(10)', 'call'],
    ['SELECT * FROM t TABLESAMPLE system_rows(10)', 'call'],
    ["SELECT set_config('work_mem', '1MB', false)", 'select', ['select', 'set']],
    ["SELECT pg_catalog.set_config('ROLE', 'x', false)", 'grant', ['grant', 'select']],
    ["SELECT pg_catalog.pg_read_file('x')", 'do', ['do', 'select']],
    ["SELECT PG_READ_FILE('x')", 'do', ['do', 'select']],
    ["SELECT \"pg_catalog\".\"pg_read_file\"('x')", 'do', ['do', 'select']],
    ['SELECT lo_get(1)', 'call', ['call', 'select']],
    ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', 'merge', ['merge', 'insert']],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT pg_read_file(\'x\') $$', 'do', ['do', 'ddl', 'select']],
    ["CREATE FUNCTION f() RETURNS setof int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END $$", 'unknown'],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END $$", 'unknown'],
    ["CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT 1'; END $$", 'unknown'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN n := (SELECT count(*) FROM t WHERE evil()); RETURN n; END $$', 'call'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELEC 1 $$', 'unknown'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETRUN 1; END $$', 'unknown'],
    ['DO $$ BEGIN CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $b$ BEGIN EXECUTE \'x\'; END $b$; END $$', 'unknown'],
  ];
  it.each(cases)('%s → %s', (text, kind, effects) => {
    const a = one(text);
    expect(a.kind).toBe(kind);
    if (effects) expect(a.effects).toEqual(effects);
  });
});

describe('names', () => {
  it('resolves every spelling of an identifier as PostgreSQL does', () => {
    for (const t of ['users', 'USERS', 'Users', '"users"', 'public.users', 'PUBLIC."users"', 'U&"\\0075sers"', 'app.public.users']) {
      expect(one(`SELECT 1 FROM ${t}`).reads).toEqual(['public.users']);
    }
    expect(one('SELECT 1 FROM "Users"').reads).toEqual(['public.Users']);
    expect(one('SELECT 1 FROM "Sales"."Orders"').reads).toEqual(['Sales.Orders']);
  });

  it('puts unqualified catalog relations in pg_catalog and temp tables in pg_temp', () => {
    expect(one('SELECT * FROM pg_stat_activity').reads).toEqual(['pg_catalog.pg_stat_activity']);
    expect(one('SELECT * FROM pg_my_own_table').reads).toEqual(['public.pg_my_own_table']);
    expect(one('CREATE TEMP TABLE scratch (a int)').writes).toEqual(['pg_temp.scratch']);
  });

  it('does not report CTE names as tables, with PostgreSQL scoping', () => {
    expect(one('WITH users AS (SELECT 1 AS id) SELECT * FROM users').reads).toEqual([]);
    expect(one('WITH t AS (SELECT * FROM t) SELECT * FROM t').reads).toEqual(['public.t']);
    expect(one('WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b').reads).toEqual(['public.b']);
    expect(one('WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a').reads).toEqual([]);
    expect(one('SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x').reads).toEqual(['public.x']);
  });

  it('reports writes of DROP, TRUNCATE, LOCK, GRANT and SELECT INTO', () => {
    expect(one('DROP TABLE a, sales.b').writes).toEqual(['public.a', 'sales.b']);
    expect(one('TRUNCATE a, b').writes).toEqual(['public.a', 'public.b']);
    expect(one('LOCK TABLE a IN SHARE MODE').writes).toEqual(['public.a']);
    expect(one('GRANT SELECT ON a TO r').writes).toEqual(['public.a']);
    expect(one('SELECT * INTO b FROM a')).toMatchObject({ reads: ['public.a'], writes: ['public.b'] });
    expect(one('SELECT * FROM a FOR UPDATE')).toMatchObject({ reads: ['public.a'], writes: ['public.a'] });
    expect(one("COPY a FROM STDIN")).toMatchObject({ reads: [], writes: ['public.a'] });
  });
});

describe('columns', () => {
  it('qualifies through aliases and single-table scopes', () => {
    expect(one('SELECT email, u.id FROM users u WHERE u.team = $1').columns)
      .toEqual(['public.users.email', 'public.users.id', 'public.users.team']);
    expect(one('SELECT * FROM users u JOIN sales.orders o ON o.uid = u.id').columns)
      .toEqual(['public.users.*', 'public.users.id', 'sales.orders.*', 'sales.orders.uid']);
    expect(one('SELECT name FROM a, b').columns).toEqual(['name']);
    expect(one('SELECT x.c FROM (SELECT 1 AS c) x').columns).toEqual(['c']);
    expect(one('UPDATE users SET email = lower(email) WHERE id = 1').columns)
      .toEqual(['public.users.email', 'public.users.id']);
    expect(one('INSERT INTO users (id, email) VALUES (1, $1)').columns).toEqual(['public.users.email', 'public.users.id']);
    expect(one('COPY users (id) TO STDOUT').columns).toEqual(['public.users.id']);
    expect(one('COPY users TO STDOUT').columns).toEqual(['public.users.*']);
  });
});

describe('has_where, limit and functions', () => {
  it('has_where is false when any UPDATE or DELETE anywhere lacks a WHERE', () => {
    expect(one('DELETE FROM t WHERE id = 1').has_where).toBe(true);
    expect(one('DELETE FROM t').has_where).toBe(false);
    expect(one('UPDATE t SET a = 1').has_where).toBe(false);
    expect(one('WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d').has_where).toBe(false);
    expect(one('WITH d AS (DELETE FROM t WHERE x RETURNING *) UPDATE u SET a = 1 WHERE b').has_where).toBe(true);
    expect(one('MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE').has_where).toBe(false);
    expect(one('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE').has_where).toBe(true);
    expect(one('SELECT * FROM t').has_where).toBe(true);
    expect(one('EXPLAIN DELETE FROM t').has_where).toBe(true);
  });

  it('limit is the constant LIMIT of the top-level query', () => {
    expect(one('SELECT * FROM t LIMIT 0').limit).toBe(0);
    expect(one('SELECT * FROM t LIMIT 10 OFFSET 5').limit).toBe(10);
    expect(one('SELECT * FROM t FETCH FIRST 3 ROWS ONLY').limit).toBe(3);
    expect(one('SELECT * FROM t LIMIT ALL').limit).toBeNull();
    expect(one('SELECT * FROM t LIMIT $1').limit).toBeNull();
    expect(one('SELECT * FROM t LIMIT 1 + 1').limit).toBeNull();
    expect(one('SELECT * FROM t LIMIT 1.5').limit).toBeNull();
    expect(one('SELECT * FROM (SELECT * FROM t LIMIT 5) s').limit).toBeNull();
    expect(one('SELECT * FROM t').limit).toBeNull();
  });

  it('lists the procedure of a CALL', () => {
    expect(one('CALL s.refresh(1, now())').functions).toEqual(['now', 's.refresh']);
  });

  it('lists functions with pg_catalog stripped and other schemas kept', () => {
    expect(one('SELECT pg_catalog.lower(a), upper(b), s.f(c), "Mixed"(d) FROM t').functions)
      .toEqual(['Mixed', 'lower', 's.f', 'upper']);
  });
});

describe('prepared statements', () => {
  it('lets a PREPARE earlier in the message serve a later EXECUTE, until DEALLOCATE', () => {
    const kinds = sql.classify('PREPARE p AS DELETE FROM t; EXECUTE p; DEALLOCATE p; EXECUTE p').map((a) => a.kind);
    expect(kinds).toEqual(['delete', 'delete', 'utility', 'unknown']);
  });

  it('merges has_where and tables of the prepared statement', () => {
    const prepared = new Map([['q', one('PREPARE q AS UPDATE accounts SET balance = 0')]]);
    const [a] = sql.classify('EXECUTE q', { prepared });
    expect(a).toMatchObject({ kind: 'update', writes: ['public.accounts'], has_where: false });
  });
});

describe('FETCH and MOVE (issue 14 item 3)', () => {
  it("carry the facts of the cursor's query; a cursor the caller does not know is unknown", () => {
    expect(sql.classify('FETCH 10 FROM c').map((a) => a.kind)).toEqual(['unknown']);
    expect(sql.classify('MOVE NEXT FROM c').map((a) => a.kind)).toEqual(['unknown']);
    const cursors = new Map([['c', one('DECLARE c CURSOR FOR SELECT id FROM jobs FOR UPDATE')]]);
    expect(sql.classify('FETCH 10 FROM c', { cursors })[0]).toMatchObject({ kind: 'update', reads: ['public.jobs'], writes: ['public.jobs'] });
    expect(sql.classify('MOVE NEXT FROM c', { cursors })[0]).toMatchObject({ kind: 'update' });
    const plain = new Map([['p', one('DECLARE p CURSOR FOR SELECT email FROM customers')]]);
    expect(sql.classify('FETCH ALL FROM p', { cursors: plain })[0]).toMatchObject({ kind: 'select', reads: ['public.customers'], columns: ['public.customers.email'] });
  });

  it('see a cursor declared earlier in the same message, until it is closed', () => {
    const kinds = sql.classify('DECLARE c CURSOR FOR SELECT nextval(\'s\'); FETCH c; CLOSE c; FETCH c').map((a) => a.kind);
    expect(kinds).toEqual(['update', 'update', 'utility', 'unknown']);
  });
});

describe('texts', () => {
  it('slices statements by byte offsets even with multi-byte characters', () => {
    const actions = sql.classify("SELECT '日本語' AS x;SELECT 'ü' FROM \"tä\"; DELETE FROM t");
    expect(actions.map((a) => a.text)).toEqual(["SELECT '日本語' AS x", "SELECT 'ü' FROM \"tä\"", 'DELETE FROM t']);
    expect(actions[1]!.reads).toEqual(['public.tä']);
  });

  it('normalizes constants and fingerprints alike statements alike', () => {
    const a = one("SELECT * FROM users WHERE id = 1 AND name = 'x'");
    const b = one("select *  from users where id = 2 and name = 'y'");
    expect(a.normalized).toBe('SELECT * FROM users WHERE id = $1 AND name = $2');
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(one('SELECT * FROM orders WHERE id = 1').fingerprint).not.toBe(a.fingerprint);
  });

  it('is unknown when the text holds a NUL (the parser would stop there)', () => {
    const actions = sql.classify('SELECT 1\u0000; DROP TABLE users');
    expect(actions.map((a) => a.kind)).toEqual(['unknown']);
  });

  it('gives no action for an empty message', () => {
    expect(sql.classify('')).toEqual([]);
    expect(sql.classify('  -- just a comment\n')).toEqual([]);
  });

  it('returns frozen facts so a caller cannot poison the cache', () => {
    const a = one('SELECT * FROM frozen_check');
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.reads)).toBe(true);
    expect(JSON.parse(JSON.stringify(a))).toMatchObject({ normalized: 'SELECT * FROM frozen_check', fingerprint: a.fingerprint });
  });
});

describe('sessionChange', () => {
  it('names the prepared statement a PREPARE adds and a DEALLOCATE removes, as PostgreSQL spells it', async () => {
    const { sessionChange } = await import('./index.ts');
    const [a, b, c, d] = sql.analyze('PREPARE MyPlan AS SELECT 1; PREPARE "Q" AS SELECT 2; DEALLOCATE myplan; DEALLOCATE ALL');
    expect([a, b, c, d].map((s) => sessionChange(s!))).toEqual([
      { prepare: 'myplan' }, { prepare: 'Q' }, { deallocate: 'myplan' }, { deallocate: null },
    ]);
    expect(sessionChange(sql.analyze('SELECT 1')[0]!)).toBeNull();
    const cursors = sql.analyze('DECLARE C CURSOR WITH HOLD FOR SELECT 1; DECLARE d CURSOR FOR SELECT 1; FETCH c; CLOSE c; CLOSE ALL; DISCARD ALL; COMMIT; ROLLBACK TO s; ABORT; SAVEPOINT "S"; RELEASE s');
    expect(cursors.map((s) => sessionChange(s))).toEqual([
      { declare: { name: 'c', hold: true } }, { declare: { name: 'd', hold: false } }, { fetch: 'c' }, { close: 'c' }, { close: null },
      { discardAll: true }, { transaction: 'commit' }, { savepoint: { op: 'rollback_to', name: 's' } }, { transaction: 'rollback' },
      { savepoint: { op: 'set', name: 'S' } }, { savepoint: { op: 'release', name: 's' } },
    ]);
  });

  it('keeps the first of two PREPAREs of one name, as PostgreSQL does', () => {
    const kinds = sql.classify('PREPARE p AS SELECT 1; PREPARE p AS DELETE FROM t; EXECUTE p').map((x) => x.kind);
    expect(kinds).toEqual(['select', 'delete', 'select']);
  });
});
