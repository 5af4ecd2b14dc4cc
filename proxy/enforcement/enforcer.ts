// The gateway's one enforcer: the services every front door's sessions share (the current policy,
// the audit log, the recorder, the approval store, the masker, metrics).

import { randomUUID } from 'node:crypto';
import type { ApprovalService, AuditSink, GatewayMetrics, ResultMasker, SessionRecorder } from '../ports.ts';
import type { RateLimiter } from '../state/rate-limits.ts';
import type { Resource, SqlAction, SqlEstimate } from '../../stdlib/facts.ts';
import { connectionRefusedRecord } from './records.ts';
import { EnforcementSession } from './session.ts';
import type { ConnectionRefusal, OpenFailure, PolicyEvaluator, RequestItem, SessionOpen } from './types.ts';

export interface EnforcerServices {
  /** The current policy; read once per request, so a reload swaps atomically. */
  policy(): PolicyEvaluator | undefined;
  audit: AuditSink;
  recorder?: SessionRecorder | undefined;
  approvals?: ApprovalService | undefined;
  /** Hold mode: how long a held request waits for a decision (config `approvals.timeout`). */
  approvalTimeoutMs?: number | undefined;
  masker?: ResultMasker | undefined;
  metrics?: GatewayMetrics | undefined;
  /** `policy_shadow`: a candidate set decided next to the active one and never enforced (shadow.ts). */
  shadowPolicy?: (() => PolicyEvaluator | undefined) | undefined;
  /** `limit rate` counters (the state store). Without one, a request carrying a rate limit is refused (fail closed). */
  rateLimiter?: RateLimiter | undefined;
  /** Cost facts (`sql.estimate`): the upstream's EXPLAIN. Without one, rules reading them block. */
  estimator?: { estimate(resource: Resource, action: SqlAction, searchPath?: string): Promise<SqlEstimate | { error: string }> } | undefined;
}

const noop = (): void => undefined;

export class Enforcer {
  constructor(private readonly svc: EnforcerServices) {}

  /** The policy now in force. */
  get policy(): PolicyEvaluator | undefined {
    return this.svc.policy();
  }

  /**
   * A session opens: its `session_start` record is written (durable before this resolves) and its
   * recording opened. A failure is a value: nothing may be forwarded; end the connection with its message.
   */
  async openSession<T extends RequestItem = RequestItem>(open: SessionOpen<T>): Promise<{ ok: true; session: EnforcementSession<T> } | OpenFailure> {
    const session = new EnforcementSession<T>(this.svc, open, open.id ?? randomUUID());
    try {
      session.wrote(await this.svc.audit.beforeForward(session.records.base('session_start')));
    } catch {
      return { ok: false, reason: 'audit_failed', message: 'hoop: the audit log could not be written; the session was not opened' };
    }
    if (this.svc.recorder) {
      try {
        session.attachRecording(
          await this.svc.recorder.open({
            session_id: session.id,
            identity: open.identity,
            resource: open.resource,
            client_addr: open.clientAddr,
            ...(open.client?.user ? { user_param: open.client.user } : {}),
            ...(open.client?.application_name ? { application_name: open.client.application_name } : {}),
            started_at: new Date().toISOString(),
            ...(open.protocol !== 'postgres' ? { front_door: open.protocol } : {}),
          }),
        );
      } catch {
        return { ok: false, reason: 'recording_failed', message: 'hoop: the session recording could not be opened' };
      }
    }
    session.watchAudit();
    this.svc.metrics?.sessionOpened();
    return { ok: true, session };
  }

  /**
   * A connection refused before a session opened: audited (before the client is told: wait for
   * it) and counted. Never rejects (a failed write still refuses).
   */
  refuseConnection(r: ConnectionRefusal): Promise<void> {
    this.svc.metrics?.connectionRefused(r.code);
    return this.svc.audit.append(connectionRefusedRecord(r)).then(noop, noop);
  }
}
