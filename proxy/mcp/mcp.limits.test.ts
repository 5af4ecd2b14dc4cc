// `limit rate` on MCP calls, through the whole gateway (runGateway) and the SDK client against a
// real PostgreSQL 15: each `query` call (and `describe`, whose catalog read is a request) counts
// against the identity's budget; the call past it is a tool error naming the rule and when to
// retry, audited as a blocked decision; the budget is the identity's across front doors: `psql`
// through the same gateway and MCP calls of the same `sub` spend one budget.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { run } from '../postgres/test-support.ts';
import { startMcpGateway, structured, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `package t
default allow

rule slow_down {
  match sql select
  limit rate 3 per 1h
}
`;

let cluster: Cluster;
let gw: McpGateway;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startMcpGateway(cluster, POLICY);
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const RATE_REFUSAL = /hoop: rate limit exceeded: rule t\.slow_down allows 3 requests per 1h; retry in \d+m \d+s/;

/** psql through the gateway's PostgreSQL listener with this token: 'ok' or the error line. */
async function psql(token: string, sql: string): Promise<string> {
  const conninfo = `host=127.0.0.1 port=${gw.running.gateway.postgresPort} dbname=prod-main user=x password=${token} sslmode=disable`;
  const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql, conninfo]);
  return r.code === 0 ? 'ok' : r.stderr.trim();
}

describe('limit rate on MCP calls', () => {
  it('counts each query call: the call past the budget is a tool error naming the rule, audited as blocked; describe counts too', async () => {
    const client = await gw.http(await gw.token({ sub: 'agent-a' }));
    const q = (sql: string) => client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql } });
    expect((await q('SELECT 1 AS one')).isError).toBeFalsy();
    expect((await q('SELECT 2 AS two')).isError).toBeFalsy();
    const d = await client.callTool({ name: 'describe', arguments: { resource: 'prod-main' } });
    expect(d.isError, textOf(d)).toBeFalsy();
    const refused = await q('SELECT 3 AS three');
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(RATE_REFUSAL);
    expect(structured<{ error: { reason: string; rules: string[] } }>(refused).error).toMatchObject({ reason: 'rate_limited' });
    // A statement the rule does not cover still runs.
    expect((await q('SET application_name = x')).isError).toBeFalsy();
    // Another identity has its own budget.
    const other = await gw.http(await gw.token({ sub: 'agent-b' }));
    expect((await other.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT 1' } })).isError).toBeFalsy();
    const blocked = gw.auditRecords().filter((r) => r.front_door === 'mcp' && r.type === 'decision' && r.outcome === 'blocked');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toMatchObject({ identity: { sub: 'agent-a' }, reason: expect.stringMatching(/^rate limit: rule t\.slow_down \(3 per 1h\)/) });
  });

  it('one budget per identity across front doors: psql and MCP calls of the same sub spend it together', async () => {
    const token = await gw.token({ sub: 'agent-c' });
    const client = await gw.http(token);
    const q = (sql: string) => client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql } });
    expect(await psql(token, 'SELECT 1')).toBe('ok');
    expect((await q('SELECT 2')).isError).toBeFalsy();
    expect(await psql(token, 'SELECT 3')).toBe('ok');
    // The budget of 3 is spent: both front doors refuse the fourth, naming the rule.
    const viaMcp = await q('SELECT 4');
    expect(viaMcp.isError).toBe(true);
    expect(textOf(viaMcp)).toMatch(RATE_REFUSAL);
    const viaPsql = await psql(token, 'SELECT 4');
    expect(viaPsql).toMatch(RATE_REFUSAL);
  });
});
