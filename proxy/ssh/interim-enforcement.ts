// SshEnforcement over the gateway's services, until the protocol-neutral core (proxy/enforcement/)
// takes this place: classify (stdlib shell classifier), decide (the policy in force), approvals
// (hold / return), audit (one record per decision, before the request is forwarded) and recording.
// Nothing here knows SSH; the front door sees only enforcement-port.ts.

import { createHash } from 'node:crypto';
import type { Decision } from '../../engine/response.ts';
import type { Action, Identity, Request, Resource, ShellAction, ShellClassifier, SftpAction, SshAction } from '../../stdlib/facts.ts';
import type { ApprovalRecord, ApprovalRequest, ApprovalService, AuditRecordInput, AuditSink, SessionRecorder, SessionRecording, TokenVerifier } from '../ports.ts';
import type { PolicyEvaluator } from '../enforcement/index.ts';
import { normalisePath } from './paths.ts';
import type { ExecFacts, SshConnectionRefusal, SshEnforcedSession, SshEnforcement, SshHooks, SshOutcome, SshRequest, SshResult, SshSessionStart } from './enforcement-port.ts';

export interface InterimEnforcementOptions {
  verifier: TokenVerifier;
  policy: () => PolicyEvaluator | undefined;
  shell: ShellClassifier;
  audit: AuditSink;
  recorder?: SessionRecorder;
  approvals?: ApprovalService;
  approvalTimeoutMs?: number;
  log?: (line: string) => void;
}

const NO_MASKS = { columns: [], detectors: [] };

function gatewayBlock(message: string): Decision {
  return { verdict: 'block', masks: NO_MASKS, approvers: [], message, reasons: [], defaulted: false, errors: [] };
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

/** The most restrictive of several decisions (block ⊒ approve ⊒ mask ⊒ allow), masks and approvers united. */
function combine(decisions: Decision[]): Decision {
  const block = decisions.find((d) => d.verdict === 'block');
  if (block) return block;
  const approve = decisions.find((d) => d.verdict === 'approve');
  const detectors = decisions.flatMap((d) => d.masks.detectors);
  const columns = decisions.flatMap((d) => d.masks.columns);
  const base = approve ?? decisions.find((d) => d.verdict === 'mask') ?? decisions[0]!;
  return { ...base, masks: { columns, detectors }, approvers: [...new Set(decisions.flatMap((d) => d.approvers))].sort() };
}

function rulesOf(d: Decision): string {
  return d.reasons.map((r) => r.id).join(', ');
}

export function blockMessage(d: Decision): string {
  const rules = rulesOf(d);
  const msg = d.message ?? 'blocked by policy';
  return rules ? `hoop: blocked by ${rules}: ${msg}` : `hoop: blocked: ${msg}`;
}

export function createInterimEnforcement(opts: InterimEnforcementOptions): SshEnforcement {
  const { audit } = opts;
  const auditIdentity = (i: Identity) => ({ sub: i.sub, ...(i.actor ? { actor: i.actor } : {}), groups: i.groups });
  return {
    verifyToken: (token) => opts.verifier.verify(token),

    async refused(r: SshConnectionRefusal): Promise<void> {
      const claims = r.claims;
      const rec: AuditRecordInput = {
        type: 'connection_refused',
        session_id: r.sessionId,
        client_addr: r.clientAddr,
        outcome: 'refused',
        reason: r.reason,
        ...(claims ? { token: { ...(typeof claims.jti === 'string' ? { jti: claims.jti } : {}), ...(typeof claims.iss === 'string' ? { iss: claims.iss } : {}) } } : r.identity ? { token: { ...(r.identity.token_id ? { jti: r.identity.token_id } : {}), ...(r.identity.issuer ? { iss: r.identity.issuer } : {}) } } : {}),
        ...(r.identity ? { identity: auditIdentity(r.identity) } : typeof claims?.sub === 'string' ? { identity: { sub: claims.sub, groups: [] } } : {}),
        ...(r.resource ? { resource: { kind: r.resource.kind, name: r.resource.name } } : {}),
      };
      await audit.append(rec).catch((e: Error) => opts.log?.(`audit: ${e.message}`));
    },

    async open(start: SshSessionStart): Promise<SshEnforcedSession> {
      const base = (type: AuditRecordInput['type']): AuditRecordInput => ({
        type,
        session_id: start.sessionId,
        token: { ...(start.identity.token_id ? { jti: start.identity.token_id } : {}), ...(start.identity.issuer ? { iss: start.identity.issuer } : {}) },
        identity: auditIdentity(start.identity),
        resource: { kind: start.resource.kind, name: start.resource.name },
        client_addr: start.clientAddr,
      });
      await audit.append(base('session_start'));
      let recording: SessionRecording | undefined;
      if (opts.recorder) {
        try {
          recording = await opts.recorder.open({
            session_id: start.sessionId,
            identity: start.identity,
            resource: start.resource,
            client_addr: start.clientAddr,
            user_param: start.user,
            started_at: new Date().toISOString(),
          });
        } catch (e) {
          opts.log?.(`recording: ${(e as Error).message}`);
        }
      }

      const decideActions = (actions: Action[]): Decision => {
        const policy = opts.policy();
        if (!policy) return gatewayBlock('no policy is loaded');
        const context = { time: new Date().toISOString(), client_addr: start.clientAddr, session_id: start.sessionId };
        try {
          return combine(actions.map((action) => policy.evaluate({ identity: start.identity, resource: start.resource, action, context } satisfies Request)));
        } catch (e) {
          // The engine never throws by contract; fail closed if it does.
          return gatewayBlock(`policy evaluation failed: ${(e as Error).message}`);
        }
      };

      const approval = async (d: Decision, text: string, fingerprint: string, hooks: SshHooks): Promise<{ ok: true; id: string } | { ok: false; id?: string; message: string; expired?: true }> => {
        const svc = opts.approvals;
        if (!svc) return { ok: false, message: 'hoop: blocked: this request needs an approval and approvals are not configured' };
        const req: ApprovalRequest = {
          identity: start.identity,
          resource: start.resource,
          statement: text,
          fingerprint,
          approvers: d.approvers,
          withinMs: d.approvalWithinMs ?? 15 * 60_000,
          session_id: start.sessionId,
        };
        const rules = rulesOf(d);
        try {
          if (start.approvalMode === 'return') {
            const used = await svc.consumeApproved(req);
            if (used) return { ok: true, id: used.id };
            const rec = await svc.request(req);
            return { ok: false, id: rec.id, message: `hoop: approval required (${rec.id}) by ${rules}: ask a member of ${d.approvers.join(', ')} to approve, then run the same command again` };
          }
          const rec = await svc.request(req);
          hooks.onHold(`hoop: waiting for approval ${rec.id} from ${d.approvers.join(', ')} (rule ${rules})`);
          let final: ApprovalRecord = rec;
          if (rec.status === 'pending') {
            const wait = new AbortController();
            const onAbort = () => wait.abort();
            hooks.signal?.addEventListener('abort', onAbort);
            let timedOut = false;
            const limit = opts.approvalTimeoutMs;
            const timer = limit !== undefined && limit > 0 ? setTimeout(() => ((timedOut = true), wait.abort()), limit) : undefined;
            try {
              final = await svc.wait(rec.id, wait.signal);
            } catch (e) {
              if (!wait.signal.aborted) throw e;
            } finally {
              clearTimeout(timer);
              hooks.signal?.removeEventListener('abort', onAbort);
            }
            if (final.status === 'pending') {
              return { ok: false, id: rec.id, message: timedOut ? `hoop: approval ${rec.id} was not decided within ${Math.round(limit! / 1000)}s` : `hoop: canceled while waiting for approval ${rec.id}` };
            }
          }
          if (final.status === 'approved') {
            if (Date.now() >= start.expiresAt) return { ok: false, id: final.id, expired: true, message: 'hoop: the token expired while the request waited for approval; reconnect with a fresh token' };
            if (svc.consume && !(await svc.consume(final.id))) return { ok: false, id: final.id, message: `hoop: approval ${final.id} was already used` };
            return { ok: true, id: final.id };
          }
          return { ok: false, id: final.id, message: `hoop: approval ${final.id} ${final.status}${final.reason ? `: ${final.reason}` : ''}` };
        } catch (e) {
          return { ok: false, message: `hoop: blocked: the approval service failed: ${(e as Error).message}` };
        }
      };

      const record = (text: string, kind: string, fingerprint: string, d: Decision, outcome: AuditRecordInput['outcome'] & string, extra: { approvalId?: string; error?: string; result?: SshResult; started: number }) => {
        recording?.statement({
          time: new Date().toISOString(),
          text,
          protocol: 'ssh',
          kind,
          fingerprint,
          verdict: d.verdict,
          reasons: d.reasons.map((r) => r.id),
          masks: [],
          decision_masks: d.masks.detectors.map((m) => `detect ${m.detectors.map((x) => x.name).join(',')} with ${m.masker.name} (${m.rule})`),
          ...(d.approvers.length ? { approvers: d.approvers } : {}),
          ...(extra.approvalId ? { approval_id: extra.approvalId } : {}),
          outcome,
          ...(extra.error ? { error: extra.error } : {}),
          duration_ms: Math.round(performance.now() - extra.started),
          ...(extra.result ? { ssh: { exit_code: extra.result.exitCode, signal: extra.result.signal, bytes_in: extra.result.bytesIn, bytes_out: extra.result.bytesOut } } : {}),
        });
      };

      return {
        execFacts(command: string): ExecFacts {
          const transfer = transferOf(opts.shell.classify(command));
          return transfer ? { transfer } : {};
        },

        async decide(req: SshRequest, hooks: SshHooks): Promise<SshOutcome> {
          const started = performance.now();
          let classified: ReturnType<typeof actionsOf>;
          try {
            classified = actionsOf(req, opts.shell);
          } catch (e) {
            classified = { actions: [], text: req.type === 'exec' ? req.command : req.type, kind: 'unknown' };
            opts.log?.(`classifier failed: ${(e as Error).message}`);
          }
          const { actions, text, kind } = classified;
          const fingerprint = createHash('sha256').update(`${kind}\u0000${text}`).digest('hex').slice(0, 16);
          const statement = { fingerprint, normalized: text, kind };
          const decisionRecord = (d: Decision, outcome: NonNullable<AuditRecordInput['outcome']>, reason?: string, approvalId?: string): AuditRecordInput => ({
            ...base('decision'),
            statement,
            verdict: d.verdict,
            rules: d.reasons.map((r) => r.id),
            masks: d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join(',')}:${m.masker.name}`),
            ...(approvalId ? { approval_id: approvalId } : {}),
            outcome,
            ...(reason ? { reason } : {}),
          });
          // Expiry is re-checked before every request; an expired identity runs nothing more.
          if (Date.now() >= start.expiresAt) {
            const d = gatewayBlock('the token expired');
            await audit.append(decisionRecord(d, 'refused', 'expired: the token expired during the session')).catch(() => undefined);
            record(text, kind, fingerprint, d, 'refused', { started, error: 'token expired' });
            return { kind: 'refuse', message: 'hoop: the token expired; reconnect with a fresh token', expired: true };
          }
          let d = actions.length === 0 ? gatewayBlock('the gateway could not classify this request') : decideActions(actions);
          // File transfers carry file contents, which the content detectors do not see: a transfer
          // whose verdict carries masks is refused rather than sent in clear (docs/ssh.md).
          if (d.verdict !== 'block' && d.masks.detectors.length > 0 && actions.some((a) => a.type === 'sftp' && a.kind === 'read')) {
            d = { ...d, verdict: 'block', message: 'masks apply to this resource, and file contents are not masked: reading files by sftp, scp or rsync is refused (run a command such as cat, whose output is masked)' };
          }
          if (d.verdict === 'block') {
            const message = blockMessage(d);
            try {
              await audit.append(decisionRecord(d, 'blocked', d.message));
            } catch {
              // Audited or not, a block stays a block.
            }
            record(text, kind, fingerprint, d, 'blocked', { started, error: message });
            return { kind: 'refuse', message };
          }
          let approvalId: string | undefined;
          if (d.verdict === 'approve') {
            const a = await approval(d, text, fingerprint, hooks);
            approvalId = a.id;
            if (!a.ok) {
              const outcome = a.expired ? 'refused' : a.id && !a.message.includes('denied') && !a.message.includes('expired') ? 'pending_approval' : 'blocked';
              await audit.append(decisionRecord(d, outcome, a.message.replace(/^hoop: /, ''), a.id)).catch(() => undefined);
              record(text, kind, fingerprint, d, outcome, { started, error: a.message, ...(a.id ? { approvalId: a.id } : {}) });
              return { kind: 'refuse', message: a.message, ...(a.id ? { approvalId: a.id } : {}), ...(a.expired ? { expired: true } : {}) };
            }
          }
          // The decision is audited before anything is forwarded: a failed write runs nothing.
          // Everything but a read of files can change the upstream's state (a command can do anything).
          const changes = !actions.every((a) => a.type === 'sftp' && (a.kind === 'read' || a.kind === 'list' || a.kind === 'stat'));
          let seq: number;
          try {
            seq = await audit.beforeForward(decisionRecord(d, 'executed', undefined, approvalId), { changes });
          } catch (e) {
            record(text, kind, fingerprint, d, 'failed', { started, error: 'audit write failed' });
            return { kind: 'refuse', message: `hoop: blocked: the audit record could not be written (${(e as Error).message})` };
          }
          let finished = false;
          return {
            kind: 'forward',
            masks: d.masks.detectors,
            rules: d.reasons.map((r) => r.id),
            beforeAnswer: () => audit.beforeAnswer(seq) ?? Promise.resolve(),
            finish(result: SshResult) {
              if (finished) return;
              finished = true;
              const outcome = result.error ? 'failed' : 'executed';
              record(text, kind, fingerprint, d, outcome, { started, result, ...(approvalId ? { approvalId } : {}), ...(result.error ? { error: result.error } : {}) });
              void audit
                .append(
                  {
                    ...base('statement_result'),
                    statement,
                    outcome,
                    duration_ms: Math.round(performance.now() - started),
                    decision_seq: seq,
                    ...(result.error ? { reason: result.error } : result.signal ? { reason: `signal ${result.signal}` } : result.exitCode !== undefined ? { reason: `exit ${result.exitCode}` } : {}),
                  },
                  { deferred: true },
                )
                .catch(() => undefined);
            },
          };
        },

        async close(): Promise<void> {
          await audit.append(base('session_end'), { deferred: true }).catch(() => undefined);
          await recording?.close(new Date().toISOString()).catch(() => undefined);
        },
      };
    },
  };
}

export type { Resource };
