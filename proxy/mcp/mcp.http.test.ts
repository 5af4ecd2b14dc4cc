// The MCP front door over Streamable HTTP, with the SDK's own client, against a real PostgreSQL 15
// behind the whole gateway (runGateway): each tool's happy path, masks in query results and in
// describe, blocks as tool errors naming the rule, the all-or-none rule for several statements,
// parameters, truncation, approvals end to end, audit records with `front_door: mcp`, the
// protected-resource metadata and token refusals.

import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { DBA } from '../postgres/test-support.ts';
import { SENTINEL, SETUP_SQL } from '../masking/corpus.ts';
import { startMcpGateway, structured, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, explain, utility
  allow
}

rule mask_pii {
  match sql read
  mask column "customers.email" with email
  mask column "customers.ssn" with redact
  mask detect credit_card with redact
}

rule writes_need_dba {
  match sql insert, update, delete
  approve by group "dba" within 5m
}

rule no_catalog_for_interns {
  when group "intern"
  match sql select on tables ["pg_catalog.pg_class"]
  block "interns do not read the catalog"
}

rule no_schema_changes {
  match sql ddl
  block "schema changes are not allowed through agents"
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
  await setup.query('CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 5000) g');
  await setup.end();
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.mcp = { maxRows: 100, maxResultBytes: 1024 * 1024, statementTimeoutMs: 30_000, maxWaitMs: 20_000, poolSize: 2, idleTimeoutMs: 60_000, sessionIdleMs: 60_000 };
  });
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

type Row = Record<string, unknown>;

describe('tools', () => {
  it('lists the tools with input schemas', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['approval_status', 'describe', 'list_resources', 'query', 'wait_for_approval']);
    const q = tools.find((t) => t.name === 'query')!;
    expect(q.inputSchema.required).toEqual(['resource', 'sql']);
    expect(q.description).toMatch(/run together or not at all/);
  });

  it('list_resources names the configured resources and the caller', async () => {
    const r = await client.callTool({ name: 'list_resources', arguments: {} });
    expect(r.isError).toBeFalsy();
    const s = structured<{ identity: { sub: string }; resources: { name: string; kind: string }[] }>(r);
    expect(s.identity.sub).toBe('agent-7');
    expect(s.resources).toEqual([{ name: 'prod-main', kind: 'postgres', labels: {}, tools: ['describe', 'query'] }]);
  });

  it('describe lists readable tables and which columns come back masked', async () => {
    const r = await client.callTool({ name: 'describe', arguments: { resource: 'prod-main', table: 'customers' } });
    expect(r.isError).toBeFalsy();
    const { tables } = structured<{ tables: { name: string; access: string; columns: { name: string; masked?: string }[] }[] }>(r);
    expect(tables).toHaveLength(1);
    expect(tables[0]!.access).toBe('mask');
    const masked = Object.fromEntries(tables[0]!.columns.map((c) => [c.name, c.masked ?? null]));
    expect(masked.email).toBe('email');
    expect(masked.ssn).toBe('redact');
    expect(masked.id).toMatch(/credit_card/); // the content detector may mask any value
    const all = await client.callTool({ name: 'describe', arguments: { resource: 'prod-main' } });
    const names = structured<{ tables: { name: string }[] }>(all).tables.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['customers', 'orders', 'v_customers', 'big']));
  });

  it('describe is decided and audited: its catalog read is a decision record with front_door mcp', async () => {
    const before = gw.auditRecords().length;
    const r = await client.callTool({ name: 'describe', arguments: { resource: 'prod-main', table: 'orders' } });
    expect(r.isError, textOf(r)).toBeFalsy();
    const recs = gw.auditRecords().slice(before).filter((x) => x.front_door === 'mcp');
    const decision = recs.find((x) => x.type === 'decision' && (x.statement as { normalized: string }).normalized.includes('pg_catalog.pg_class'));
    expect(decision, JSON.stringify(recs)).toBeDefined();
    // mask_pii's `mask detect` applies to every read, the catalog's too.
    expect(decision).toMatchObject({ verdict: 'mask', identity: { sub: 'agent-7' }, resource: { kind: 'postgres', name: 'prod-main' } });
    // A read's result record is appended after the answer: wait for it, not for a fixed time.
    const result = () => gw.auditRecords().slice(before).find((x) => x.front_door === 'mcp' && x.type === 'statement_result' && (x.statement as { normalized: string }).normalized.includes('pg_catalog.pg_class'));
    await expect.poll(() => result()?.outcome, { timeout: 5000 }).toBe('executed');
  });

  it("describe is refused when the policy blocks the caller's catalog read, naming the rule; audited as blocked", async () => {
    const intern = await gw.http(await gw.token({ sub: 'intern-1', groups: ['intern'] }));
    const before = gw.auditRecords().length;
    const r = await intern.callTool({ name: 'describe', arguments: { resource: 'prod-main' } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('hoop: blocked by t.no_catalog_for_interns: interns do not read the catalog');
    expect(structured<{ tables?: unknown }>(r).tables).toBeUndefined();
    const blocked = gw.auditRecords().slice(before).find((x) => x.front_door === 'mcp' && x.type === 'decision' && (x.identity as { sub: string }).sub === 'intern-1');
    expect(blocked).toMatchObject({ outcome: 'blocked', verdict: 'block' });
  });

  it('query returns JSON rows with masks applied, the row count and the reasons', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id, name, email, ssn, card_number, balance FROM customers ORDER BY id' } });
    expect(r.isError).toBeFalsy();
    const s = structured<{ rows: Row[]; row_count: number; truncated: boolean; verdict: string; rules: string[]; masked_columns: string[] }>(r);
    expect(s.row_count).toBe(2);
    expect(s.truncated).toBe(false);
    expect(s.verdict).toBe('mask');
    expect(s.rules).toContain('t.mask_pii');
    expect(s.rows[0]!.id).toBe(1);
    expect(s.rows[0]!.name).toBe('Zed Sentinel');
    expect(s.rows[0]!.email).not.toBe(SENTINEL.email);
    expect(s.rows[0]!.ssn).not.toBe(SENTINEL.ssn);
    expect(s.rows[0]!.card_number).not.toBe(SENTINEL.card);
    const all = JSON.stringify(r);
    for (const v of Object.values(SENTINEL)) expect(all).not.toContain(v);
  });

  it('query binds params as text', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id, name FROM customers WHERE id = $1 AND name <> $2', params: [2, 'nobody'] } });
    expect(r.isError).toBeFalsy();
    expect(structured<{ rows: Row[] }>(r).rows).toEqual([{ id: 2, name: 'Ann Other' }]);
  });

  it('a result over mcp.max_rows comes back truncated (row_count: the rows sent back)', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id FROM big ORDER BY id' } });
    expect(r.isError).toBeFalsy();
    const s = structured<{ rows: Row[]; row_count: number; truncated: boolean }>(r);
    expect(s.truncated).toBe(true);
    expect(s.rows).toHaveLength(100);
    expect(s.row_count).toBe(100);
    expect(textOf(r)).toMatch(/truncated/);
  });

  it('a blocked statement is a tool error naming the rule and its message; nothing ran', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'DROP TABLE orders' } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain('hoop: blocked by t.no_schema_changes: schema changes are not allowed through agents');
    expect(structured<{ error: { rules: string[] } }>(r).error.rules).toEqual(['t.no_schema_changes']);
    expect(cluster.psql("SELECT to_regclass('public.orders') IS NOT NULL", 'app').trim()).toBe('t');
  });

  it('several statements run together or not at all', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "SELECT 1 AS one; DROP TABLE orders; SELECT 'never' AS two" } });
    expect(r.isError).toBe(true);
    expect(cluster.psql("SELECT to_regclass('public.orders') IS NOT NULL", 'app').trim()).toBe('t');
    const ok = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "SELECT 1 AS one; SELECT 'b' AS two" } });
    const s = structured<{ rows: Row[]; statements: { rows: Row[] }[] }>(ok);
    expect(s.statements.map((x) => x.rows)).toEqual([[{ one: 1 }], [{ two: 'b' }]]);
  });

  it('no transaction or setting spans tool calls', async () => {
    // now() is the transaction's start: the same value in the next call would mean the transaction spanned it.
    const a = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "BEGIN; SET LOCAL application_name = 'x'; SET search_path = pg_catalog; SELECT now()::text AS started" } });
    expect(a.isError).toBeFalsy();
    const started = (structured<{ rows: Row[] }>(a).rows[0] as { started: string }).started;
    const b = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "SELECT current_setting('search_path') AS p, current_setting('application_name') AS app, now()::text = $1 AS same_transaction", params: [started] } });
    expect(structured<{ rows: Row[] }>(b).rows).toEqual([{ p: '"$user", public', app: 'hoop-mcp', same_transaction: false }]);
  });

  it('an unknown resource or a bad argument is a clear error', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'nope', sql: 'SELECT 1' } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/no resource named "nope"/);
    const bad = await client.callTool({ name: 'query', arguments: { resource: 'prod-main' } });
    expect(bad.isError).toBe(true);
    expect(textOf(bad)).toMatch(/sql/);
  });

  it('every call is audited with front_door: mcp', async () => {
    await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT 42 AS audited' } });
    const recs = gw.auditRecords().filter((r) => r.front_door === 'mcp' && r.type === 'decision');
    const kinds = recs.map((r) => (r.statement as { kind: string }).kind);
    expect(kinds).toContain('ddl');
    expect(recs.find((r) => (r.statement as { kind: string }).kind === 'ddl')!.outcome).toBe('blocked');
    // Each record names the caller of its own session (the intern's describe above is its own).
    expect(recs.every((r) => ['agent-7', 'intern-1'].includes((r.identity as { sub: string }).sub))).toBe(true);
    expect(recs.some((r) => (r.identity as { sub: string }).sub === 'agent-7')).toBe(true);
  });

  it('every call is recorded in the session recording', async () => {
    const dir = gw.config.recording.dir;
    const recorded = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) => readFileSync(`${dir}/${f}`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>))
        .filter((l) => l.protocol === 'mcp');
    // The recorder writes in batches: wait for the batch, not for a fixed time.
    await expect.poll(() => recorded().some((l) => l.text === 'SELECT 42 AS audited' && l.outcome === 'executed'), { timeout: 5000 }).toBe(true);
    expect(recorded().some((l) => l.text === 'DROP TABLE orders' && l.outcome === 'blocked')).toBe(true);
  });
});

describe('approvals', () => {
  it('an approve verdict returns the id and the next call; wait_for_approval runs it once approved', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "UPDATE orders SET note = 'approved' WHERE id = $1 RETURNING id, note", params: [1] } });
    expect(r.isError).toBeFalsy();
    const s = structured<{ status: string; approval_id: string; approvers: string[]; next: { tool: string } }>(r);
    expect(s.status).toBe('approval_required');
    expect(s.approvers).toEqual(['dba']);
    expect(s.next.tool).toBe('wait_for_approval');
    expect(cluster.psql('SELECT note FROM orders WHERE id = 1', 'app').trim()).toBe('first');

    const status = await client.callTool({ name: 'approval_status', arguments: { approval_id: s.approval_id } });
    expect(structured<{ status: string }>(status).status).toBe('pending');

    const waiting = client.callTool({ name: 'wait_for_approval', arguments: { approval_id: s.approval_id, timeout_seconds: 15 } });
    // The approver decides while the agent waits.
    const decided = await gw.running.approvals.decide(s.approval_id, DBA, 'approve', 'ok');
    expect(decided.ok).toBe(true);
    const done = await waiting;
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(structured<{ rows: Row[] }>(done).rows, textOf(done)).toEqual([{ id: 1, note: "approved" }]);
    expect(cluster.psql('SELECT note FROM orders WHERE id = 1', 'app').trim()).toBe('approved');

    // Single use: the same call needs a new approval.
    const again = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: "UPDATE orders SET note = 'approved' WHERE id = $1 RETURNING id, note", params: [1] } });
    expect(structured<{ status: string; approval_id: string }>(again).status).toBe('approval_required');
    expect(structured<{ approval_id: string }>(again).approval_id).not.toBe(s.approval_id);
  });

  it('a wait that ends before a decision says it is still pending; a denial is an error', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'DELETE FROM orders WHERE id = 2' } });
    const id = structured<{ approval_id: string }>(r).approval_id;
    const pending = await client.callTool({ name: 'wait_for_approval', arguments: { approval_id: id, timeout_seconds: 0.2 } });
    expect(pending.isError).toBeFalsy();
    expect(textOf(pending)).toMatch(/Still pending/);
    await gw.running.approvals.decide(id, DBA, 'deny', 'not today');
    const denied = await client.callTool({ name: 'wait_for_approval', arguments: { approval_id: id } });
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toMatch(/denied.*not today/);
    expect(cluster.psql('SELECT count(*) FROM orders WHERE id = 2', 'app').trim()).toBe('1');
  });

  it('another identity cannot see the approval', async () => {
    const r = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'DELETE FROM orders WHERE id = 1' } });
    const id = structured<{ approval_id: string }>(r).approval_id;
    const other = await gw.http(await gw.token({ sub: 'agent-8', groups: ['data-reader'] }));
    const seen = await other.callTool({ name: 'approval_status', arguments: { approval_id: id } });
    expect(seen.isError).toBe(true);
    expect(textOf(seen)).toMatch(/no approval/);
  });
});

describe('authorization', () => {
  it('serves RFC 9728 protected-resource metadata naming the issuer', async () => {
    const res = await fetch(`${gw.running.admin!.url}/.well-known/oauth-protected-resource/mcp`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { resource: string; authorization_servers: string[] };
    expect(body.resource).toBe(gw.mcpUrl);
    expect(body.authorization_servers).toEqual([gw.issuer.issuer]);
  });

  it('refuses a request without a token with a challenge pointing at the metadata', async () => {
    const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${gw.running.admin!.url}/.well-known/oauth-protected-resource/mcp"`);
  });

  it('refuses a forged token', async () => {
    const good = await gw.token();
    const [h, p] = good.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['dba'] })).toString('base64url')}.${good.split('.')[2]}`;
    const c = new Client({ name: 'forger', version: '1' });
    await expect(c.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${forged}` } } }))).rejects.toThrow(/401|token refused/);
    const res = await fetch(gw.mcpUrl, { method: 'POST', headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('refuses an expired token, also in the middle of a session', async () => {
    const expired = await gw.issuer.mint({ sub: 'agent-7', groups: ['data-reader'], ttlMs: 60_000, now: Date.now() - 3_600_000 });
    const c = new Client({ name: 'late', version: '1' });
    await expect(c.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${expired}` } } }))).rejects.toThrow(/expired/);
  });

  it('a session is bound to the identity that opened it', async () => {
    const mine = new StreamableHTTPClientTransport(new URL(gw.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${await gw.token()}` } } });
    const c = new Client({ name: 'mine', version: '1' });
    await c.connect(mine);
    const sid = mine.sessionId!;
    const other = await gw.token({ sub: 'agent-9', groups: ['dba'] });
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}`, 'mcp-session-id': sid, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_resources', arguments: {} } }),
    });
    expect(res.status).toBe(404);
    await c.close();
  });
});
