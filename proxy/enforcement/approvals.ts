// Resolving an approve verdict: `return` mode (use an approval already granted for the same
// request, else request one and refuse for now) or `hold` mode (request one and wait for its
// decision, bounded by `approvals.timeout`, stopped by a cancel or the session's end). An approval
// is single use, and the identity is checked again after the wait.

import type { Decision } from '../../engine/response.ts';
import type { Action, Identity, Resource } from '../../stdlib/facts.ts';
import type { ApprovalMode, ApprovalParam, ApprovalRecord, ApprovalRequest, ApprovalService } from '../ports.ts';
import { approvalDetails } from '../approvals/details.ts';
import { fingerprintOf } from './records.ts';

export type ApprovalResult =
  | { ok: true; id: string }
  | { ok: false; id?: string; pending: boolean; message: string; detail?: string; sqlstate?: string; tokenExpired?: true };

export interface ApprovalContext {
  service: ApprovalService | undefined;
  mode: ApprovalMode;
  /** Hold mode: how long a held request waits (`approvals.timeout`); undefined or 0: as long as the approval may take. */
  timeoutMs: number | undefined;
  identity: Identity;
  resource: Resource;
  sessionId: string;
  expiresAt: number;
  /** Aborts on the session's end. */
  ended: AbortSignal;
  /** Where the wait now in progress is kept, so a cancel can stop it. */
  waits: { current: AbortController | undefined };
}

export interface ApprovalAsk {
  action: Action;
  decision: Decision;
  text: string;
  params: { params: ApprovalParam[]; digest: string } | undefined;
  /** Hold mode: the approval is recorded and the wait begins (tell the client). */
  onHeld(rec: ApprovalRecord): void;
}

export async function resolveApproval(ctx: ApprovalContext, ask: ApprovalAsk): Promise<ApprovalResult> {
  const svc = ctx.service;
  if (!svc) return { ok: false, pending: false, message: 'hoop: blocked: this statement needs an approval and approvals are not configured' };
  const d = ask.decision;
  const req: ApprovalRequest = {
    identity: ctx.identity,
    resource: ctx.resource,
    statement: ask.text,
    ...(ask.params ? { params: ask.params.params, paramsDigest: ask.params.digest } : {}),
    fingerprint: fingerprintOf(ask.action),
    approvers: d.approvers,
    withinMs: d.approvalWithinMs ?? 15 * 60_000,
    session_id: ctx.sessionId,
    details: approvalDetails(ask.action, d),
    // `approve by N of`: the store counts distinct approvers (one alone must not release it).
    ...(d.approvalQuorum ? { quorum: d.approvalQuorum } : {}),
    ...(d.approvalLastingMs ? { lastingMs: d.approvalLastingMs } : {}),
  };
  const rules = d.reasons.map((r) => r.id).join(', ');
  try {
    // `lasting`: an approval of the same fingerprint, still in its window, covers this request.
    if (req.lastingMs !== undefined) {
      const lasting = await svc.lasting?.(req);
      if (lasting) return { ok: true, id: lasting.id };
    }
    if (ctx.mode === 'return') {
      const used = await svc.consumeApproved(req);
      if (used) return { ok: true, id: used.id };
      const rec = await svc.request(req);
      return {
        ok: false,
        id: rec.id,
        pending: true,
        message: `hoop: approval required (${rec.id}) by ${rules}: ask a member of ${d.approvers.join(', ')} to approve, then re-send the same statement`,
        detail: `approval id: ${rec.id}`,
      };
    }
    // Listening for a cancel from before the approval is recorded: one that arrived while it was
    // being written used to be lost, and the request stayed held.
    const wait = new AbortController();
    const waits = ctx.waits;
    waits.current = wait;
    let rec: ApprovalRecord;
    try {
      rec = await svc.request(req);
    } finally {
      if (waits.current === wait) waits.current = undefined;
    }
    ask.onHeld(rec);
    let final: ApprovalRecord = rec;
    if (rec.status === 'pending') {
      waits.current = wait;
      const onEnd = (): void => wait.abort();
      ctx.ended.addEventListener('abort', onEnd);
      if (ctx.ended.aborted) wait.abort();
      // `approvals.timeout` bounds how long a held request waits (the approval itself stays valid
      // for the rule's `within`; a later re-send can use it in return mode).
      let timedOut = false;
      const limit = ctx.timeoutMs;
      const timer = limit !== undefined && limit > 0 ? setTimeout(() => ((timedOut = true), wait.abort()), limit) : undefined;
      const stopped = (): ApprovalResult =>
        timedOut
          ? { ok: false, id: rec.id, pending: true, sqlstate: '57014', message: `hoop: approval ${rec.id} was not decided within ${Math.round(limit! / 1000)}s`, detail: `approval id: ${rec.id}` }
          : { ok: false, id: rec.id, pending: true, sqlstate: '57014', message: `hoop: canceled while waiting for approval ${rec.id}`, detail: `approval id: ${rec.id}` };
      try {
        final = await svc.wait(rec.id, wait.signal);
      } catch (e) {
        if (!wait.signal.aborted) throw e;
        return stopped();
      } finally {
        clearTimeout(timer);
        if (waits.current === wait) waits.current = undefined;
        ctx.ended.removeEventListener('abort', onEnd);
      }
      if (wait.signal.aborted && final.status === 'pending') return stopped();
    }
    if (final.status === 'approved') {
      // The identity is re-checked after the wait: a token that expired meanwhile runs nothing
      // (the approval is left unused, so the same identity can re-send with a fresh token).
      if (Date.now() >= ctx.expiresAt) {
        return { ok: false, id: final.id, pending: false, tokenExpired: true, sqlstate: '28000', message: `hoop: the token expired while the statement waited for approval; reconnect with a fresh token`, detail: `approval id: ${final.id} (approved, not used)` };
      }
      // Single use: a second request cannot ride on the same approval.
      if (svc.consume && !(await svc.consume(final.id))) {
        return { ok: false, id: final.id, pending: false, message: `hoop: approval ${final.id} was already used`, detail: `approval id: ${final.id}` };
      }
      return { ok: true, id: final.id };
    }
    return {
      ok: false,
      id: final.id,
      pending: false,
      message: `hoop: approval ${final.id} ${final.status}${final.reason ? `: ${final.reason}` : ''}`,
      detail: `approval id: ${final.id}`,
    };
  } catch (e) {
    return { ok: false, pending: false, message: `hoop: blocked: the approval service failed: ${(e as Error).message}` };
  }
}
