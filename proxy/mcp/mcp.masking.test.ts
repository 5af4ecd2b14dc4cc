// The masking sentinel corpus (proxy/masking/corpus.ts) run as MCP `query` calls: no tool result
// (rows, error texts, structured content) contains a sentinel value, and the statements the
// corpus says must be refused are tool errors. The same policy and corpus as the wire's test
// (gateway.masking.test.ts), so a tool call masks exactly as the wire does.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { CORPUS, SENTINEL, SETUP_SQL } from '../masking/corpus.ts';
import { startMcpGateway, textOf, type McpGateway } from './mcp.test-support.ts';

const ALL_KINDS = 'unknown, do, call, grant, ddl, truncate, delete, merge, update, insert, copy_from, copy_to, select, set, transaction, explain, utility';
const POLICY = `package t
default block "not allowed"

rule everything {
  match sql ${ALL_KINDS}
  allow
}

rule mask_pii {
  match sql ${ALL_KINDS}
  mask column "customers.email" with email
  mask column "customers.card_number" with last4
  mask column "customers.ssn" with redact
  mask column "events.contact" with redact
  mask column "v_contacts.contact_name" with redact
  mask detect credit_card, us_ssn with redact
}
`;

let cluster: Cluster;
let gw: McpGateway;
let client: Client;

beforeAll(async () => {
  cluster = await startCluster();
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.masking = { hashKey: 'mcp-test-key' };
  });
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

describe('the masking corpus as tool calls', () => {
  it('no sentinel reaches the agent, and refused statements are tool errors', async () => {
    const leaks: string[] = [];
    const wrong: string[] = [];
    for (const c of CORPUS) {
      const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: c.sql } });
      const all = JSON.stringify(r);
      for (const v of Object.values(SENTINEL)) if (all.includes(v)) leaks.push(`${c.sql} → ${v}`);
      if (c.expect === 'block' && !r.isError) wrong.push(`${c.sql}: ran, expected a refusal`);
      if (c.expect === 'block' && r.isError && !/hoop: blocked/.test(textOf(r))) wrong.push(`${c.sql}: ${textOf(r)}`);
    }
    expect(leaks).toEqual([]);
    expect(wrong).toEqual([]);
  });

  it('a masked column comes back as its masker says and clear columns as they are', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id, name, email, card_number, upper(email) AS u FROM customers ORDER BY id' } });
    const rows = (r.structuredContent as { rows: Record<string, unknown>[] }).rows;
    // (The corpus' upsert renamed customer 1: its statements run one call each, in autocommit.)
    expect(rows[1]!.name).toBe('Ann Other');
    expect(rows[1]!.id).toBe(2);
    expect(rows[0]!.card_number).toBe('************6783');
    expect(rows[0]!.email).not.toContain('zq-sentinel-mail-7731');
    expect(rows[0]!.u).not.toContain('ZQ-SENTINEL');
  });
});
