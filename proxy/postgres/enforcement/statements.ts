// Statements → the items of an enforcement request (proxy/enforcement): each statement's facts with
// the session's names resolved (search_path, temporary tables), what running it changes (PREPARE,
// DECLARE...), what the session refuses whatever the policy says, and PostgreSQL's own words for a
// statement its grammar refuses. Deciding is enforcement's; this only says what the statements are.

import type { SqlAction, SqlClassifier, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import { sessionChange, type AnalyzedStatement, type ParseError, type SessionChange, type SqlAnalyzer } from '../../../stdlib/sql/index.ts';
import { unknownSql, type RefusalText, type RequestItem } from '../../enforcement/index.ts';
import { shadowedOriginal } from '../session/builtin-shadows.ts';
import { parserErrorFields } from './parser-hints.ts';

/** The classifier the session needs: facts plus the AST (for tracking prepared statements and cursors). */
export type SessionClassifier = SqlClassifier & SqlAnalyzer;

/** One statement of a message, as the PostgreSQL front door hands it to enforcement. */
export interface PgStatement extends RequestItem {
  readonly action: SqlAction;
  /** How the statement changes the session's prepared statements and cursors (stdlib `sessionChange`). */
  readonly change: SessionChange | null;
  /** PostgreSQL's grammar refused the text: what the parser said (for the refusal's ErrorResponse). */
  readonly parseError?: ParseError | undefined;
}

/** The session's own view of a statement: its names resolved, and why it refuses it whatever the policy says. */
export interface StatementResolution {
  resolve(statements: readonly AnalyzedStatement[]): SqlAction[];
  refusal(action: SqlAction): string | undefined;
}

/**
 * The items of classified statements. A statement classified elsewhere (the classifier pool)
 * carries its PREPARE/DECLARE/... change instead of its AST.
 */
export function statementItems(analyzed: readonly AnalyzedStatement[], session?: StatementResolution): PgStatement[] {
  try {
    const actions = session ? session.resolve(analyzed) : analyzed.map((a) => a.action);
    const out = new Array<PgStatement>(actions.length);
    for (let i = 0; i < actions.length; i++) {
      const a = analyzed[i]!;
      const action = actions[i]!;
      out[i] = {
        action,
        change: 'change' in a ? ((a as { change: SessionChange | null }).change ?? null) : sessionChange(a),
        parseError: a.parseError,
        ast: a.ast,
        refused: session?.refusal(action),
        alsoAs: shadowedOriginal(action),
      };
    }
    return out;
  } catch (e) {
    return unclassified(analyzed.map((a) => a.text).join('; '), `classifier failed: ${(e as Error).message}`);
  }
}

/** The items of a text classified on the event loop (a FunctionCall's stand-in statement). */
export function classifyStatements(classifier: SessionClassifier, text: string, names: SqlClassifyOptions | undefined): PgStatement[] {
  let analyzed: AnalyzedStatement[];
  try {
    analyzed = classifier.analyze(text, names);
  } catch (e) {
    // The contract says classify never throws; if it does, nothing runs.
    return [{ action: unknownSql(text, `classifier failed: ${(e as Error).message}`), change: null, refused: 'the gateway could not classify this statement' }];
  }
  return statementItems(analyzed);
}

/** A message the gateway could not classify (a classifier worker's crash or timeout): one refused item, nothing runs. */
export function unclassified(text: string, reason: string): PgStatement[] {
  return [{ action: unknownSql(text, reason), change: null, refused: `the gateway could not classify this statement: ${reason}` }];
}

/**
 * The ErrorResponse for a refused statement PostgreSQL's grammar refuses: the parser's own message,
 * SQLSTATE 42601 and its position (what the server would have answered), the decision's text moving
 * to DETAIL; the statement is still not forwarded. Other refusals keep enforcement's text.
 */
export function parserRefusal(item: PgStatement, base: RefusalText): RefusalText {
  const pe = item.parseError;
  if (!pe) return base;
  // The server's own HINT/DETAIL for this parser error, when it has one; the gateway's note follows.
  const server = parserErrorFields(pe.message, pe.file);
  const note = `not forwarded: ${base.message.replace(/^hoop: /, '')}`;
  return {
    message: `hoop: ${pe.message}`,
    detail: server.detail ? `${server.detail}\n${note}` : note,
    ...(server.hint ? { hint: server.hint } : {}),
    sqlstate: server.sqlstate ?? '42601',
    position: pe.position,
  };
}
