// The SSH front door from the gateway's configuration: its host key (generated into the state
// directory on first start), one route per `kind: ssh` resource, and the listener on `listen.ssh`.

import { join } from 'node:path';
import type { GatewayConfig } from '../config.ts';
import type { SshEnforcement } from './enforcement-port.ts';
import { loadOrCreateHostKey } from './host-key.ts';
import { DEFAULT_SSH_ENV } from './config.ts';
import { startSshListener, type SshListener, type SshRoute } from './server.ts';

export type SshStart = { ok: true; listener: SshListener; hostKey: string; generated: boolean; hostKeyFile: string } | { ok: false; errors: string[] };

export async function startSshFrontDoor(config: GatewayConfig, enforcement: SshEnforcement, log: (line: string) => void): Promise<SshStart> {
  const listen = config.listen.ssh;
  if (!listen) return { ok: false, errors: ['listen.ssh is not configured'] };
  const hostKeyFile = config.ssh?.hostKeyFile ?? join(config.state, 'ssh_host_ed25519_key');
  const key = loadOrCreateHostKey(hostKeyFile);
  if (!key.ok) return { ok: false, errors: [key.error] };
  const routes = new Map<string, SshRoute>();
  for (const r of config.resources) {
    if (r.kind === 'ssh' && r.ssh) routes.set(r.name, { resource: { kind: 'ssh', name: r.name, labels: r.labels }, upstream: r.ssh });
  }
  if (routes.size === 0) return { ok: false, errors: ['listen.ssh: no resource has `kind: ssh`'] };
  const listener = await startSshListener({
    host: listen.host,
    port: listen.port,
    hostKey: key.privateKey,
    resources: routes,
    enforcement,
    approvalMode: config.approvals.mode,
    env: config.ssh?.env ?? DEFAULT_SSH_ENV,
    ...(config.masking.hashKey ? { hashKey: config.masking.hashKey } : {}),
    log,
  });
  if (key.generated) log(`generated the SSH host key ${hostKeyFile} (${key.publicKey})`);
  return { ok: true, listener, hostKey: key.publicKey, generated: key.generated, hostKeyFile };
}
