// The `run` tool's enforcement: the SSH front door's decide-request-to-outcome port, built over the
// gateway's audit log and recorder with the records marked as the MCP front door's (`front_door:
// mcp`, recorded `protocol: mcp`). Undefined when no resource has `kind: ssh`.

import { loadShellClassifier } from '../../stdlib/shell/index.ts';
import type { GatewayConfig } from '../config.ts';
import type { ApprovalService, AuditSink, SessionRecorder, TokenVerifier } from '../ports.ts';
import { createSessionRecorder } from '../recording/index.ts';
import type { SshUpstream } from '../ssh/config.ts';
import { createInterimEnforcement, type InterimEnforcementOptions } from '../ssh/interim-enforcement.ts';
import type { McpSettings } from './settings.ts';
import { SshRunner } from './ssh-run.ts';

/** The audit log as the MCP front door writes to it: every record names it. */
export function mcpAudit(audit: AuditSink): AuditSink {
  return {
    append: (r, o) => audit.append({ ...r, front_door: 'mcp' }, o),
    beforeForward: (r, o) => audit.beforeForward({ ...r, front_door: 'mcp' }, o),
    beforeAnswer: (seq) => audit.beforeAnswer(seq),
    onSyncFailure: (l) => audit.onSyncFailure(l),
    close: async () => undefined,
  };
}

function mcpRecorder(recorder: SessionRecorder): SessionRecorder {
  return {
    async open(header) {
      const rec = await recorder.open({ ...header, front_door: 'mcp' });
      return { statement: (e) => rec.statement({ ...e, protocol: 'mcp' }), close: (at) => rec.close(at) };
    },
  };
}

export async function mcpSshRunner(o: {
  config: GatewayConfig;
  verifier: TokenVerifier;
  policy: InterimEnforcementOptions['policy'];
  audit: AuditSink;
  approvals: ApprovalService;
  settings: McpSettings;
  log: (line: string) => void;
}): Promise<SshRunner | undefined> {
  const upstreams = new Map<string, SshUpstream>();
  for (const r of o.config.resources) if (r.kind === 'ssh' && r.ssh) upstreams.set(r.name, r.ssh);
  if (upstreams.size === 0) return undefined;
  const enforcement = createInterimEnforcement({
    verifier: o.verifier,
    policy: o.policy,
    shell: await loadShellClassifier(),
    audit: mcpAudit(o.audit),
    approvals: o.approvals,
    recorder: mcpRecorder(createSessionRecorder({ dir: o.config.recording.dir, results: o.config.recording.results })),
    log: o.log,
  });
  return new SshRunner({ enforcement, upstreams, ...(o.config.masking.hashKey ? { hashKey: o.config.masking.hashKey } : {}), maxBytes: o.settings.maxResultBytes, timeoutMs: o.settings.statementTimeoutMs });
}
