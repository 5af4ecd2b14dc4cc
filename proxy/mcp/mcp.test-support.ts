// Shared set-up for the MCP front door's tests: the whole gateway as `hoop gateway` runs it
// (runGateway: policy from a folder, real verifier with the development issuer, audit log,
// approvals, masker, admin API with /mcp) in front of a throwaway PostgreSQL 15, and the MCP SDK's
// own client over Streamable HTTP or over stdio (spawning `hoop mcp`).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import type { Cluster } from '../../testing/pg-cluster.ts';
import type { GatewayConfig, ResourceConfig } from '../config.ts';
import type { Sshd } from '../../testing/sshd.ts';
import { openDevIssuer, type DevIssuer } from '../identity/index.ts';
import { gatewayConfig } from '../postgres/test-support.ts';
import { runGateway, type RunningGateway } from '../run.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface McpGateway {
  running: RunningGateway;
  issuer: DevIssuer;
  stateDir: string;
  config: GatewayConfig;
  /** A config file with listen.admin (what `hoop mcp --config` reads). */
  configFile: string;
  mcpUrl: string;
  token(o?: { sub?: string; groups?: string[]; ttlMs?: number }): Promise<string>;
  /** The SDK client over Streamable HTTP, initialized. */
  http(token: string): Promise<Client>;
  /** The SDK client over stdio, spawning `hoop mcp --config FILE` with HOOP_TOKEN. */
  stdio(token: string): Promise<Client>;
  /** Lines of the audit log. */
  auditRecords(): Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startMcpGateway(cluster: Cluster, policyText: string, tweak?: (c: GatewayConfig) => void): Promise<McpGateway> {
  const stateDir = mkdtempSync(join(tmpdir(), 'hoop-mcp-'));
  const issuer = await openDevIssuer(stateDir);
  const config = gatewayConfig(cluster, stateDir, issuer, 'prod-main');
  config.listen = { ...config.listen, admin: { host: '127.0.0.1', port: 0 } };
  mkdirSync(config.policy, { recursive: true });
  writeFileSync(join(config.policy, 'test.hoop'), policyText);
  tweak?.(config);
  const started = await runGateway(config, { log: () => undefined });
  if (!started.ok) throw new Error(started.errors.join('\n'));
  const running = started.running;
  const adminUrl = running.admin!.url;
  const configFile = join(stateDir, 'hoop.yaml');
  writeFileSync(configFile, stringify({ listen: { admin: `127.0.0.1:${running.admin!.port}` } }));
  const clients: Client[] = [];
  const g: McpGateway = {
    running,
    issuer,
    stateDir,
    config,
    configFile,
    mcpUrl: `${adminUrl}/mcp`,
    token: (o = {}) => issuer.mint({ sub: o.sub ?? 'agent-7', groups: o.groups ?? ['data-reader'], ttlMs: o.ttlMs ?? 600_000 }),
    async http(token) {
      const c = new Client({ name: 'hoop-test', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(g.mcpUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      clients.push(c);
      return c;
    },
    async stdio(token) {
      const c = new Client({ name: 'hoop-test-stdio', version: '1' });
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), 'mcp', '--config', configFile],
        env: { PATH: process.env.PATH ?? '', HOOP_TOKEN: token },
        cwd: ROOT,
        stderr: 'pipe',
      });
      await c.connect(transport);
      clients.push(c);
      return c;
    },
    auditRecords() {
      return readFileSync(config.audit.file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      await running.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return g;
}

/** The text of a tool result. */
export function textOf(r: unknown): string {
  const content = (r as CallToolResult).content ?? [];
  return content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

export function structured<T = Record<string, unknown>>(r: unknown): T {
  return (r as CallToolResult).structuredContent as T;
}

/** A `kind: ssh` resource for the gateway's config: the test sshd, its client key and pinned host key. */
export function sshResourceOf(sshd: Sshd, name = 'bastion-1'): ResourceConfig {
  return {
    name,
    kind: 'ssh',
    upstream: `ssh://${sshd.host}:${sshd.port}`,
    labels: {},
    tls: { mode: 'disable' },
    ssh: { host: sshd.host, port: sshd.port, user: sshd.user, privateKey: readFileSync(sshd.clientKeyFile, 'utf8'), hostKeys: [sshd.hostKey], hostKeySource: 'host_key' },
  };
}
