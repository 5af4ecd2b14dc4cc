// A `query` result over its row cap (the gateway's mcp.max_rows, or the policy's `limit rows`) is
// stopped upstream, not read and dropped: the server produces the cap's rows and one more (to know
// that more exist), never the rest of a 200,000-row table. The evidence is time-independent: every
// row the server produced called nextval() on a probe sequence (sequences are not rolled back), so
// the sequence's last_value after the call is the number of rows the upstream produced.
// A write's RETURNING rows are cut but read to the end: the write ran in full and its count stands.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { ALLOW_ALL } from '../postgres/test-support.ts';
import { startMcpGateway, textOf, type McpGateway } from './mcp.test-support.ts';

const HUGE = 200_000;
const MAX_ROWS = 100;

const POLICY = `${ALLOW_ALL}
rule cap_calls {
  match sql call
  limit rows 7
}
`;

let cluster: Cluster;
let gw: McpGateway;
let client: Client;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `CREATE TABLE huge AS SELECT g AS id, 0 AS n FROM generate_series(1, ${HUGE}) g; ALTER TABLE huge OWNER TO app;
     CREATE SEQUENCE probe_a; CREATE SEQUENCE probe_b; CREATE SEQUENCE probe_d; CREATE SEQUENCE probe_p;
     ALTER SEQUENCE probe_a OWNER TO app; ALTER SEQUENCE probe_b OWNER TO app; ALTER SEQUENCE probe_d OWNER TO app; ALTER SEQUENCE probe_p OWNER TO app;
     CREATE FUNCTION tick() RETURNS bigint LANGUAGE sql VOLATILE AS $$ SELECT nextval('probe_b') $$; ALTER FUNCTION tick() OWNER TO app;`,
    'app',
  );
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.mcp = { maxRows: MAX_ROWS, maxResultBytes: 1024 * 1024, statementTimeoutMs: 30_000, maxWaitMs: 10_000, poolSize: 2, idleTimeoutMs: 60_000, sessionIdleMs: 60_000 };
  });
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const q = (sql: string, params?: unknown[]) => client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql, ...(params ? { params } : {}) } });
/** Rows the upstream produced for a probe: the sequence's last value (0 if never called). */
const produced = (seq: string): number => Number(cluster.psql(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ${seq}`, 'app').trim());

type Result = { rows: { id: number }[]; row_count: number; truncated: boolean; truncated_by?: string };

describe('row cap', () => {
  it('mcp.max_rows stops the statement upstream: the server produced the cap and one row more, not the table', async () => {
    const r = await q("SELECT id, nextval('probe_a') AS n FROM huge");
    expect(r.isError, textOf(r)).toBeFalsy();
    const s = r.structuredContent as Result;
    expect(s.rows).toHaveLength(MAX_ROWS);
    expect(s.truncated).toBe(true);
    expect(s.truncated_by).toBe('mcp.max_rows');
    expect(s.row_count).toBe(MAX_ROWS);
    expect(produced('probe_a')).toBe(MAX_ROWS + 1);
  });

  it("the policy's limit rows stops it upstream too, naming the rule", async () => {
    const r = await q('SELECT id, tick() AS n FROM huge');
    expect(r.isError, textOf(r)).toBeFalsy();
    const s = r.structuredContent as Result;
    expect(s.rows).toHaveLength(7);
    expect(s.truncated).toBe(true);
    expect(s.truncated_by).toBe('t.cap_calls');
    expect(produced('probe_b')).toBe(8);
  });

  it('with parameters, the same', async () => {
    const r = await q("SELECT id, nextval('probe_p') AS n FROM huge WHERE id > $1", [10]);
    expect(r.isError, textOf(r)).toBeFalsy();
    expect((r.structuredContent as Result).rows).toHaveLength(MAX_ROWS);
    expect(produced('probe_p')).toBe(MAX_ROWS + 1);
  });

  it('in a text of several statements, the cut statement stops and the next ones run', async () => {
    const r = await q("SELECT id, nextval('probe_d') AS n FROM huge; SELECT 'after' AS x");
    expect(r.isError, textOf(r)).toBeFalsy();
    const s = r.structuredContent as { statements: { rows: unknown[]; truncated: boolean }[] };
    expect(s.statements).toHaveLength(2);
    expect(s.statements[0]!.truncated).toBe(true);
    expect(s.statements[0]!.rows).toHaveLength(MAX_ROWS);
    expect(s.statements[1]).toMatchObject({ rows: [{ x: 'after' }], truncated: false });
    expect(produced('probe_d')).toBe(MAX_ROWS + 1);
  });

  it("a write's RETURNING rows are cut, the write runs in full and its row count stands", async () => {
    const r = await q('UPDATE huge SET n = n + 1 WHERE id <= 500 RETURNING id');
    expect(r.isError, textOf(r)).toBeFalsy();
    const s = r.structuredContent as Result & { command: string };
    expect(s.rows).toHaveLength(MAX_ROWS);
    expect(s.truncated).toBe(true);
    expect(s.row_count).toBe(500);
    expect(s.command).toBe('UPDATE 500');
    expect(cluster.psql('SELECT count(*) FROM huge WHERE n = 1', 'app').trim()).toBe('500');
  });

  it('a result under the cap is whole, not truncated', async () => {
    const r = await q('SELECT id FROM huge WHERE id <= $1 ORDER BY id', [MAX_ROWS]);
    const s = r.structuredContent as Result;
    expect(s.rows).toHaveLength(MAX_ROWS);
    expect(s.truncated).toBe(false);
    expect(s.row_count).toBe(MAX_ROWS);
  });
});
