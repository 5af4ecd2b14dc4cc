// Under a read-only policy, writes through the MCP `query` tool: the disguised-writes corpus
// (stdlib/sql/corpus/disguised.ts) and the bypasses published against "read-only" MCP servers for
// PostgreSQL (a COMMIT ending the read-only transaction, a second statement after a SELECT,
// side-effect functions in a SELECT, SET TRANSACTION READ WRITE) are all refused, as tool errors,
// and the canary tables, sequences and settings are unchanged. The tables and functions the corpus
// names exist and write the canary, so a statement that got through would show.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { DISGUISED } from '../../stdlib/sql/corpus/disguised.ts';
import { READ_ONLY } from '../postgres/test-support.ts';
import { startMcpGateway, textOf, type McpGateway } from './mcp.test-support.ts';

const TABLES = ['canary', 'users', 't', 'u', 's', 'a', 'b', 'orders', 'audit', 'settings'];

const SETUP = `
${TABLES.map((t) => `CREATE TABLE ${t} (id int PRIMARY KEY, v text, x int, y int, email text, admin boolean, user_id int, total int, a int, name text);
INSERT INTO ${t} (id, v, x, email) SELECT g, 'row ' || g, g, 'u' || g || '@example.com' FROM generate_series(1, 20) g;`).join('\n')}
CREATE SEQUENCE canary_seq; CREATE SEQUENCE orders_id_seq; CREATE SEQUENCE counter_seq;
CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'DELETE FROM canary WHERE id = 1 RETURNING 1';
CREATE FUNCTION evil(int) RETURNS int LANGUAGE sql AS 'DELETE FROM canary WHERE id = $1 RETURNING 1';
CREATE FUNCTION my_function(int) RETURNS int LANGUAGE sql AS 'UPDATE canary SET v = ''pwned'' RETURNING 1';
CREATE FUNCTION delete_everything() RETURNS int LANGUAGE sql AS 'DELETE FROM canary RETURNING 1';
CREATE FUNCTION side_effect(int) RETURNS boolean LANGUAGE sql AS 'INSERT INTO canary (id) VALUES (1000 + $1) RETURNING true';
CREATE FUNCTION get_users() RETURNS SETOF users LANGUAGE sql AS 'DELETE FROM canary RETURNING NULL::users';
CREATE FUNCTION f(int) RETURNS boolean LANGUAGE sql AS 'DELETE FROM canary WHERE id = $1 RETURNING true';
CREATE PROCEDURE refresh_everything() LANGUAGE sql AS 'DELETE FROM canary';
CREATE VIEW v AS SELECT * FROM t;
CREATE MATERIALIZED VIEW mv AS SELECT * FROM users;
`;

const DIGEST = `SELECT string_agg(d, ' ' ORDER BY d) FROM (
  ${TABLES.map((t) => `SELECT '${t}:' || count(*) || ':' || md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) AS d FROM ${t} x`).join(' UNION ALL ')}
  UNION ALL SELECT 'seq:' || string_agg(last_value || '/' || is_called, ',') FROM (SELECT * FROM canary_seq UNION ALL SELECT * FROM orders_id_seq UNION ALL SELECT * FROM counter_seq) q
  UNION ALL SELECT 'rel:' || count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace
  UNION ALL SELECT 'fn:' || count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'roles:' || count(*) FROM pg_roles
  UNION ALL SELECT 'rolesettings:' || count(*) FROM pg_db_role_setting
) z`;

/** The bypasses published against read-only MCP servers for PostgreSQL, and their close relatives. */
const BYPASSES = [
  'COMMIT; DROP TABLE canary',
  'COMMIT; DELETE FROM canary',
  'ROLLBACK; DROP TABLE canary',
  'END; DELETE FROM canary',
  'BEGIN READ ONLY; COMMIT; DELETE FROM canary',
  'SELECT 1; DELETE FROM canary',
  'select 1;delete from canary',
  'SELECT * FROM canary; -- a comment\nDELETE FROM canary',
  "SELECT 1; /* */ UPDATE canary SET v = 'pwned'",
  'SET TRANSACTION READ WRITE; DELETE FROM canary',
  'BEGIN; SET TRANSACTION READ WRITE; DELETE FROM canary; COMMIT',
  'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; INSERT INTO canary (id) VALUES (999)',
  "SET default_transaction_read_only = off; DELETE FROM canary",
  "SELECT set_config('default_transaction_read_only', 'off', false); DELETE FROM canary",
  'SELECT evil()',
  'SELECT id, evil(id) FROM canary',
  'SELECT * FROM canary WHERE f(id)',
  'SELECT delete_everything()',
  "SELECT nextval('canary_seq')",
  "SELECT pg_terminate_backend(pg_backend_pid())",
  'CALL refresh_everything()',
  "DO $$ BEGIN DELETE FROM canary; END $$",
  'WITH d AS (DELETE FROM canary RETURNING *) SELECT count(*) FROM d',
  'EXPLAIN ANALYZE DELETE FROM canary',
  "COPY canary FROM PROGRAM 'true'",
  'PREPARE w AS DELETE FROM canary; EXECUTE w',
  'CREATE TABLE canary_copy AS SELECT * FROM canary',
  'SELECT * INTO canary_copy FROM canary',
  "SET ROLE postgres; DELETE FROM canary",
  'TRUNCATE canary',
  'DELETE FROM canary WHERE id = $1',
];

let cluster: Cluster;
let gw: McpGateway;
let client: Client;

beforeAll(async () => {
  cluster = await startCluster();
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP);
  await setup.end();
  gw = await startMcpGateway(cluster, READ_ONLY);
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

async function refusedAll(statements: readonly string[]): Promise<string[]> {
  const ran: string[] = [];
  for (const sql of statements) {
    const params = sql.includes('$1') && !sql.includes('$$') ? [1] : undefined;
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql, ...(params ? { params } : {}) } });
    const reason = (r.structuredContent as { error?: { reason?: string } } | undefined)?.error?.reason;
    if (!r.isError || reason !== 'blocked') ran.push(`${sql} → ${textOf(r).slice(0, 200)}`);
    // The session goes on after every refusal.
    const probe = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT count(*) AS n FROM canary' } });
    if (probe.isError) ran.push(`after ${sql}: the probe failed: ${textOf(probe)}`);
  }
  return ran;
}

describe('a read-only policy over MCP', () => {
  it('refuses every disguised write of the corpus; the canary is unchanged', async () => {
    const before = cluster.psql(DIGEST, 'app');
    expect(await refusedAll(DISGUISED.map(([sql]) => sql))).toEqual([]);
    expect(cluster.psql(DIGEST, 'app')).toBe(before);
  });

  it('refuses the published read-only-mode bypasses; the canary is unchanged', async () => {
    const before = cluster.psql(DIGEST, 'app');
    expect(await refusedAll(BYPASSES)).toEqual([]);
    expect(cluster.psql(DIGEST, 'app')).toBe(before);
  });

  it('still answers genuine reads', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT count(*) AS n FROM canary; SELECT id FROM users ORDER BY id LIMIT 2' } });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect((r.structuredContent as { statements: { rows: unknown[] }[] }).statements.map((s) => s.rows)).toEqual([[{ n: 20 }], [{ id: 1 }, { id: 2 }]]);
  });
});
