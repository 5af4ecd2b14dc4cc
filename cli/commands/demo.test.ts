// The newcomer's path, automated: start the demo, connect as the reader with the printed token,
// see mask, allow, block and approve (approved by the DBA through `hoop approvals`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mcpJson, renderDemoInstructions, startDemo, type Demo } from './demo.ts';
import { runCli } from '../testing.ts';
import { verifyAuditFile } from '../../proxy/audit/verify.ts';
import { listRecordingFiles, summarizeRecording } from '../../proxy/recording/index.ts';

let demo: Demo;

beforeAll(async () => {
  demo = await startDemo({ state: mkdtempSync(join(tmpdir(), 'hoop-demo-')), port: 0, adminPort: 0, log: () => undefined });
}, 180_000);

afterAll(async () => {
  await demo?.close();
});

function client(token: string): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: demo.info.postgresPort, database: demo.info.resource, user: 'agent', password: token, ssl: false });
}

describe('hoop demo', () => {
  it('prints ready-to-paste psql lines with both tokens and the approvals commands', () => {
    const text = renderDemoInstructions(demo.info);
    expect(text).toContain(`psql "host=127.0.0.1 port=${demo.info.postgresPort} dbname=prod-main user=agent sslmode=disable password=${demo.info.readerToken}"`);
    expect(text).toContain(`export HOOP_TOKEN=${demo.info.dbaToken}`);
    expect(text).toContain(`approvals approve <id> --admin ${demo.info.adminUrl}`);
    expect(text).toContain(`approvals open --admin ${demo.info.adminUrl}`);
    expect(text).toContain(`${demo.info.adminUrl}/ui/`);
  });

  it('prints the MCP configuration for Claude Code and a generic client, and an MCP client sees a masked result and a blocked write', async () => {
    const text = renderDemoInstructions(demo.info);
    expect(text).toContain(`claude mcp add hoop --env HOOP_TOKEN=${demo.info.readerToken} -- node `);
    expect(text).toContain(`claude mcp add --transport http hoop ${demo.info.mcpUrl} --header "Authorization: Bearer ${demo.info.readerToken}"`);
    const config = JSON.parse(mcpJson(demo.info)) as { mcpServers: Record<string, { url?: string; headers?: Record<string, string> }> };
    const http = config.mcpServers['hoop-http']!;
    const c = new Client({ name: 'demo-test', version: '1' });
    await c.connect(new StreamableHTTPClientTransport(new URL(http.url!), { requestInit: { headers: http.headers! } }));
    try {
      const masked = await c.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT id, name, email, card_number FROM customers ORDER BY id' } });
      expect(masked.isError).toBeFalsy();
      const raw = JSON.stringify(masked);
      expect(raw).toContain('Ada Lovelace');
      expect(raw).not.toContain('ada@example.com');
      expect(raw).not.toContain('4111111111111111');
      const blocked = await c.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'DELETE FROM customers' } });
      expect(blocked.isError).toBe(true);
      expect(JSON.stringify(blocked.content)).toContain('no_unbounded_writes');
    } finally {
      await c.close();
    }
  });

  it('shows mask, allow, block and approve from a real client', async () => {
    const reader = client(demo.info.readerToken);
    const notices: string[] = [];
    reader.on('notice', (n) => notices.push(`${n.message} ${(n as { detail?: string }).detail ?? ''}`));
    await reader.connect();
    try {
      const masked = await reader.query('SELECT id, name, email, card_number, ssn FROM customers ORDER BY id');
      expect(masked.rows).toHaveLength(5);
      const bytes = JSON.stringify(masked.rows);
      expect(bytes).toContain('Ada Lovelace');
      expect(bytes).not.toContain('ada@example.com');
      expect(bytes).not.toContain('4111111111111111');
      expect(bytes).not.toContain('078-05-1120');
      expect(masked.rows[0].card_number).toMatch(/1111$/);

      const explain = await reader.query('EXPLAIN SELECT * FROM orders');
      expect(explain.rows.length).toBeGreaterThan(0);

      await expect(reader.query('DELETE FROM customers')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('no_unbounded_writes') });

      const held = reader.query("UPDATE orders SET status = 'refunded' WHERE id = 3");
      const id = await waitFor(() => notices.map((n) => /approval id: (apr_[A-Za-z0-9_-]+)/.exec(n)?.[1]).find(Boolean));
      const listed = await runCli(['approvals', 'list', '--admin', demo.info.adminUrl, '--json'], { HOOP_TOKEN: demo.info.dbaToken });
      expect(JSON.parse(listed.out)).toMatchObject([{ id, sub: 'agent-7', resource: 'postgres/prod-main', statement: "UPDATE orders SET status = 'refunded' WHERE id = 3", approvers: ['dba'] }]);
      // The reader cannot approve its own statement.
      expect((await runCli(['approvals', 'approve', id, '--admin', demo.info.adminUrl], { HOOP_TOKEN: demo.info.readerToken })).code).toBe(1);
      const approved = await runCli(['approvals', 'approve', id, '--admin', demo.info.adminUrl, '--reason', 'ticket 42'], { HOOP_TOKEN: demo.info.dbaToken });
      expect(approved.code).toBe(0);
      expect((await held).rowCount).toBe(1);
    } finally {
      await reader.end();
    }
    const check = client(demo.info.dbaToken);
    await check.connect();
    expect((await check.query('SELECT status FROM orders WHERE id = 3')).rows[0].status).toBe('refunded');
    await check.end();

    expect(await verifyAuditFile(demo.info.auditFile)).toMatchObject({ ok: true });
    const sessions = await waitFor(async () => {
      const files = listRecordingFiles(demo.info.sessionsDir);
      const sums = await Promise.all(files.map(summarizeRecording));
      const r = sums.find((s) => s.sub === 'agent-7' && s.ended_at);
      return r;
    });
    expect(sessions.verdicts).toMatchObject({ mask: 1, allow: 1, block: 1, approve: 1 });
  });
});

async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
