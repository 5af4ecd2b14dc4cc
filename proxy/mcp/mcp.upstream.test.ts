// The MCP front door's upstream side under an allow-all policy: upstream errors are tool errors
// with the server's SQLSTATE and the session goes on; a backend that dies mid-call ends only that
// call (the next gets a fresh connection); statement_timeout bounds a call; a call's transaction
// left open is rolled back; the policy's `limit rows` cuts a result (`truncated`, naming the rule)
// and its `limit time` cancels a statement.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { ALLOW_ALL } from '../postgres/test-support.ts';
import { startMcpGateway, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `${ALLOW_ALL}
rule cap_big {
  match sql select on tables ["public.big"]
  limit rows 3
}

rule slow_calls {
  match sql call
  limit time 300ms
}
`;

let cluster: Cluster;
let gw: McpGateway;
let client: Client;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE notes (id int PRIMARY KEY, v text); ALTER TABLE notes OWNER TO app; CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 50) g; ALTER TABLE big OWNER TO app;', 'app');
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.mcp = { maxRows: 1000, maxResultBytes: 1024 * 1024, statementTimeoutMs: 1000, maxWaitMs: 10_000, poolSize: 2, idleTimeoutMs: 60_000, sessionIdleMs: 60_000 };
  });
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const q = (sql: string) => client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql } });

describe('upstream', () => {
  it('an upstream error is a tool error with its SQLSTATE; the next call works', async () => {
    const r = await q('SELECT 1/0');
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/PostgreSQL error 22012: division by zero/);
    expect((await q('SELECT 2 AS two')).structuredContent).toMatchObject({ rows: [{ two: 2 }] });
  });

  it('a backend that dies mid-call fails that call only', async () => {
    const r = await q('SELECT pg_terminate_backend(pg_backend_pid())');
    expect(r.isError).toBe(true);
    expect((await q('SELECT 3 AS three')).structuredContent).toMatchObject({ rows: [{ three: 3 }] });
  });

  it('statement_timeout (mcp.statement_timeout) bounds a call', async () => {
    const r = await q('SELECT pg_sleep(30)');
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/57014/);
  });

  it('a transaction left open by a call is rolled back; one committed in the call stays', async () => {
    expect((await q("BEGIN; INSERT INTO notes VALUES (1, 'left open')")).isError).toBeFalsy();
    expect((await q("BEGIN; INSERT INTO notes VALUES (2, 'committed'); COMMIT")).isError).toBeFalsy();
    expect(cluster.psql('SELECT string_agg(v, \',\' ORDER BY id) FROM notes', 'app').trim()).toBe('committed');
  });

  it('a text longer than limits.max_statement_size is refused before it is parsed', async () => {
    const r = await q(`SELECT '${'x'.repeat(1024 * 1024)}' AS big`);
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/exceeds max_statement_size/);
  });

  it('prepared statements, cursors and COPY are refused (each call starts from a reset connection)', async () => {
    for (const sql of ['PREPARE p AS SELECT 1', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'COPY notes TO STDOUT']) {
      const r = await q(sql);
      expect(r.isError, sql).toBe(true);
      expect(textOf(r), sql).toMatch(/not available through MCP tools/);
    }
  });

  it("the policy's limit rows cuts the result: truncated, naming the rule", async () => {
    const r = await q('SELECT id FROM big ORDER BY id');
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ rows: [{ id: 1 }, { id: 2 }, { id: 3 }], row_count: 3, truncated: true, truncated_by: 't.cap_big' });
    const other = await q('SELECT count(*) AS n FROM notes');
    expect(other.structuredContent).toMatchObject({ truncated: false });
  });

  it("the policy's limit time cancels the statement, naming the rule", async () => {
    const r = await q('SELECT pg_sleep(0.1), pg_sleep(5)');
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/57014.*canceled by t\.slow_calls/);
    // The limit was for that call only.
    expect((await q('SELECT 1 AS ok')).isError).toBeFalsy();
  });
});
