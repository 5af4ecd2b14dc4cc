// The gateway reads statement text as UTF-8 with standard_conforming_strings on; the server reads
// it under the session's client_encoding and standard_conforming_strings. When they differ, one
// text is two statements: `SELECT 'x\' AS a, '; DELETE FROM t; -- '` is a string and a comment to
// the gateway but a SELECT and a DELETE to a server with standard_conforming_strings off. This
// module keeps the two readings the same, fail closed (issue 14 item 1):
//
// - a statement setting either (or backslash_quote) to a value the gateway cannot read under is
//   refused whatever the policy (the classifier gives it a reason starting UNREADABLE_TEXT_SETTING);
// - both settings are GUC_REPORT: a ParameterStatus reporting an unreadable value (a function that
//   called set_config, RESET to an ALTER ROLE/DATABASE default, ...) refuses the connection at
//   startup and ends the session after it;
// - the server reports them only at ReadyForQuery (PostgreSQL 14+), so a message containing a
//   backslash (0x5C, also the byte a client-only encoding hides in a character) is not forwarded
//   while an earlier statement that may change settings is unanswered: it waits for that answer,
//   or is refused when no answer can come first (same extended-protocol batch, before Sync).

import type { SqlAction } from '../../../stdlib/facts.ts';
import { ASCII_SAFE_ENCODINGS, UNREADABLE_TEXT_SETTING } from '../../../stdlib/sql/functions.ts';

/** Why the gateway refuses this statement whatever the policy says, or undefined. */
export function textSettingRefusal(action: SqlAction): string | undefined {
  const reason = action.reason;
  if (reason === undefined) return undefined;
  const at = reason.indexOf(UNREADABLE_TEXT_SETTING);
  if (at < 0) return undefined;
  const end = reason.indexOf('; ', at);
  const why = reason.slice(at, end < 0 ? undefined : end);
  return `${why} (statements are read as UTF-8 with standard_conforming_strings on); this is refused whatever the policy`;
}

/** Why the session cannot go on with this reported setting (a ParameterStatus), or undefined. */
export function unreadableParameter(name: string, value: string): string | undefined {
  const setting = name.toLowerCase();
  if (setting === 'standard_conforming_strings' && value.toLowerCase() !== 'on') {
    return `the server reports standard_conforming_strings = ${JSON.stringify(value)}: the gateway can no longer read statements as the server does`;
  }
  if (setting === 'client_encoding' && !ASCII_SAFE_ENCODINGS.has(value.toLowerCase().replace(/[^a-z0-9]/g, ''))) {
    return `the server reports client_encoding = ${JSON.stringify(value)}: the gateway can no longer read statements as the server does`;
  }
  return undefined;
}

/** A ParameterStatus message's name and value (raw message, code byte first), or undefined when malformed. */
export function parameterStatus(raw: Buffer): { name: string; value: string } | undefined {
  const a = raw.indexOf(0, 5);
  if (a < 0) return undefined;
  const b = raw.indexOf(0, a + 1);
  if (b < 0) return undefined;
  return { name: raw.toString('utf8', 5, a), value: raw.toString('utf8', a + 1, b) };
}

/** The first unreadable setting among startup ParameterStatus messages, or undefined. */
export function unreadableStartup(messages: readonly Buffer[]): string | undefined {
  for (const m of messages) {
    const p = parameterStatus(m);
    const why = p && unreadableParameter(p.name, p.value);
    if (why) return why;
  }
  return undefined;
}

/**
 * Statement kinds after which the server reads text as before: plain reads, transaction control,
 * and `set` (a setting other than these, a readable value of these — anything else is refused —
 * or RESET, back to the session's starting value, which the startup check saw). Anything else may
 * change a setting unseen (a function or trigger calling set_config, code the gateway cannot see).
 */
function plain(action: SqlAction | undefined): boolean {
  return action === undefined || action.effects.every((k) => k === 'select' || k === 'transaction' || k === 'set');
}

/** What the session has forwarded and not seen answered, as much as this needs of it. */
export type Unanswered =
  | { k: 'query'; runs: readonly { stmt: { action: SqlAction | undefined } | undefined }[] }
  | { k: 'parse' | 'bind'; stmt?: { action: SqlAction | undefined } }
  | { k: 'execute'; run: { stmt: { action: SqlAction | undefined } | undefined } }
  | { k: 'function' }
  | { k: 'sync' | 'close' | 'describe' };

/**
 * For a message about to be decided: `go`, `wait` (an earlier message that may change settings is
 * unanswered; its ReadyForQuery will come) or `refuse` (the statement that may change settings is
 * in the open extended-protocol batch, so the server runs it before this one with no word between).
 */
export function textGate(raw: Buffer, unanswered: Iterable<Unanswered>): 'go' | 'wait' | 'refuse' {
  if (!raw.includes(0x5c, 5)) return 'go';
  let segment = false;
  let closed = false;
  for (const e of unanswered) {
    switch (e.k) {
      case 'query':
        if (e.runs.some((r) => !plain(r.stmt?.action))) segment = true;
        break;
      case 'parse':
      case 'bind':
        if (e.stmt && !plain(e.stmt.action)) segment = true;
        break;
      case 'execute':
        if (!plain(e.run.stmt?.action)) segment = true;
        break;
      case 'function':
        segment = true;
        break;
      default:
        break;
    }
    // A Query, Sync or FunctionCall ends a segment: its ReadyForQuery carries what it reported.
    if (e.k === 'query' || e.k === 'sync' || e.k === 'function') {
      closed ||= segment;
      segment = false;
    }
  }
  if (segment) return 'refuse';
  return closed ? 'wait' : 'go';
}

/** The refusal of a message that cannot wait for the answer that would tell how the server reads it. */
export const PIPELINED_BACKSLASH =
  'hoop: blocked: a statement containing a backslash may not follow, in the same pipeline before Sync, a statement that may change how the server reads statement text (standard_conforming_strings, client_encoding); send Sync first';

/** Resolvers woken at each ReadyForQuery (a waiting message checks its gate again). */
export class ReadyWaiters {
  private waiters: (() => void)[] = [];

  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  ready(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
