// The vocabulary between a front door (proxy/postgres, proxy/ssh, proxy/mcp) and the enforcement
// core: what a front door hands over (a session, then requests), and the outcome it applies in its
// own protocol. Nothing here names a socket or a protocol message. See index.ts for how a front
// door uses it.

import type { Decision, Limits, Masks } from '../../engine/response.ts';
import type { Action, Identity, Request, Resource } from '../../stdlib/facts.ts';
import type { ApprovalMode, ApprovalParam, AuditOutcome, RelationSchemas, StatementEvent } from '../ports.ts';

/** Which front door a session came through (audited, recorded). */
export type FrontDoor = 'postgres' | 'ssh' | 'mcp';

/** What enforcement needs of a compiled policy (engine/index.ts `PreparedPolicy`). */
export interface PolicyEvaluator {
  evaluate(request: Request): Decision;
  /** A rule that may apply reads `sql.estimate` (engine `needsEstimate`): ask EXPLAIN first. Absent: never. */
  needsEstimate?(request: Request): boolean;
  /** The set's hash (shadow records name the candidate by it). */
  readonly hash?: string;
  /** Every `on tables` glob of the set (engine PreparedPolicy.tableScopes): what an opaque statement may read. */
  readonly tableScopes: readonly string[];
}

/**
 * The limits a verdict carries (engine/response.ts, DESIGN.md "Limits"): restrictions on a request
 * that runs, never a grant. The front door applies `rows` and `time` in its protocol (cut the
 * result, cancel upstream); `rate` is counted before forwarding.
 */
export type { Limits };

/** A session as the front door opens it, once the identity is verified and the resource chosen. */
export interface SessionOpen<T extends RequestItem = RequestItem> {
  protocol: FrontDoor;
  /** The front door's own id for the connection (refusals before the session opened used it); default a fresh UUID. */
  id?: string;
  identity: Identity;
  /** When the identity's token expires (epoch ms): `expired()` reads it before each request. */
  expiresAt: number;
  resource: Resource;
  clientAddr: string;
  /** What the client said about itself, recorded and never trusted (PostgreSQL's `user` and `application_name`). */
  client?: { user?: string; application_name?: string };
  /** How approvals are resolved for this session (the config's mode, or the connection's own choice). */
  approvalMode: ApprovalMode;
  hooks?: SessionHooks<T>;
}

/**
 * What only the front door knows about its session, asked for by enforcement when it needs it
 * (created once per session: no per-request closures).
 */
export interface SessionHooks<T extends RequestItem = RequestItem> {
  /**
   * For the masker: the schema(s) each unqualified relation name of this item resolves to in the
   * session (PostgreSQL: search_path and temporary tables). Undefined: every schema is a candidate.
   */
  relationSchemas?(item: T): RelationSchemas | undefined;
  /** The refusal's text in the front door's own terms (PostgreSQL: the parser's message and SQLSTATE for a statement that does not parse). */
  refusalText?(item: T, text: RefusalText): RefusalText;
  /**
   * The audit log could not be made durable (an fsync failed) while records of this session were in
   * doubt: what they were about must not be answered as done. End the connection with an error.
   */
  auditLost?(): void;
  /** The search_path EXPLAIN runs under for this item's cost facts (PostgreSQL: the session's). */
  searchPath?(item: T): string | undefined;
}

/**
 * One action of a request: the facts stdlib classified, plus what the front door knows about it.
 * A front door may pass its own objects (extending this); they come back as `Permit.item`.
 */
export interface RequestItem {
  readonly action: Action;
  /** The front door refuses this action whatever the policy says (it could not be classified, its names cannot be resolved...). */
  readonly refused?: string | undefined;
  /**
   * Another reading of the same action, decided too (PostgreSQL: a built-in name a user's function
   * may shadow is decided as the call it may be and as written): the same answer both ways stands;
   * otherwise the action is refused rather than lose either rule.
   */
  readonly alsoAs?: Action | undefined;
  /** The text whose data flow masks this action's results, when not its own (a FETCH: its cursor's query). */
  readonly lineageText?: string | undefined;
  /** A SQL statement's libpg-query node, when the front door has it (a view definition reads nothing into a copy). */
  readonly ast?: unknown;
}

/** One request: one or several actions that run together or not at all (a message of several statements). */
export interface EnforcementRequest<T extends RequestItem = RequestItem> {
  readonly items: readonly T[];
  /** The request as the client sent it: what an approver sees and an approval is bound to (`return` mode: byte-identical re-send). */
  readonly text: string;
  /** Values bound to the request (extended-protocol parameters, function arguments), shown to approvers and part of what an approval is for. */
  readonly params?: { readonly params: ApprovalParam[]; readonly digest: string } | undefined;
  /**
   * `now` (default): an approve verdict is resolved before the outcome. `per_execution`: a single
   * approved action is forwarded with `needsApproval` (audited as pending), and each execution gets
   * its own approval through `EnforcementSession.approve` (PostgreSQL: at every Bind, for its values).
   */
  readonly approval?: 'now' | 'per_execution';
  /** `performance.now()` when the request arrived: decision latency and recorded durations. */
  readonly started: number;
  /** How the request travelled, for the recording. */
  readonly protocol: StatementEvent['protocol'];
  /** Parameter type ids, recorded with each statement. */
  readonly paramTypes?: number[] | undefined;
  /** The text recorded for each action instead of its own (a PostgreSQL Parse: the whole Parse text). */
  readonly recordedText?: string;
  /** Masks cannot be applied to this request's results: a verdict with masks is refused with this reason. */
  readonly unmaskable?: string;
  /**
   * When `limit rate` counts it: `now` (default) once, as it is decided; `per_execution` at each
   * execution, through `EnforcementSession.admit(permit)` (PostgreSQL: a Parse is decided once and
   * may be executed many times, and each execution is a request).
   */
  readonly rate?: 'now' | 'per_execution';
}

/** Permission to run one action, with what to apply while it runs and the handle to complete it with. */
export interface Permit<T extends RequestItem = RequestItem> {
  readonly item: T;
  readonly action: Action;
  readonly decision: Decision;
  /** The masks to apply to what it returns (the decision's; empty when `masked` is false). */
  readonly masks: Masks;
  readonly masked: boolean;
  readonly limits: Limits;
  readonly approvalId: string | undefined;
  /** The sequence number of its decision record: `complete` links the result to it. */
  readonly auditSeq: number | undefined;
  /**
   * It can change state and its record was written, not yet made durable (`audit.durability`
   * commit): its answer (a command's completion, an error) goes out only once
   * `EnforcementSession.beforeAnswer(permit)` settles (at once inside an open transaction block
   * for a statement that stays in it; the block's end waits instead).
   */
  readonly answerAfter: number | undefined;
  /** What the recording names it by. */
  readonly text: string;
  readonly protocol: StatementEvent['protocol'];
  readonly paramTypes: number[] | undefined;
  /** `per_execution`: it needs an approval (`EnforcementSession.approve`) for each execution. */
  readonly needsApproval: boolean;
}

/** Run these actions (all of them), applying each permit's masks and limits; `complete` each once it ended. */
export interface Forward<T extends RequestItem = RequestItem> {
  readonly kind: 'forward';
  readonly permits: readonly Permit<T>[];
  readonly approvalId: string | undefined;
}

/**
 * Wait: an approval was requested (hold mode). Tell the client `message` now; `outcome` settles to
 * forward or refuse once the approval is decided, expired, the wait timed out, or `cancel()` (a
 * client's cancel) or the session's close stopped it. It never rejects.
 */
export interface Hold<T extends RequestItem = RequestItem> {
  readonly kind: 'hold';
  readonly approvalId: string;
  readonly approvers: readonly string[];
  readonly rules: readonly string[];
  readonly message: string;
  readonly detail: string;
  readonly outcome: Promise<Forward<T> | Refuse<T>>;
  cancel(): void;
}

export type RefuseReason =
  /** A rule (or the default) blocked it, or the gateway did (`rules` empty: unclassifiable, no policy...). */
  | 'blocked'
  /** Masks apply and cannot be guaranteed for it. */
  | 'masks'
  /** Return mode: the approval was requested; re-send once it is approved. */
  | 'approval_required'
  /** The approval was denied, expired, already used, timed out, cancelled, or the approval service failed. */
  | 'approval'
  /** The token expired while the request waited for approval: the session ends. */
  | 'token_expired'
  /** A `limit rate` budget is spent (SQLSTATE 53400, with when to retry). */
  | 'rate_limited'
  /** Its audit record could not be written: nothing ran. */
  | 'audit_failed';

/** The words of a refusal (a SQL front door's ErrorResponse; another front door's message). */
export interface RefusalText {
  message: string;
  detail?: string;
  hint?: string;
  /** The SQLSTATE a SQL front door answers with (42501 when absent). */
  sqlstate?: string;
  /** A 1-based character position in the request text, when the refusal is about one. */
  position?: number;
}

/** Do not run any of it; say this. Audited and recorded already. */
export interface Refuse<T extends RequestItem = RequestItem> extends RefusalText {
  readonly kind: 'refuse';
  readonly reason: RefuseReason;
  /** The rules that decided it (empty when the gateway itself refused). */
  readonly rules: readonly string[];
  /** The item that was refused (the others were refused with it). */
  readonly item: T | undefined;
  readonly approvalId: string | undefined;
  /** The session cannot go on (the token expired): end it with this text. */
  readonly endSession: boolean;
}

export type Outcome<T extends RequestItem = RequestItem> = Forward<T> | Hold<T> | Refuse<T>;

/** How a forwarded action ended, for its result record and the recording. */
export interface Completion {
  outcome: Extract<AuditOutcome, 'executed' | 'failed' | 'blocked'>;
  rows: number;
  durationMs: number;
  /** Why it failed or was stopped (already masked: the front door's text). */
  error?: string | undefined;
  /** The output columns the masker actually masked (recorded). */
  maskedColumns?: string[] | undefined;
  /** An SSH request: how the command ended and the bytes each way (recorded). */
  ssh?: StatementEvent['ssh'] | undefined;
}

/** A connection refused before a session could open (bad token, TLS required, unknown resource...). */
export interface ConnectionRefusal {
  protocol: FrontDoor;
  sessionId: string;
  clientAddr: string;
  /** Machine-readable: `expired`, `tls_required`, `unknown_resource`, ... */
  code: string;
  /** What the client is told (a leading `hoop: ` is dropped in the record). */
  message: string;
  identity?: Identity | undefined;
  /** Best-effort claims of a rejected token (jti, iss, sub are recorded). */
  claims?: Record<string, unknown> | undefined;
  resource?: Resource | undefined;
}

/** Why a session could not be opened: nothing was forwarded; end the connection with `message`. */
export type OpenFailure = { ok: false; reason: 'audit_failed' | 'recording_failed'; message: string };
