// What the MCP front door needs from enforcement, and nothing else: the tools (tools.ts) decode a
// call, hand it here, and turn the outcome into a tool result. Deciding, approvals, masks, audit
// and recording are behind this interface; the front door only runs what it is permitted to run,
// applies the permit's mask plan and limits to the rows, and reports how it ended.

import type { Masks } from '../../engine/response.ts';
import type { Identity, Resource, SqlAction } from '../../stdlib/facts.ts';
import type { ApprovalRecord, MaskPlan, ResultField } from '../ports.ts';

/** Who is calling: the identity of a verified token, and where from. */
export interface McpCaller {
  identity: Identity;
  /** When the token expires (epoch ms): every call checks it first. */
  expiresAt: number;
  clientAddr: string;
  /** The MCP session (audited, recorded). */
  sessionId: string;
}

/** An upstream connection's view of itself, read once when it was opened (what statements are resolved against). */
export interface UpstreamSession {
  /** current_setting('search_path') after DISCARD ALL: what an unqualified name resolves through. */
  searchPath: string;
  /** current_user: what `$user` in the search_path stands for. */
  user: string;
}

/** Permission to run one statement of a `query` call. */
export interface SqlPermit {
  readonly text: string;
  /** The statement's own SQL text, as the classifier split the call's text: what is sent upstream (its own portal). */
  readonly statement: string;
  /**
   * A write's RETURNING rows (INSERT/UPDATE/DELETE/MERGE at the top): read to the end past the row
   * cap and dropped (the write runs in full anyway; its command tag stands). Any other statement is
   * stopped upstream at its cap.
   */
  readonly readToEnd: boolean;
  readonly action: SqlAction;
  readonly masks: Masks;
  readonly masked: boolean;
  /** `limit rows N` of the policy, the smallest applying. */
  readonly rowLimit: { max: number; rule: string } | undefined;
  /** `limit time D` of the policy, the shortest applying: the statement is cancelled upstream after it. */
  readonly timeLimit: { ms: number; rule: string } | undefined;
  /** The mask plan for this statement's result set, once its fields are known. Fail closed: `ok: false` refuses the call. */
  plan(fields: ResultField[]): Promise<MaskPlan>;
  /** How an upstream error answering this statement may be shown (masked statements: never in clear). */
  errorText(message: string): Promise<string>;
  /** Before its result goes out: a state-changing statement's record must be durable first (undefined: now). Rejects: do not answer. */
  beforeAnswer(): Promise<void> | undefined;
  /** Once it ended: the result record (audit) and the recording event. */
  complete(c: { outcome: 'executed' | 'failed' | 'blocked'; rows: number; durationMs: number; error?: string; maskedColumns?: string[] }): void;
}

export type SqlRefuseReason = 'blocked' | 'masks' | 'approval_required' | 'approval' | 'token_expired' | 'audit_failed' | 'rate_limited' | 'unsupported';

export type SqlOutcome =
  | { kind: 'forward'; permits: SqlPermit[]; approvalId: string | undefined; /** some statement may change the schema: caches are dropped after the call */ schemaChanging: boolean }
  | {
      kind: 'refuse';
      reason: SqlRefuseReason;
      message: string;
      detail?: string;
      /** The rules that decided it (empty: the gateway itself refused). */
      rules: string[];
      approvalId?: string;
      approvers?: string[];
    };

/** One column as describe shows it. */
export interface DescribedColumn {
  name: string;
  type: string;
  nullable: boolean;
  /** The masker applied to this column's values for this identity, when one is. */
  masked?: string;
}

export interface DescribedTable {
  schema: string;
  name: string;
  kind: 'table' | 'view' | 'materialized_view' | 'partitioned_table' | 'foreign_table';
  /** What the policy says of `SELECT * FROM` it for this identity. */
  access: 'allow' | 'mask' | 'approve';
  columns: DescribedColumn[];
}

/** The catalog's columns of one relation, with what a RowDescription would carry for them. */
export interface CatalogRelation {
  schema: string;
  name: string;
  kind: DescribedTable['kind'];
  oid: number;
  columns: { name: string; attnum: number; typeOid: number; type: string; nullable: boolean }[];
}

export interface McpEnforcement {
  /**
   * Decide one `query` call: all of its statements, before any runs (a block anywhere refuses
   * all). `params`: the values of $1, $2, ... (text or NULL); the text must then be one statement.
   */
  sql(caller: McpCaller, resource: Resource, upstream: UpstreamSession, text: string, params: (string | null)[] | undefined): Promise<SqlOutcome>;
  /** What the policy lets this identity read of these relations, and which columns come back masked. */
  describe(caller: McpCaller, resource: Resource, relations: CatalogRelation[]): Promise<DescribedTable[]>;
  /** An approval the caller requested or may decide; undefined when there is none it may see. */
  approval(caller: McpCaller, id: string): Promise<ApprovalRecord | undefined>;
  /** The approvals the caller requested. */
  approvalsOf(caller: McpCaller): Promise<ApprovalRecord[]>;
  /** Waits until the approval is decided or expires, or the signal aborts (then resolves with it as it is). */
  waitApproval(caller: McpCaller, id: string, signal: AbortSignal): Promise<ApprovalRecord | undefined>;
  /** A call that ran statements able to change the schema ended: cached catalog answers are stale. */
  schemaChanged(resource: Resource): void;
}
