// `hoop approvals list|approve ID|deny ID|open`: talks to the gateway's admin API (found with
// --admin URL or --config FILE's listen.admin) with the caller's token from HOOP_TOKEN.
// Exit codes: 0 ok, 1 the gateway refused (not an approver, already decided, ...), 2 usage.
import type { Command } from 'commander';
import { loadAdminEndpoint, renderConfigErrors } from '../../proxy/config.ts';
import { AdminClient, type AdminClientError } from '../../proxy/admin/client.ts';
import type { ApprovalParam, ApprovalRecord, ApprovalStatus } from '../../proxy/ports.ts';
import { escapeControls as esc, jsonForTerminal, oneLine } from '../../stdlib/terminal-text.ts';

interface Common {
  admin?: string;
  config?: string;
  json?: boolean;
}

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'consumed', 'all'];

export function register(program: Command): void {
  const approvals = program.command('approvals').description('list and decide pending approvals (admin API)');
  const common = (c: Command) =>
    c
      .option('--admin <url>', 'admin API base URL, e.g. http://127.0.0.1:6480')
      .option('--config <file>', 'gateway config (uses its listen.admin)')
      .option('--json', 'print JSON');

  common(approvals.command('list').description('approvals you requested or may decide'))
    .option('--status <status>', `filter: ${STATUSES.join(', ')}`, 'pending')
    .action(async (o: Common & { status: string }) => {
      if (!STATUSES.includes(o.status)) return usage(`hoop approvals list: --status must be one of ${STATUSES.join(', ')}`);
      const client = connect(o);
      if (!client) return;
      const r = await client.list(o.status === 'all' ? undefined : (o.status as ApprovalStatus));
      if (!r.ok) return refused(r, o.json);
      if (o.json) {
        process.stdout.write(jsonForTerminal(r.value.map(shape), 2) + '\n');
        return;
      }
      if (r.value.length === 0) {
        process.stdout.write(`no ${o.status === 'all' ? '' : `${o.status} `}approvals\n`);
        return;
      }
      for (const a of r.value) process.stdout.write(render(a));
    });

  common(approvals.command('open').description('print a one-time sign-in link to the approvals page (/ui/) for your token'))
    .action(async (o: Common) => {
      const client = connect(o);
      if (!client) return;
      const r = await client.link();
      if (!r.ok) return refused(r, o.json);
      if (o.json) process.stdout.write(jsonForTerminal(r.value) + '\n');
      else process.stdout.write(`${esc(r.value.url)}\n(open it in your browser before ${esc(r.value.expires_at)}; it signs in once, as you)\n`);
    });

  for (const decision of ['approve', 'deny'] as const) {
    common(approvals.command(decision).description(`${decision} an approval`).argument('<id>', 'approval id (apr_...)'))
      .option('--reason <text>', 'why (recorded in the approval and the audit log)')
      .action(async (id: string, o: Common & { reason?: string }) => {
        const client = connect(o);
        if (!client) return;
        const r = await client.decide(id, decision, o.reason);
        if (!r.ok) return refused(r, o.json);
        if (o.json) process.stdout.write(jsonForTerminal(shape(r.value), 2) + '\n');
        else process.stdout.write(`${esc(r.value.id)}: ${esc(r.value.status)} (${esc(r.value.sub)} on ${esc(r.value.resource)})\n`);
      });
  }
}

/** The documented JSON shape (DESIGN.md): id, sub, resource, statement, approvers, expires_at, plus status and decision details. */
function shape(a: ApprovalRecord): Record<string, unknown> {
  return {
    id: a.id,
    sub: a.sub,
    actor: a.actor,
    resource: a.resource,
    statement: a.statement,
    ...(a.params ? { params: a.params } : {}),
    approvers: a.approvers,
    status: a.status,
    created_at: a.created_at,
    expires_at: a.expires_at,
    decided_by: a.decided_by,
    reason: a.reason,
  };
}

/** Human output: every field that came from a token, a client or an approver is escaped (terminal-text.ts). */
function render(a: ApprovalRecord): string {
  const who = a.actor ? `${esc(a.sub)} (for ${esc(a.actor)})` : esc(a.sub);
  const decided = a.decided_by ? `, ${esc(a.status)} by ${esc(a.decided_by)}${a.reason ? `: ${esc(a.reason)}` : ''}` : '';
  const params = (a.params ?? []).map((p, i) => `    $${i + 1} = ${paramText(p)}\n`).join('');
  return `${esc(a.id)}  ${esc(a.status)}  ${who} on ${esc(a.resource)}, approvers ${esc(a.approvers.join(', '))}, expires ${esc(a.expires_at)}${decided}\n    ${oneLine(a.statement)}\n${params}`;
}

/** A bound value as a SQL literal would show it (quotes doubled, controls escaped), with how it was sent. */
function paramText(p: ApprovalParam): string {
  if (p.value === null) return 'NULL';
  const cut = p.truncated_from !== undefined ? ` ... (the first ${Array.from(p.value).length} of ${p.truncated_from} characters)` : '';
  if (p.format === 'hex') return `bytes ${esc(p.value)}${cut} (hex)`;
  return `'${esc(p.value.replace(/'/g, "''"))}'${cut}${p.format === 'binary' ? ' (sent in binary)' : ''}`;
}

function connect(o: Common): AdminClient | undefined {
  const token = process.env.HOOP_TOKEN?.trim();
  if (!token) {
    usage('hoop approvals: set HOOP_TOKEN to your token (e.g. `export HOOP_TOKEN=$(hoop token mint --sub you --groups dba)` in development)');
    return undefined;
  }
  let base = o.admin;
  if (!base && o.config) {
    // Only `listen.admin` (and whether `tls` is on): an approver has none of the gateway's secrets.
    const r = loadAdminEndpoint(o.config);
    if (!r.ok) {
      usage(renderConfigErrors(o.config, r.errors));
      return undefined;
    }
    base = r.url;
  }
  if (!base) {
    usage('hoop approvals: give --admin URL or --config FILE');
    return undefined;
  }
  try {
    new URL(base);
  } catch {
    usage(`hoop approvals: --admin: not a URL: ${base}`);
    return undefined;
  }
  return new AdminClient(base, token);
}

function refused(e: AdminClientError, json?: boolean): void {
  if (json) process.stdout.write(jsonForTerminal({ error: { code: e.code, message: e.message, status: e.status } }) + '\n');
  else process.stderr.write(`hoop approvals: ${esc(e.code)}: ${esc(e.message)}\n`);
  process.exitCode = e.code === 'unreachable' || e.status === 401 ? 2 : 1;
}

function usage(msg: string): void {
  process.stderr.write(msg + '\n');
  process.exitCode = 2;
}
