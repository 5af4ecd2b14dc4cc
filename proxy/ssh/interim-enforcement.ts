// SshEnforcement over the protocol-neutral enforcement core (proxy/enforcement/): the front door's
// requests are classified here (stdlib's shell classifier; legacy scp and rsync as file
// operations) and handed to an EnforcementSession, which decides, resolves approvals, writes every
// audit record and recording event; its outcome is mapped back to the port's terms. Nothing here
// knows SSH; the front door sees only enforcement-port.ts.

import type { Action, Resource, ShellAction, ShellClassifier, SftpAction, SshAction } from '../../stdlib/facts.ts';
import { Enforcer, type EnforcerServices, type EnforcementSession, type FrontDoor, type Permit, type PolicyEvaluator, type RequestItem } from '../enforcement/index.ts';
import type { ApprovalService, AuditSink, SessionRecorder, TokenVerifier } from '../ports.ts';
import { formatDurationMs } from '../../language/ast.ts';
import { normalisePath } from './paths.ts';
import type { ExecFacts, SshConnectionRefusal, SshEnforcedSession, SshEnforcement, SshHooks, SshOutcome, SshRequest, SshResult, SshSessionStart } from './enforcement-port.ts';

export interface InterimEnforcementOptions {
  /** Which front door the sessions are (audited, recorded); default `ssh`. */
  protocol?: FrontDoor;
  verifier: TokenVerifier;
  policy: () => PolicyEvaluator | undefined;
  shell: ShellClassifier;
  audit: AuditSink;
  recorder?: SessionRecorder;
  approvals?: ApprovalService;
  approvalTimeoutMs?: number;
  log?: (line: string) => void;
  /** The gateway's rate-limit counters and shadow set (limit rate, policy_shadow), shared with the other front doors. */
  guardrails?: Pick<EnforcerServices, 'rateLimiter' | 'shadowPolicy' | 'estimator'>;
}

/** The request's actions: an exec is its shell command, or the file transfers a legacy scp / rsync server command is. */
export function actionsOf(req: SshRequest, shell: ShellClassifier): { actions: Action[]; text: string; kind: string } {
  switch (req.type) {
    case 'exec': {
      const action = shell.classify(req.command);
      const transfer = transferOf(action);
      if (transfer) {
        // Relative paths (and `~/`) are the login's home; without it known, they are decided as written (and match no absolute glob).
        const absolute = (p: string): string => (p.startsWith('/') ? normalisePath(p, '/') : req.cwd ? normalisePath(p === '~' ? '.' : p.replace(/^~\//, ''), req.cwd) : p);
        const actions: SftpAction[] = transfer.paths.map((path) => ({ type: 'sftp', kind: transfer.op, path: absolute(path), via: transfer.via, text: req.command }));
        return { actions, text: req.command, kind: `${transfer.via}_${transfer.op}` };
      }
      return { actions: [action], text: req.command, kind: action.kind === 'unknown' ? 'unknown' : 'exec' };
    }
    case 'sftp': {
      const text = `sftp ${req.op} ${req.path}${req.target !== undefined ? ` ${req.target}` : ''}`;
      const a: SftpAction = { type: 'sftp', kind: req.op, path: req.path, ...(req.target !== undefined ? { target: req.target } : {}), via: 'sftp', text };
      return { actions: [a], text, kind: `sftp_${req.op}` };
    }
    case 'interactive': {
      const text = req.pty ? `shell (pty${req.term ? ` ${req.term}` : ''})` : 'shell';
      const a: SshAction = { type: 'ssh', kind: 'interactive', pty: req.pty, ...(req.term ? { term: req.term } : {}), text };
      return { actions: [a], text, kind: 'interactive' };
    }
    case 'forward': {
      const text = `forward ${req.host}:${req.port}`;
      const a: SshAction = { type: 'ssh', kind: 'forward', pty: false, forward: { host: req.host, port: req.port }, text };
      return { actions: [a], text, kind: 'forward' };
    }
    case 'other': {
      const a: SshAction = { type: 'ssh', kind: 'unknown', pty: false, request: req.request, text: req.request };
      return { actions: [a], text: req.request, kind: 'unknown' };
    }
  }
}

/**
 * Legacy `scp -t/-f PATH` and `rsync --server [--sender] ... . PATH...`: file transfers spelled as
 * commands. Only a command that runs exactly that one program, without redirects, counts; anything
 * else (`scp -t x; rm y`) is a shell command like any other.
 */
export function transferOf(action: ShellAction): ExecFacts['transfer'] {
  if (action.kind !== 'command' || action.invocations.length !== 1 || action.redirects.length > 0 || action.dynamic) return undefined;
  const [inv] = action.invocations;
  if (!inv) return undefined;
  if (inv.program === 'scp') {
    let op: 'read' | 'write' | undefined;
    const paths: string[] = [];
    let endOfOptions = false;
    for (const arg of inv.args) {
      if (!endOfOptions && arg === '--') endOfOptions = true;
      else if (!endOfOptions && /^-[a-zA-Z]+$/.test(arg)) {
        if (arg.includes('t')) op = op === 'read' ? undefined : 'write';
        if (arg.includes('f')) op = op === 'write' ? undefined : 'read';
        if (!/^-[trfdpv]+$/.test(arg)) return undefined;
      } else paths.push(arg);
    }
    if (!op || paths.length === 0) return undefined;
    return { via: 'scp', op, paths };
  }
  if (inv.program === 'rsync' && inv.args[0] === '--server') {
    const dot = inv.args.indexOf('.');
    if (dot < 0) return undefined;
    const paths = inv.args.slice(dot + 1);
    // A daemon-mode server (`--daemon`) or a missing path is not a plain transfer.
    if (paths.length === 0 || inv.args.includes('--daemon')) return undefined;
    return { via: 'rsync', op: inv.args.includes('--sender') ? 'read' : 'write', paths };
  }
  return undefined;
}

/** Reading files by a transfer cannot be masked: refused when the verdict carries masks. */
const UNMASKABLE_TRANSFER = 'masks apply to this resource, and file contents are not masked: reading files by sftp, scp or rsync is refused (run a command such as cat, whose output is masked)';

export interface SshEnforcementOptions {
  verifier: TokenVerifier;
  shell: ShellClassifier;
  /** Which front door the sessions are (audited, recorded); default `ssh`. */
  protocol?: FrontDoor;
  log?: (line: string) => void;
}

/** The port over the gateway's one Enforcer (shared with the other front doors). */
export function createSshEnforcement(enforcer: Enforcer, opts: SshEnforcementOptions): SshEnforcement {
  const protocol = opts.protocol ?? 'ssh';
  return {
    verifyToken: (token) => opts.verifier.verify(token),

    refused(r: SshConnectionRefusal): Promise<void> {
      const colon = r.reason.indexOf(':');
      return enforcer.refuseConnection({
        protocol,
        sessionId: r.sessionId,
        clientAddr: r.clientAddr,
        code: colon > 0 ? r.reason.slice(0, colon) : r.reason,
        message: colon > 0 ? r.reason.slice(colon + 1).trim() : r.reason,
        ...(r.identity ? { identity: r.identity } : {}),
        ...(r.claims ? { claims: r.claims } : {}),
        ...(r.resource ? { resource: r.resource } : {}),
      });
    },

    async open(start: SshSessionStart): Promise<SshEnforcedSession> {
      const opened = await enforcer.openSession<RequestItem>({
        protocol,
        id: start.sessionId,
        identity: start.identity,
        expiresAt: start.expiresAt,
        resource: start.resource,
        clientAddr: start.clientAddr,
        client: { user: start.user },
        approvalMode: start.approvalMode,
      });
      if (!opened.ok) throw new Error(opened.message);
      const session: EnforcementSession<RequestItem> = opened.session;

      return {
        execFacts(command: string): ExecFacts {
          const transfer = transferOf(opts.shell.classify(command));
          return transfer ? { transfer } : {};
        },

        async decide(req: SshRequest, hooks: SshHooks): Promise<SshOutcome> {
          const started = performance.now();
          // Expiry is re-checked before every request; an expired identity runs nothing more.
          if (session.expired()) {
            await session.refuse('hoop: the token expired; reconnect with a fresh token');
            return { kind: 'refuse', message: 'hoop: the token expired; reconnect with a fresh token', expired: true };
          }
          let classified: ReturnType<typeof actionsOf>;
          try {
            classified = actionsOf(req, opts.shell);
          } catch (e) {
            opts.log?.(`classifier failed: ${(e as Error).message}`);
            await session.refuse('hoop: blocked: the gateway could not classify this request');
            return { kind: 'refuse', message: 'hoop: blocked: the gateway could not classify this request' };
          }
          const { actions, text } = classified;
          const readsFiles = actions.some((a) => a.type === 'sftp' && (a.kind === 'read' || a.kind === 'list'));
          let out = await session.decide({
            items: actions.map((action) => ({ action })),
            text,
            started,
            // Recorded as the front door the request came through (the MCP `run` tool: mcp).
            protocol: protocol === 'mcp' ? 'mcp' : 'ssh',
            ...(readsFiles ? { unmaskable: UNMASKABLE_TRANSFER } : {}),
          });
          if (out.kind === 'hold') {
            hooks.onHold(out.message);
            const held = out;
            const onAbort = () => held.cancel();
            hooks.signal?.addEventListener('abort', onAbort);
            try {
              out = await held.outcome;
            } finally {
              hooks.signal?.removeEventListener('abort', onAbort);
            }
          }
          if (out.kind === 'refuse') {
            return { kind: 'refuse', message: out.message, ...(out.approvalId ? { approvalId: out.approvalId } : {}), ...(out.endSession ? { expired: true } : {}) };
          }
          const permits: readonly Permit<RequestItem>[] = out.permits;
          let finished = false;
          const timeLimit = smallestTimeLimit(permits);
          return {
            kind: 'forward',
            masks: permits.flatMap((p) => p.masks.detectors),
            rules: [...new Set(permits.flatMap((p) => p.decision.reasons.map((r) => r.id)))],
            ...(timeLimit ? { timeLimit } : {}),
            cast: (start) => session.cast(start),
            beforeAnswer: () => Promise.all(permits.map((p) => session.beforeAnswer(p))).then(() => undefined),
            finish(result: SshResult) {
              if (finished) return;
              finished = true;
              const limited = result.limited;
              const error = limited
                ? `limit time ${formatDurationMs(limited.ms)} (rule ${limited.rule}): the gateway ended the command${limited.signal ? ` (SIG${limited.signal})` : ''}${limited.unconfirmed ? '; the upstream did not confirm it ended' : ''}`
                : (result.error ?? (result.signal ? `signal ${result.signal}` : undefined));
              const ssh = { ...(result.exitCode !== undefined ? { exit_code: result.exitCode } : {}), ...(result.signal ? { signal: result.signal } : {}), bytes_in: result.bytesIn, bytes_out: result.bytesOut, ...(result.cast ? { cast: result.cast } : {}) };
              for (const p of permits) {
                session.complete(p, { outcome: result.error || limited ? 'failed' : 'executed', rows: 0, durationMs: performance.now() - started, ssh, ...(error ? { error } : {}) });
              }
            },
          };
        },

        async close(): Promise<void> {
          session.close();
        },
      };
    },
  };
}

/** The `limit time` that ends the request: the smallest of its permits' (on a tie, the rule first by id). */
function smallestTimeLimit(permits: readonly Permit<RequestItem>[]): { ms: number; rule: string; message: string } | undefined {
  let best: { ms: number; rule: string } | undefined;
  for (const p of permits) {
    const t = p.limits.time;
    if (t && (!best || t.ms < best.ms || (t.ms === best.ms && t.rule < best.rule))) best = { ms: t.ms, rule: t.rule };
  }
  return best && { ...best, message: `hoop: command ended: it ran longer than ${formatDurationMs(best.ms)}, the limit time of rule ${best.rule}` };
}

/** The port over an Enforcer of its own, built from the gateway's services. */
export function createInterimEnforcement(opts: InterimEnforcementOptions): SshEnforcement {
  const enforcer = new Enforcer({ policy: opts.policy, audit: opts.audit, recorder: opts.recorder, approvals: opts.approvals, approvalTimeoutMs: opts.approvalTimeoutMs, ...opts.guardrails });
  return createSshEnforcement(enforcer, { verifier: opts.verifier, shell: opts.shell, ...(opts.protocol ? { protocol: opts.protocol } : {}), ...(opts.log ? { log: opts.log } : {}) });
}

export type { Resource };
