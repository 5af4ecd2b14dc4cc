// The newcomer's path, automated: start the demo, connect as the reader with the printed token,
// see mask, allow, block and approve (approved by the DBA through `hoop approvals`); then paste
// the printed ssh lines into a shell (the real OpenSSH client through sshpass) and see the same
// four verdicts on the demo's SSH host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mcpJson, renderDemoInstructions, SSH_COMMANDS, startDemo, type Demo } from './demo.ts';
import { DEMO_AWS_KEY, DEMO_CARD, DEMO_FILES } from './demo-ssh-upstream.ts';
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

describe('hoop demo over ssh', () => {
  /** The printed `export SSHPASS=...` line and the ssh line printed for a verdict, as a reader would copy them. */
  function printed(verdict: keyof typeof SSH_COMMANDS): { exportLine: string; sshLine: string } {
    const text = renderDemoInstructions(demo.info);
    const exportLine = /^ *(export SSHPASS=\S+)$/m.exec(text)?.[1];
    const sshLine = new RegExp(`^ +${verdict} +(sshpass -e ssh .*)$`, 'm').exec(text)?.[1];
    if (!exportLine || !sshLine) throw new Error(`no ${verdict} ssh line in:\n${text}`);
    return { exportLine, sshLine };
  }

  /** Runs the pasted lines in a shell; `onStderr` sees stderr as it arrives. */
  function paste(verdict: keyof typeof SSH_COMMANDS, onStderr?: (soFar: string) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const { exportLine, sshLine } = printed(verdict);
    const env = { ...process.env };
    delete env.SSHPASS;
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', `${exportLine}\n${sshLine}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString('utf8');
        onStderr?.(stderr);
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('prints one ssh line per verdict with the ops token and the gateway host key pinned in a known_hosts file', () => {
    const text = renderDemoInstructions(demo.info);
    expect(text).toContain(`export SSHPASS=${demo.info.opsToken}`);
    for (const [verdict, command] of Object.entries(SSH_COMMANDS)) {
      expect(printed(verdict as keyof typeof SSH_COMMANDS).sshLine).toBe(
        `sshpass -e ssh -p ${demo.info.sshPort} -o UserKnownHostsFile=${demo.info.knownHostsFile} -o PreferredAuthentications=password bastion-1@127.0.0.1 '${command}'`,
      );
    }
    expect(readFileSync(demo.info.knownHostsFile, 'utf8')).toBe(`[127.0.0.1]:${demo.info.sshPort} ${demo.info.sshHostKey}\n`);
    expect(readFileSync(join(demo.info.state, 'ssh_host_ed25519_key.pub'), 'utf8')).toContain(demo.info.sshHostKey);
  });

  it('allow: ls lists the sample files', async () => {
    const r = await paste('allow');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const name of Object.keys(DEMO_FILES)) expect(r.stdout).toContain(name);
  });

  it('mask: cat of the secrets file shows the AWS key and the card number redacted, never in clear', async () => {
    const r = await paste('mask');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('AWS_ACCESS_KEY_ID=[REDACTED]');
    expect(r.stdout).toContain('BILLING_TEST_CARD=[REDACTED]');
    expect(r.stdout).toContain('APP_ENV=production');
    const all = r.stdout + r.stderr;
    expect(all).not.toContain(DEMO_AWS_KEY);
    expect(all).not.toContain(DEMO_CARD);
    expect(all).not.toContain(DEMO_CARD.replaceAll(' ', ''));
    // The file itself is untouched upstream: the gateway masked what it relayed.
    expect(readFileSync(join(demo.info.sshScratch, 'secrets.env'), 'utf8')).toContain(DEMO_AWS_KEY);
  });

  it('block: rm -rf exits 126 naming the rule, and nothing is deleted', async () => {
    const r = await paste('block');
    expect(r.code).toBe(126);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hoop: blocked by ops.ssh.no_recursive_delete: recursive deletes are not allowed on bastions\n');
    for (const name of Object.keys(DEMO_FILES)) expect(existsSync(join(demo.info.sshScratch, name))).toBe(true);
  });

  it('approve: systemctl restart waits for an sre, and runs once bob approves it with hoop approvals approve', async () => {
    let seen: (id: string) => void;
    const waiting = new Promise<string>((resolve) => (seen = resolve));
    const held = paste('approve', (stderr) => {
      const id = /hoop: waiting for approval (apr_[A-Za-z0-9_-]+) from sre \(rule ops\.ssh\.service_changes_need_sre\)/.exec(stderr)?.[1];
      if (id) seen(id);
    });
    const id = await waiting;
    const listed = await runCli(['approvals', 'list', '--admin', demo.info.adminUrl, '--json'], { HOOP_TOKEN: demo.info.dbaToken });
    expect(JSON.parse(listed.out)).toMatchObject([{ id, sub: 'agent-9', resource: 'ssh/bastion-1', statement: 'systemctl restart nginx', approvers: ['sre'] }]);
    // The ops agent cannot approve its own command.
    expect((await runCli(['approvals', 'approve', id, '--admin', demo.info.adminUrl], { HOOP_TOKEN: demo.info.opsToken })).code).toBe(1);
    const approved = await runCli(['approvals', 'approve', id, '--admin', demo.info.adminUrl, '--reason', 'deploy 7'], { HOOP_TOKEN: demo.info.dbaToken });
    expect(approved.code).toBe(0);
    const r = await held;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('systemctl restart nginx: done (demo box: nothing was changed)\n');
    expect(await verifyAuditFile(demo.info.auditFile)).toMatchObject({ ok: true });
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
