// `hoop mcp --config hoop.yaml` spawned by the MCP SDK's stdio client, relaying to the gateway's
// /mcp with HOOP_TOKEN: the tools work the same (masked rows, a blocked write as a tool error
// naming the rule), and a forged or expired token is refused with the gateway's reason.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { SENTINEL, SETUP_SQL } from '../masking/corpus.ts';
import { startMcpGateway, structured, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read
  allow
}

rule mask_email {
  match sql read
  mask column "customers.email" with email
}

rule no_writes {
  match sql write
  block "agents may not write to prod-main"
}
`;

let cluster: Cluster;
let gw: McpGateway;

beforeAll(async () => {
  cluster = await startCluster();
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
  gw = await startMcpGateway(cluster, POLICY);
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

describe('hoop mcp (stdio)', () => {
  it('serves the tools: a masked query result and a blocked write', async () => {
    const c = await gw.stdio(await gw.token());
    expect((await c.listTools()).tools.map((t) => t.name)).toContain('query');
    const r = await c.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id, email FROM customers ORDER BY id' } });
    expect(r.isError, textOf(r)).toBeFalsy();
    expect(JSON.stringify(r)).not.toContain(SENTINEL.email);
    expect(structured<{ masked_columns: string[] }>(r).masked_columns).toEqual(['email (public.customers.email)']);
    const w = await c.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'DELETE FROM orders' } });
    expect(w.isError).toBe(true);
    expect(textOf(w)).toContain('hoop: blocked by t.no_writes: agents may not write to prod-main');
    expect(cluster.psql('SELECT count(*) FROM orders', 'app').trim()).toBe('2');
  });

  it('reads a refreshed token from --token-file for every request', async () => {
    const file = join(gw.stateDir, 'token');
    writeFileSync(file, `${await gw.token({ sub: 'agent-file' })}\n`);
    const c = new Client({ name: 't', version: '1' });
    await c.connect(
      new StdioClientTransport({ command: process.execPath, args: ['--import', 'tsx', 'cli/main.ts', 'mcp', '--config', gw.configFile, '--token-file', file], env: { PATH: process.env.PATH ?? '' }, stderr: 'pipe' }),
    );
    const r = await c.callTool({ name: 'list_resources', arguments: {} });
    expect(structured<{ identity: { sub: string } }>(r).identity.sub).toBe('agent-file');
    await c.close();
  });

  it('a forged token is refused with the gateway\'s reason', async () => {
    const good = await gw.token();
    const [h, p, sig] = good.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'root' })).toString('base64url')}.${sig}`;
    await expect(gw.stdio(forged)).rejects.toThrow(/token refused \(bad_signature\)|401/);
  });

  it('an expired token is refused', async () => {
    const expired = await gw.issuer.mint({ sub: 'agent-7', groups: ['data-reader'], ttlMs: 60_000, now: Date.now() - 3_600_000 });
    await expect(gw.stdio(expired)).rejects.toThrow(/expired/);
  });

  it('without a token it exits with a usage error', async () => {
    const c = new Client({ name: 't', version: '1' });
    const t = new StdioClientTransport({ command: process.execPath, args: ['--import', 'tsx', 'cli/main.ts', 'mcp', '--config', gw.configFile], env: { PATH: process.env.PATH ?? '' }, stderr: 'pipe' });
    let err = '';
    t.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    await expect(c.connect(t)).rejects.toThrow();
    expect(err).toMatch(/set HOOP_TOKEN/);
  });
});
