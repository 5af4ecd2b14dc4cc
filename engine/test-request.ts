// Requests for engine tests, written the short way the YAML cases use (engine/cases/*.yaml).

import type { Action, Request, SftpOp, SqlKind } from '../stdlib/facts.ts';

export interface CaseRequest {
  sub?: string;
  groups?: string[];
  actor?: string;
  claims?: Record<string, unknown>;
  resource?: string;
  time?: string;
  sql?: { kind: SqlKind; reads?: string[]; writes?: string[]; has_where?: boolean; limit?: number | null; estimate?: { rows: number; cost: number } };
  shell?: { kind?: 'command' | 'unknown'; programs: string[]; redirects?: string[] };
  sftp?: { op: SftpOp; path: string; target?: string; via?: 'sftp' | 'scp' | 'rsync' };
  /** `interactive`, `forward` (with `forward`), `unknown` (agent/X11/subsystems, with `request`). */
  ssh?: { kind: 'interactive' | 'forward' | 'unknown'; pty?: boolean; term?: string; request?: string; forward?: { host: string; port: number } };
}

export function buildRequest(r: CaseRequest): Request {
  const [kind, name] = (r.resource ?? 'postgres:prod-main').split(':') as ['postgres' | 'ssh', string];
  let action: Action;
  if (r.sftp) {
    action = { type: 'sftp', kind: r.sftp.op, path: r.sftp.path, ...(r.sftp.target !== undefined ? { target: r.sftp.target } : {}), via: r.sftp.via ?? 'sftp', text: `sftp ${r.sftp.op} ${r.sftp.path}` };
  } else if (r.ssh) {
    action = { type: 'ssh', kind: r.ssh.kind, pty: r.ssh.pty ?? false, ...(r.ssh.term ? { term: r.ssh.term } : {}), ...(r.ssh.request ? { request: r.ssh.request } : {}), ...(r.ssh.forward ? { forward: r.ssh.forward } : {}), text: r.ssh.kind };
  } else if (r.shell) {
    action = {
      type: 'shell', kind: r.shell.kind ?? 'command', programs: r.shell.programs,
      invocations: r.shell.programs.map((program) => ({ program, args: [] })), args: [],
      redirects: r.shell.redirects ?? [], dynamic: false, interpreters: [], text: r.shell.programs.join(' | '),
    };
  } else {
    const s = r.sql ?? { kind: 'select' };
    action = {
      type: 'sql', kind: s.kind, effects: [s.kind], reads: s.reads ?? [], writes: s.writes ?? [], columns: [], functions: [],
      has_where: s.has_where ?? true, limit: s.limit ?? null, text: '', normalized: '', fingerprint: '',
      ...(s.estimate ? { estimate: s.estimate } : {}),
    };
  }
  return {
    identity: { sub: r.sub ?? 'agent-1', groups: r.groups ?? [], actor: r.actor, claims: r.claims ?? {} },
    resource: { kind, name, labels: {} },
    action,
    context: { time: r.time ?? '2026-01-01T10:00:00Z', client_addr: '127.0.0.1', session_id: 's1' },
  };
}

