// How durable an audit record must be before the request it is about is forwarded, and before the
// client hears the answer (DESIGN.md "Audit durability"). Protocol-neutral: a front door asks the
// sink (sink.ts) to write a record before forwarding (`beforeForward`) and, for a request that can
// change state, holds the answer until `beforeAnswer(seq)` settles.
//
//   commit (default)  every record is written (handed to the kernel) before its request is
//                     forwarded; a request that can change state, every refusal and every approval
//                     is answered only once its record is fsync'd (the fsync starts at once and runs
//                     while the upstream executes); reads are fsync'd within `max_delay`. Inside an
//                     open transaction block, a plainly transactional statement (`staysInBlock`)
//                     changes nothing until the block commits: its answer goes out at once, and the
//                     answer that may end the block (COMMIT, anything else, the ReadyForQuery that
//                     shows no block is open) waits for every such record of the session.
//   strict            every record is fsync'd before its request is forwarded.
//   async             records are written before forwarding and fsync'd every `max_delay`; nothing
//                     waits for an fsync.

import { kindRank, type Action, type SqlKind } from '../../stdlib/facts.ts';
import { catalogFunctionName, SAFE_FUNCTIONS } from '../../stdlib/sql/functions.ts';

export type AuditDurability = 'commit' | 'strict' | 'async';

export const AUDIT_DURABILITIES: readonly AuditDurability[] = ['commit', 'strict', 'async'];

export const DEFAULT_AUDIT_DURABILITY: AuditDurability = 'commit';

/** The longest a written record waits for its fsync under `commit` and `async` (`audit.max_delay`). */
export const DEFAULT_AUDIT_MAX_DELAY_MS = 20;

/** `audit.max_delay` bounds: a sync per millisecond at most, and no record left unsynced for more than 10 s. */
export const AUDIT_MAX_DELAY_RANGE_MS = { min: 1, max: 10_000 } as const;

/**
 * How fsyncs are issued (`audit.sync`): `auto` (default) on the event loop while they are cheap
 * (fast storage), else through the thread pool; `inline` always on the event loop; `thread_pool`
 * always off it (the fsync of a state-changing request then always overlaps its execution).
 */
export type AuditSyncMode = 'auto' | 'inline' | 'thread_pool';

export const AUDIT_SYNC_MODES: readonly AuditSyncMode[] = ['auto', 'inline', 'thread_pool'];

/** `AuditLogOptions.inlineSyncBelowUs` for a sync mode. */
export function inlineSyncBelowUs(mode: AuditSyncMode | undefined): number {
  return mode === 'inline' ? Number.POSITIVE_INFINITY : mode === 'thread_pool' ? 0 : 200;
}

const SELECT_RANK = kindRank('select');

/**
 * Whether a request can change state, so that under `commit` its answer waits for its record to be
 * durable: a SQL statement whose kind is above `select` in the risk order (writes, DDL, calls,
 * `copy_to` and `unknown`: anything the classifier cannot prove is at most a read); any shell command.
 */
export function canChangeState(action: Action): boolean {
  if (action.type === 'sql') return kindRank(action.kind) < SELECT_RANK;
  return true;
}

/**
 * Kinds whose effect, inside an explicit transaction block, is part of the block: nothing of it is
 * visible to others or survives unless the block commits. Row writes and what reads, sets or
 * inspects within the transaction. Not here, so that their answer waits as if the block could end
 * there: `transaction` (COMMIT, PREPARE TRANSACTION is `call`, COMMIT AND CHAIN, SAVEPOINT
 * included: the gateway does not tell them apart), `call`/`do`/`unknown` (a procedure or a block
 * may commit, run dblink, write files), DDL, TRUNCATE, GRANT, COPY (COPY ... PROGRAM).
 */
const IN_BLOCK_KINDS: ReadonlySet<SqlKind> = new Set<SqlKind>(['insert', 'update', 'delete', 'merge', 'select', 'set', 'explain', 'utility']);

/**
 * Whether a statement answered inside an open transaction block leaves that block open and changes
 * nothing outside it: every effect a transactional kind (`IN_BLOCK_KINDS`), and every function it
 * calls a side-effect-free built-in (`SAFE_FUNCTIONS`; `nextval`, `setval`, advisory locks,
 * `dblink*`, large objects and any user function are not: their effect does not wait for COMMIT).
 * Under `commit`, such a statement's answer need not wait for its record; the block's end does.
 * What the classifier cannot see (a trigger's side effects) is not known here.
 */
export function staysInBlock(action: Action): boolean {
  if (action.type !== 'sql') return false;
  for (const k of action.effects) if (!IN_BLOCK_KINDS.has(k)) return false;
  if (!IN_BLOCK_KINDS.has(action.kind)) return false;
  for (const f of action.functions) {
    const name = catalogFunctionName(f);
    if (name === undefined || !SAFE_FUNCTIONS.has(name)) return false;
  }
  return true;
}
