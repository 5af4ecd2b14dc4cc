// The `run` tool's enforcement: the SSH request port (shell classification into actions, legacy
// scp/rsync as file operations) over the gateway's one Enforcer, its sessions opened as the MCP
// front door's (`protocol: mcp`: audited `front_door: mcp`, recorded `protocol: mcp`), so a
// command decided through MCP shares the policy, audit chain, recorder, approvals, metrics and
// `limit rate` budget of every other front door. Undefined when no resource has `kind: ssh`.

import type { ShellClassifier } from '../../stdlib/facts.ts';
import type { GatewayConfig } from '../config.ts';
import type { Enforcer } from '../enforcement/index.ts';
import type { TokenVerifier } from '../ports.ts';
import type { SshUpstream } from '../ssh/config.ts';
import { createSshEnforcement } from '../ssh/interim-enforcement.ts';
import type { McpSettings } from './settings.ts';
import { SshRunner } from './ssh-run.ts';

export function mcpSshRunner(o: {
  config: GatewayConfig;
  enforcer: Enforcer;
  verifier: TokenVerifier;
  shell: ShellClassifier;
  settings: McpSettings;
  log: (line: string) => void;
}): SshRunner | undefined {
  const upstreams = new Map<string, SshUpstream>();
  for (const r of o.config.resources) if (r.kind === 'ssh' && r.ssh) upstreams.set(r.name, r.ssh);
  if (upstreams.size === 0) return undefined;
  const enforcement = createSshEnforcement(o.enforcer, { protocol: 'mcp', verifier: o.verifier, shell: o.shell, log: o.log });
  return new SshRunner({ enforcement, upstreams, ...(o.config.masking.hashKey ? { hashKey: o.config.masking.hashKey } : {}), maxBytes: o.settings.maxResultBytes, timeoutMs: o.settings.statementTimeoutMs });
}
