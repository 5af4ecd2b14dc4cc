// The seams between the PostgreSQL session engine (proxy/postgres/) and the gateway's services
// (identity, audit, recording, approvals, masking, metrics). The session code depends only on these
// interfaces; proxy/gateway.ts wires the real implementations together. Each service is built and
// tested on its own against this contract.

import type { ShadowRecord } from './enforcement/shadow.ts';
import type { Decision } from '../engine/response.ts';
import type { Identity, Request, Resource } from '../stdlib/facts.ts';

// ---------------------------------------------------------------------------------------------
// Identity

export type TokenResult =
  | { ok: true; identity: Identity; /** epoch ms */ expiresAt: number }
  | { ok: false; /** machine-readable: `expired`, `bad_signature`, `bad_audience`, `alg_not_allowed`, `ttl_too_long`, `malformed`, ... */ code: string; reason: string; /** best-effort claims of the rejected token, for the audit record */ claims?: Record<string, unknown> };

export interface TokenVerifier {
  verify(token: string): Promise<TokenResult>;
}

// ---------------------------------------------------------------------------------------------
// Audit: append-only, hash-chained. A record is written (handed to the kernel) before the request
// it is about is forwarded; if that fails, the request must not run (fail closed). When it must be
// fsync'd depends on `audit.durability` (proxy/audit/durability.ts).

export type AuditOutcome = 'executed' | 'blocked' | 'failed' | 'refused' | 'pending_approval' | 'denied';

export interface AuditRecordInput {
  type: 'decision' | 'connection_refused' | 'session_start' | 'session_end' | 'approval' | 'statement_result';
  session_id?: string;
  token?: { jti?: string; iss?: string };
  identity?: AuditIdentity;
  resource?: { kind: string; name: string };
  client_addr?: string;
  statement?: { fingerprint: string; normalized: string; kind: string };
  verdict?: Decision['verdict'];
  rules?: string[];
  masks?: string[];
  approval_id?: string;
  outcome?: AuditOutcome;
  reason?: string;
  rows?: number;
  duration_ms?: number;
  /** Links a statement_result record to its decision record. */
  decision_seq?: number;
  /** The front door the request came through (absent: the PostgreSQL wire, for records written before it existed). */
  front_door?: 'postgres' | 'ssh' | 'mcp';
  /** `policy_shadow`: what the candidate set would have enforced, when it differs (proxy/enforcement/shadow.ts). */
  shadow?: ShadowRecord;
}

/** Who a record is about: the resolved identity, as DESIGN.md's audit section names it. */
export interface AuditIdentity {
  sub: string;
  /** RFC 8693 `act.sub`. */
  actor?: string;
  /** The whole `act` chain, outermost first, when it has more than the one actor. */
  actors?: string[];
  client_id?: string;
  groups: string[];
}

export interface AuditAppendOptions {
  /**
   * The caller does not wait on this record (a statement's result, a session's end): it takes its
   * place in the chain now but is written with the next batch that someone does wait for, or within
   * a short bound, instead of costing a write and fsync of its own.
   */
  deferred?: boolean;
}

/** A sync of the audit log failed: records from `fromSeq` on may not be on disk. */
export type AuditSyncFailure = (error: Error, fromSeq: number) => void;

export interface AuditSink {
  /**
   * For a record that is itself what the client waits on (a refusal, an approval, a connection
   * refused, a session's end): resolves with its sequence number once it is as durable as an answer
   * needs (`commit`, `strict`: fsync'd; `async`: written). Rejects: nothing about it may be answered
   * as done. `deferred`: nobody waits on it (see AuditAppendOptions).
   */
  append(record: AuditRecordInput, options?: AuditAppendOptions): Promise<number>;
  /**
   * For a record about a request that is forwarded next: resolves with its sequence number once the
   * request may be forwarded (written; `strict`: fsync'd). Rejects: the request must not run.
   * `changes`: the request can change state (durability.ts `canChangeState`); its fsync starts at
   * once, to run while the upstream executes, and its answer waits for `beforeAnswer`.
   */
  beforeForward(record: AuditRecordInput, options?: { changes?: boolean }): Promise<number>;
  /**
   * Before the answer to a state-changing request goes out: undefined when it may go out now (its
   * record `seq` is durable, or the log is `async`); otherwise a promise that resolves once it is,
   * and rejects when the fsync failed (the answer must not go out: end the session with an error).
   */
  beforeAnswer(seq: number): Promise<void> | undefined;
  /**
   * Called when an fsync fails (the log then refuses every record until the gateway restarts): the
   * sessions that wrote a record at or after `fromSeq` are affected and end. Returns the unsubscribe.
   */
  onSyncFailure(listener: AuditSyncFailure): () => void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Recording: one JSON Lines file per session.

export interface SessionHeader {
  session_id: string;
  identity: Identity;
  resource: Resource;
  client_addr: string;
  user_param?: string;
  application_name?: string;
  started_at: string;
  policy_hash?: string;
  /** The front door of the session (absent: the PostgreSQL wire). */
  front_door?: 'postgres' | 'ssh' | 'mcp';
}

export interface StatementEvent {
  time: string;
  text: string;
  /** Parameter type OIDs for extended-protocol statements. */
  param_types?: number[];
  /** How the request travelled: PostgreSQL's simple or extended protocol, `ssh` (an exec, sftp request, shell or forward), or an MCP tool call. */
  protocol: 'simple' | 'extended' | 'ssh' | 'mcp';
  verdict: Decision['verdict'];
  reasons: string[];
  /** Output columns the masker actually masked, as `name (schema.table.column)`. */
  masks: string[];
  /**
   * The decision's masks (what the policy asked for), canonical and sorted: see
   * `describeMasks` in recording/format.ts. Optional: absent from recordings made before it existed.
   */
  decision_masks?: string[];
  approvers?: string[];
  approval_id?: string;
  outcome: AuditOutcome;
  error?: string;
  rows?: number;
  duration_ms?: number;
  kind?: string;
  fingerprint?: string;
  /**
   * Result values as sent to the client (already masked), one array per row. Written only when
   * `recording.results` is true; the recorder drops it otherwise.
   */
  results?: (string | null)[][];
  /** SSH requests: how the command ended and the bytes each way. */
  ssh?: {
    exit_code?: number;
    signal?: string;
    bytes_in: number;
    bytes_out: number;
    /** The channel's output as the client saw it (masked), an asciicast v2 file next to the recording (`recording.results` only). */
    cast?: string;
  };
}

/** What an asciicast of one channel starts with (its header). */
export interface ChannelCastStart {
  /** Terminal size (a PTY's; 80x24 without one). */
  cols: number;
  rows: number;
  term?: string;
  /** The command or `shell`: the cast's title. */
  title: string;
}

/** One channel's output being recorded as asciicast v2: what the client was sent, in order, timed. */
export interface ChannelCast {
  /** The file's name (in the recordings folder). */
  readonly file: string;
  output(data: Buffer): void;
  resize(cols: number, rows: number): void;
  /** Ends the file (idempotent). */
  end(): void;
}

export interface SessionRecorder {
  open(header: SessionHeader): Promise<SessionRecording>;
}

export interface SessionRecording {
  statement(event: StatementEvent): void;
  /**
   * An asciicast v2 file for one channel's output (an ssh exec or shell), or undefined when output
   * is not recorded (`recording.results` off) or the recorder has no files.
   */
  cast?(start: ChannelCastStart): ChannelCast | undefined;
  close(endedAt: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Approvals

export type ApprovalMode = 'hold' | 'return';

/**
 * One bound parameter value as the approver sees it: `text` as the client sent it, `binary`
 * decoded from a binary value of a known type, `hex` the bytes of a binary value of an unknown
 * type (or text that is not UTF-8). `truncated_from`: the value's length in characters when only
 * its start is shown (the approval is still bound to the whole value).
 */
export interface ApprovalParam {
  value: string | null;
  format: 'text' | 'binary' | 'hex';
  truncated_from?: number;
}

/**
 * What an approver is shown besides the statement (proxy/approvals/details.ts): why the policy asks
 * for an approval and what the request would run with.
 */
export interface ApprovalDetails {
  /** The action's kind: the statement's worst effect (`update`), `command`, an SFTP op, ... */
  kind: string;
  /** Tables read and written (SQL); write redirections (shell). */
  reads?: string[];
  writes?: string[];
  /** Shell: every program that would run. */
  programs?: string[];
  /** SFTP: the path (and the rename/symlink target). */
  paths?: string[];
  /** The rules that asked for the approval, with where they are (`file:line:col`). */
  rules: { id: string; at: string }[];
  /** The masks it would run with (`schema.table.column with masker (rule)`, ...). */
  masks: string[];
  /** The limits it would run with (`rows 100 (rule)`, ...). */
  limits: string[];
  /** Facts worth a second look (`no WHERE clause`). */
  notes?: string[];
}

export interface ApprovalRequest {
  identity: Identity;
  resource: Resource;
  /** Exact statement text (byte-identical re-send is what `return` mode matches on). */
  statement: string;
  /**
   * Extended protocol: the values of the Bind being approved (shown to the approver) and the
   * digest of their exact bytes, formats and types (part of what the approval is bound to).
   */
  params?: ApprovalParam[];
  paramsDigest?: string;
  fingerprint: string;
  approvers: string[];
  withinMs: number;
  session_id: string;
  /** The explanation, masks and limits shown to the approver (approvalDetails()). */
  details?: ApprovalDetails;
  /** `approve by N of`: distinct approvers needed (default 1). */
  quorum?: number;
  /** `lasting`: once approved, the same sub, resource and fingerprint run unasked for this long. */
  lastingMs?: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

export interface ApprovalRecord {
  id: string;
  sub: string;
  resource: string;
  statement: string;
  approvers: string[];
  status: ApprovalStatus;
  created_at: string;
  expires_at: string;
  decided_by?: string;
  reason?: string;
  /** The requester's `act.sub`, when the token named one (also barred from approving). */
  actor?: string;
  /** The requester's whole RFC 8693 chain, outermost first, when longer than `actor` (all barred from approving). */
  actors?: string[];
  decided_at?: string;
  session_id?: string;
  fingerprint?: string;
  /** Extended protocol: the bound parameter values this approval is for ($1, $2, ...). */
  params?: ApprovalParam[];
  /** Why it needs approval and what it would run with, when the requester's gateway said. */
  details?: ApprovalDetails;
  /** Distinct approvals needed, when more than one (`approve by N of`). */
  quorum?: number;
  /** Who approved so far (a quorum approval), in order. */
  approved_by?: string[];
  /** `lasting`: until when (once approved) the same fingerprint runs without a new request. */
  lasting_until?: string;
  lasting_ms?: number;
}

export interface ApprovalService {
  /** Creates (or, in return mode, finds the existing pending/approved) approval for this exact request. */
  request(req: ApprovalRequest): Promise<ApprovalRecord>;
  /** Return mode: an approved, unconsumed approval for the same identity+resource+statement → consume it (single use). */
  consumeApproved(req: ApprovalRequest): Promise<ApprovalRecord | undefined>;
  /** Hold mode: resolves when decided or expired (or the signal aborts). */
  wait(id: string, signal?: AbortSignal): Promise<ApprovalRecord>;
  list(filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]>;
  /**
   * A lasting approval (`lasting`) covering this request: approved for the same sub, resource and
   * fingerprint, its window not over. The request then runs without a new approval.
   */
  lasting?(req: ApprovalRequest): Promise<ApprovalRecord | undefined>;
  /** Hold mode, once `wait` resolved `approved`: marks the approval used (single use). False if it was already used or is no longer approved. */
  consume?(id: string): Promise<boolean>;
  /** The approver must be in one of the approver groups and must not be the requester. */
  decide(id: string, approver: Identity, decision: 'approve' | 'deny', reason?: string): Promise<{ ok: true; record: ApprovalRecord } | { ok: false; code: string; reason: string }>;
}

// ---------------------------------------------------------------------------------------------
// Masking: what the session asks of the masking layer for one statement's result.

/** A RowDescription field, as decoded by the wire codec. */
export interface ResultField {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: 0 | 1;
}

/** Per result set: either a row transformer or a refusal (the statement is blocked with this reason). */
export type MaskPlan =
  | { ok: true; /** Identity transform: rows pass untouched (fast path). */ passthrough: boolean; transformRow(values: (Buffer | null)[]): (Buffer | null)[]; maskedColumns: string[] }
  | { ok: false; reason: string };

/**
 * For each unqualified relation name of a statement, the schema(s) it resolves to in the session
 * (search_path, temporary tables: proxy/postgres/session/search-path.ts); names not listed, or no
 * map, leave every schema holding the name a candidate.
 */
export type RelationSchemas = Readonly<Record<string, readonly string[]>>;

export interface ResultMasker {
  /**
   * Before the statement runs: refuse statements whose data flow cannot be followed for these masks
   * (COPY of a masked table, a function of unknown effect over a masked column, ...). Fail closed.
   */
  precheck(args: { resource: Resource; statementText: string; masks: Decision['masks']; relationSchemas?: RelationSchemas }): Promise<{ ok: true } | { ok: false; reason: string }>;
  /**
   * Called once the statement's RowDescription is known. `statementText` is the single statement
   * that produced it; `masks` are the decision's masks. May query the upstream catalog (cached per resource).
   */
  plan(args: { resource: Resource; statementText: string; fields: ResultField[]; masks: Decision['masks']; relationSchemas?: RelationSchemas }): Promise<MaskPlan>;
  /**
   * How the text of an ErrorResponse or NoticeResponse answering this statement may reach the
   * client: `relay` it as it is, `mask` every text field with the content detectors, or `withhold`
   * it (the session replaces it with a generic message keeping SQLSTATE). Without this method a
   * masked statement's error text is withheld (fail closed).
   */
  errorText?(args: { resource: Resource; statementText: string; masks: Decision['masks'] }): Promise<ErrorTextPolicy>;
  /**
   * Forget what is cached about a resource's catalog. The session calls it when a transaction that
   * ran a schema-changing statement (DDL, DO, CALL) ends, so the next statement sees the new schema.
   */
  invalidate?(resourceName: string): void;
}

export type ErrorTextPolicy = { mode: 'relay' } | { mode: 'mask'; mask(text: string): string } | { mode: 'withhold'; reason: string };

/** Names the function a FunctionCall message calls (by OID, in the resource's database). */
export interface FunctionResolver {
  /** The function's schema and name, and its argument type OIDs (to show an approver binary arguments). */
  byOid(resource: Resource, oid: number): Promise<{ schema: string; name: string; argTypes?: number[] } | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Metrics

export interface GatewayMetrics {
  decision(verdict: Decision['verdict'], latencySeconds: number): void;
  sessionOpened(): void;
  sessionClosed(): void;
  connectionRefused(reason: string): void;
  /** A request decided by the shadow set too: whether it agreed, and the two verdicts when not. */
  shadowDecision?(active: Decision['verdict'], shadow: Decision['verdict'] | undefined): void;
  render(): string;
}

export type { Request, Decision };
