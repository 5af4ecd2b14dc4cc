// The audit records and recording events of one session, built here and only here. Built as
// literals, then extended by assignment: in Node 20's V8 an object literal that spreads another
// object and then adds properties (`{ ...base, k: v }`) costs about a microsecond per added
// property, which showed up in the per-statement profile.

import type { Decision } from '../../engine/response.ts';
import type { Action, Identity, Resource } from '../../stdlib/facts.ts';
import { auditIdentity } from '../audit/identity.ts';
import type { AuditOutcome, AuditRecordInput, SessionRecording, StatementEvent } from '../ports.ts';
import { decisionMasksField } from '../recording/format.ts';
import type { ConnectionRefusal, FrontDoor } from './types.ts';

type AuditStatement = NonNullable<AuditRecordInput['statement']>;

/**
 * The action as the audit names it, frozen and shared by every record about the same classified
 * action (the SQL classifier caches actions by text, so a repeated statement reuses it, and the
 * audit chain serialises it once).
 */
const auditStatements = new WeakMap<Action, AuditStatement>();
export function auditStatement(action: Action): AuditStatement {
  let s = auditStatements.get(action);
  if (!s) auditStatements.set(action, (s = Object.freeze({ fingerprint: fingerprintOf(action), normalized: action.type === 'sql' ? action.normalized : action.text, kind: action.kind })));
  return s;
}

/** What an approval of this action and a recording key on: the SQL fingerprint, or the text itself. */
export function fingerprintOf(action: Action): string {
  return action.type === 'sql' ? action.fingerprint : action.text;
}

/** The record of a connection refused before a session opened. */
export function connectionRefusedRecord(r: ConnectionRefusal): AuditRecordInput {
  const claims = r.claims;
  const tok = claims ? { token: { ...(typeof claims.jti === 'string' ? { jti: claims.jti } : {}), ...(typeof claims.iss === 'string' ? { iss: claims.iss } : {}) } } : {};
  return {
    type: 'connection_refused',
    session_id: r.sessionId,
    client_addr: r.clientAddr,
    outcome: 'refused',
    reason: `${r.code}: ${r.message.replace(/^hoop: /, '')}`,
    ...(r.protocol !== 'postgres' ? { front_door: r.protocol } : {}),
    ...tok,
    ...(r.identity ? { identity: auditIdentity(r.identity) } : typeof claims?.sub === 'string' ? { identity: { sub: claims.sub, groups: [] } } : {}),
    ...(r.resource ? { resource: { kind: r.resource.kind, name: r.resource.name } } : {}),
  };
}

function maskNames(d: Decision): string[] {
  if (d.masks.columns.length === 0 && d.masks.detectors.length === 0) return [];
  return d.masks.columns.map((c) => `${c.column}:${c.masker.name}`).concat(d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join('|')}:${m.masker.name}`));
}

/** One session's records: the fields every record shares are built once (the hot path audits every statement). */
export class SessionRecords {
  readonly #token: AuditRecordInput['token'];
  readonly #identity: AuditRecordInput['identity'];
  readonly #resource: AuditRecordInput['resource'];
  /** Absent for the PostgreSQL wire (records written before front doors were named have none). */
  readonly #frontDoor: AuditRecordInput['front_door'];

  constructor(
    readonly sessionId: string,
    identity: Identity,
    resource: Resource,
    readonly clientAddr: string,
    frontDoor: FrontDoor,
  ) {
    this.#frontDoor = frontDoor === 'postgres' ? undefined : frontDoor;
    // Frozen all the way down, so the audit chain serialises each once per session (chain.ts).
    const id = auditIdentity(identity);
    this.#token = Object.freeze({ ...(identity.token_id ? { jti: identity.token_id } : {}), ...(identity.issuer ? { iss: identity.issuer } : {}) });
    this.#identity = Object.freeze({ ...id, groups: Object.freeze([...id.groups]) as string[], ...(id.actors ? { actors: Object.freeze([...id.actors]) as string[] } : {}) });
    this.#resource = Object.freeze({ kind: resource.kind, name: resource.name });
  }

  /** A new record with the session's shared fields. */
  base(type: AuditRecordInput['type']): AuditRecordInput {
    const rec: AuditRecordInput = { type, session_id: this.sessionId, token: this.#token, identity: this.#identity, resource: this.#resource, client_addr: this.clientAddr };
    if (this.#frontDoor) rec.front_door = this.#frontDoor;
    return rec;
  }

  decision(action: Action, d: Decision, outcome: AuditOutcome | undefined, approvalId: string | undefined, reason: string | undefined): AuditRecordInput {
    const rec = this.base('decision');
    rec.statement = auditStatement(action);
    rec.verdict = d.verdict;
    rec.rules = d.reasons.map((r) => r.id);
    rec.masks = maskNames(d);
    if (approvalId) rec.approval_id = approvalId;
    if (outcome) rec.outcome = outcome;
    if (reason) rec.reason = reason;
    else if (d.verdict === 'block' && d.message) rec.reason = d.message;
    return rec;
  }

  /** A request refused before it could be classified: a block with no statement. */
  refusedRequest(message: string): AuditRecordInput {
    const rec = this.base('decision');
    rec.verdict = 'block';
    rec.rules = [];
    rec.masks = [];
    rec.outcome = 'blocked';
    rec.reason = message.replace(/^hoop: (?:blocked: )?/, '');
    return rec;
  }

  result(action: Action, verdict: Decision['verdict'], outcome: AuditOutcome, rows: number, durationMs: number, decisionSeq: number | undefined, error: string | undefined): AuditRecordInput {
    const rec = this.base('statement_result');
    rec.statement = auditStatement(action);
    rec.verdict = verdict;
    rec.outcome = outcome;
    rec.rows = rows;
    rec.duration_ms = Math.round(durationMs * 1000) / 1000;
    if (decisionSeq !== undefined) rec.decision_seq = decisionSeq;
    if (error) rec.reason = error;
    return rec;
  }
}

/** The recording event of one action. */
export function statementEvent(
  recording: SessionRecording | undefined,
  e: {
    text: string;
    protocol: StatementEvent['protocol'];
    paramTypes: number[] | undefined;
    action: Action;
    decision: Decision;
    approvalId: string | undefined;
    outcome: AuditOutcome;
    error: string | undefined;
    rows: number | undefined;
    durationMs: number;
    maskedColumns: string[] | undefined;
    ssh?: StatementEvent['ssh'] | undefined;
  },
): void {
  if (!recording) return;
  const d = e.decision;
  recording.statement({
    time: new Date().toISOString(),
    text: e.text,
    ...(e.paramTypes && e.paramTypes.length > 0 ? { param_types: e.paramTypes } : {}),
    protocol: e.protocol,
    verdict: d.verdict,
    reasons: d.reasons.map((r) => r.id),
    masks: e.maskedColumns ?? [],
    ...decisionMasksField(d),
    ...(d.approvers.length > 0 ? { approvers: d.approvers } : {}),
    ...(e.approvalId ? { approval_id: e.approvalId } : {}),
    outcome: e.outcome,
    ...(e.error ? { error: e.error } : {}),
    ...(e.rows !== undefined ? { rows: e.rows } : {}),
    duration_ms: e.durationMs,
    kind: e.action.kind,
    fingerprint: fingerprintOf(e.action),
    ...(e.ssh ? { ssh: e.ssh } : {}),
  });
}
