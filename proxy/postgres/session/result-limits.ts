// `limit rows` and `limit time` on the PostgreSQL wire (DESIGN.md "Limits"): the state one run of
// a statement carries, and the messages the client gets instead of the server's.
//
// limit rows N: the first N rows of a result are relayed; from row N+1 on rows are dropped as they
// arrive (never buffered). Where it is safe the statement is cancelled upstream (a single-statement
// simple Query outside a transaction block with nothing pipelined behind it: the cancel cannot
// land on another statement nor abort a transaction the client believes healthy); otherwise the
// rest is drained. The client gets a NoticeResponse `hoop: result truncated at N rows by <rule>`
// and a CommandComplete for N rows in place of the server's answer (a canceled statement's 57014
// included). A write's RETURNING rows are drained, never cancelled (the write would be rolled back
// under a CommandComplete that says it ran), and keep the server's tag. A portal fetched in batches
// (Execute with a row count) counts across its Executes: the batch that reaches N ends with that
// CommandComplete instead of PortalSuspended, and later Executes of the portal return no rows.
//
// limit time D: the statement is cancelled upstream once it has run D (from when it became the
// statement the server works on); the client gets SQLSTATE 57014 naming the rule.

import { encodeBackend, gatewayError, gatewayNotice } from '../wire/backend.ts';
import { formatDurationMs } from '../../../language/ast.ts';
import type { Limits } from '../../../engine/response.ts';
import type { SqlAction } from '../../../stdlib/facts.ts';

/** Rows relayed so far for one result (shared by the Executes of one portal). */
export interface RowBudget {
  readonly max: number;
  readonly rule: string;
  sent: number;
  /** Row max+1 arrived: every row from here on is dropped. */
  cut: boolean;
}

/** What one run of a statement is limited by. */
export interface RunLimits {
  rows?: RowBudget;
  time?: { readonly ms: number; readonly rule: string; timer?: NodeJS.Timeout; fired: boolean };
  /** The gateway sent a cancel for this run (why). */
  cancelled?: 'rows' | 'time';
  /** The verb of the CommandComplete that replaces the server's (`SELECT`, `FETCH`, `COPY`). */
  readonly verb: string;
  /** A write with RETURNING: drained, never cancelled; the server's tag stands. */
  readonly write: boolean;
}

const WRITES = new Set(['insert', 'update', 'delete', 'merge']);

/** The limits of a run, or undefined when it has none (the common case: no allocation). */
export function runLimits(limits: Limits | undefined, action: SqlAction | undefined, portalBudget?: RowBudget): RunLimits | undefined {
  if (!limits || (!limits.rows && !limits.time)) return undefined;
  const out: RunLimits = { verb: verbOf(action), write: action !== undefined && WRITES.has(action.kind) };
  if (limits.rows) out.rows = portalBudget ?? { max: limits.rows.rows, rule: limits.rows.rule, sent: 0, cut: false };
  if (limits.time) out.time = { ms: limits.time.ms, rule: limits.time.rule, fired: false };
  return out;
}

/** A fresh budget for a portal (kept across its Executes). */
export function portalBudget(limits: Limits | undefined): RowBudget | undefined {
  return limits?.rows ? { max: limits.rows.rows, rule: limits.rows.rule, sent: 0, cut: false } : undefined;
}

/** The command tag's verb for a statement that returns rows. */
function verbOf(action: SqlAction | undefined): string {
  const first = /^\s*(?:\(\s*)*([A-Za-z]+)/.exec(action?.text ?? '')?.[1]?.toUpperCase();
  if (first === 'FETCH' || first === 'MOVE') return 'FETCH';
  if (first === 'COPY') return 'COPY';
  if (action && WRITES.has(action.kind)) return action.kind.toUpperCase();
  return 'SELECT';
}

/**
 * Counts one row: true when it must be dropped. Row `max + 1` marks the budget cut (the caller
 * then stops the statement); every row after that is dropped too.
 */
export function dropRow(b: RowBudget): boolean {
  if (b.cut) return true;
  if (b.sent < b.max) {
    b.sent++;
    return false;
  }
  b.cut = true;
  return true;
}

/** The notice and CommandComplete (for the `rows` this run relayed) the client gets for a cut result. */
export function truncatedAnswer(l: RunLimits, rows: number, serverTag?: string): Buffer[] {
  const b = l.rows!;
  const tag = l.write && serverTag ? serverTag : `${l.verb} ${rows}`;
  return [
    gatewayNotice(`hoop: result truncated at ${b.max} rows by ${b.rule}`, `limit rows ${b.max} (rule ${b.rule}); the rest of the result was not sent`),
    encodeBackend({ name: 'commandComplete', tag }),
  ];
}

/** The CommandComplete for an Execute of a portal whose budget was already spent. */
export function exhaustedAnswer(l: RunLimits): Buffer {
  return encodeBackend({ name: 'commandComplete', tag: `${l.verb} 0` });
}

/** The error for a statement cancelled by `limit time`. */
export function timeLimitError(l: RunLimits): Buffer {
  const t = l.time!;
  return gatewayError('ERROR', '57014', `hoop: canceling statement: it ran longer than ${formatDurationMs(t.ms)}, the limit time of rule ${t.rule}`, `limit time ${formatDurationMs(t.ms)} (rule ${t.rule})`);
}
