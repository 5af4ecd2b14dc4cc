// One Enforcer per gateway process, seen from outside: the whole gateway (runGateway) with the
// PostgreSQL listener, listen.ssh and /mcp, against a real PostgreSQL 15 and a real sshd. A
// `limit rate` rule for every kind of resource is one budget per identity whichever front door
// spends it (`psql`, `ssh bastion-1@gateway CMD`, MCP `query` and `run`), every front door's
// records are in the one audit chain (`hoop audit verify` over the file passes), and the metrics
// count every front door's sessions.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, freePort, type Cluster } from '../../testing/pg-cluster.ts';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { run as runPg } from '../postgres/test-support.ts';
import { runWithToken } from '../ssh/test-support.ts';
import { sshResourceOf, startMcpGateway, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `package t
default allow

rule one_budget {
  limit rate 4 per 1h
}
`;

let cluster: Cluster;
let sshd: Sshd;
let gw: McpGateway;
let sshPort: number;

beforeAll(async () => {
  [cluster, sshd] = await Promise.all([startCluster(), startSshd()]);
  sshPort = await freePort();
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.listen = { ...c.listen, ssh: { host: '127.0.0.1', port: sshPort } };
    c.resources.push(sshResourceOf(sshd));
  });
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([cluster?.stop(), sshd?.stop()]);
});

const RATE = /rate limit exceeded: rule t\.one_budget allows 4 requests per 1h/;

async function psql(token: string, sql: string): Promise<string> {
  const conninfo = `host=127.0.0.1 port=${gw.running.gateway.postgresPort} dbname=prod-main user=x password=${token} sslmode=disable`;
  const r = await runPg(join(cluster.binDir, 'psql'), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql, conninfo]);
  return r.code === 0 ? 'ok' : r.stderr.trim();
}

async function ssh(token: string, command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runWithToken(token, [
    'ssh', '-F', '/dev/null', '-p', String(sshPort), '-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no',
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', '-o', 'LogLevel=ERROR',
    'bastion-1@127.0.0.1', command,
  ]);
}

describe('one enforcer for every front door', () => {
  it('one limit rate budget per identity across psql, ssh, MCP query and MCP run', async () => {
    const token = await gw.token({ sub: 'agent-x' });
    const client = await gw.http(token);
    expect(await psql(token, 'SELECT 1')).toBe('ok');
    const viaSsh = await ssh(token, 'echo one');
    expect(viaSsh.stdout, viaSsh.stderr).toBe('one\n');
    const q = await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT 2' } });
    expect(q.isError, textOf(q)).toBeFalsy();
    const r = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: 'echo two' } });
    expect(r.isError, textOf(r)).toBeFalsy();
    // Four requests through four doors: the budget is spent for each of them.
    expect(await psql(token, 'SELECT 3')).toMatch(RATE);
    const sshRefused = await ssh(token, 'echo three');
    expect(sshRefused.code).toBe(126);
    expect(sshRefused.stderr).toMatch(RATE);
    expect(textOf(await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql: 'SELECT 4' } }))).toMatch(RATE);
    expect(textOf(await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: 'echo four' } }))).toMatch(RATE);
  });

  it("every front door's records are in the one audit chain (hoop audit verify passes) and its sessions in the one metrics registry", async () => {
    const records = gw.auditRecords();
    const doors = new Set(records.filter((r) => r.type === 'decision').map((r) => (r.front_door as string | undefined) ?? 'postgres'));
    expect([...doors].sort()).toEqual(['mcp', 'postgres', 'ssh']);
    // Each session the enforcer opened wrote a session_start and counted one session.
    const started = records.filter((r) => r.type === 'session_start').length;
    const metrics = await (await fetch(`${gw.running.admin!.url}/metrics`)).text();
    expect(metrics).toContain(`hoop_sessions_total ${started}\n`);
    const verify = await runPg(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'cli', 'main.ts'), 'audit', 'verify', gw.config.audit.file]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
