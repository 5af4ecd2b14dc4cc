// Statement → decision: classify (the classifier caches by text), ask the current policy, and fail
// closed if anything goes wrong. Knows nothing about sockets.

import type { Decision } from '../../../engine/response.ts';
import type { Identity, Request, RequestContext, Resource, SqlAction, SqlClassifier, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import { sessionChange, type AnalyzedStatement, type ParseError, type SessionChange, type SqlAnalyzer } from '../../../stdlib/sql/index.ts';
import { parserErrorFields } from './parser-hints.ts';
import { readView } from '../../../stdlib/sql/read-view.ts';
import { withReadMasks } from '../../../engine/combine.ts';
import { shadowedOriginal } from '../session/builtin-shadows.ts';

/** The classifier the session needs: facts plus the AST (for tracking prepared statements and cursors). */
export type SessionClassifier = SqlClassifier & SqlAnalyzer;

/** What the session needs of a compiled policy (engine/index.ts `PreparedPolicy`). */
export interface PolicyEvaluator {
  evaluate(request: Request): Decision;
}

export interface DecisionContext {
  identity: Identity;
  resource: Resource;
  clientAddr: string;
  sessionId: string;
}

export interface StatementVerdict {
  action: SqlAction;
  decision: Decision;
  /** How the statement changes the session's prepared statements and cursors (stdlib `sessionChange`). */
  change?: SessionChange | null;
  /** PostgreSQL's grammar refused the text: what the parser said (for the refusal's ErrorResponse). */
  parseError?: ParseError;
  /** The text whose lineage masks the statement's rows, when not its own (a FETCH: its cursor's query). */
  lineageText?: string;
}

const NO_MASKS = { columns: [], detectors: [] };

/**
 * A statement's request context. `time` is formatted only when read — by a rule whose condition
 * uses `context.time` — instead of for every statement (the formatting cost more than the decision).
 */
class StatementContext implements RequestContext {
  #time: string | undefined;

  constructor(
    readonly client_addr: string,
    readonly session_id: string,
    private readonly at: number,
  ) {}

  get time(): string {
    return (this.#time ??= new Date(this.at).toISOString());
  }

  toJSON(): RequestContext {
    return { time: this.time, client_addr: this.client_addr, session_id: this.session_id };
  }
}

/** A block made by the gateway itself (engine failure, classification failure...). */
export function gatewayBlock(message: string): Decision {
  return { verdict: 'block', masks: NO_MASKS, approvers: [], message, reasons: [], defaulted: false, errors: [] };
}

export function decideStatements(
  classifier: SessionClassifier,
  policy: PolicyEvaluator | undefined,
  ctx: DecisionContext,
  text: string,
  /** The session's prepared statements and cursors (what EXECUTE and FETCH run). */
  names: SqlClassifyOptions | undefined,
  /** The session's name resolution (search_path, temporary tables): the statements' actions with unqualified names resolved. */
  resolve?: (statements: readonly AnalyzedStatement[]) => SqlAction[],
  /** Why the session refuses this (resolved) statement whatever the policy says, if it does. */
  refusal?: (action: SqlAction) => string | undefined,
): StatementVerdict[] {
  let analyzed: AnalyzedStatement[];
  try {
    analyzed = classifier.analyze(text, names);
  } catch (e) {
    // The contract says classify never throws; if it does, nothing runs.
    return [{ action: unknownAction(text, `classifier failed: ${(e as Error).message}`), decision: gatewayBlock('the gateway could not classify this statement') }];
  }
  return decideAnalyzed(analyzed, policy, ctx, resolve, refusal);
}

/** A message the gateway could not classify (a classifier worker's crash or timeout): one block, nothing runs. */
export function unclassified(text: string, reason: string): StatementVerdict[] {
  return [{ action: unknownAction(text, reason), decision: gatewayBlock(`the gateway could not classify this statement: ${reason}`) }];
}

/**
 * The verdicts on classified statements. A statement classified elsewhere (the classifier pool)
 * carries its PREPARE/DECLARE/... change instead of its AST.
 */
export function decideAnalyzed(
  analyzed: readonly AnalyzedStatement[],
  policy: PolicyEvaluator | undefined,
  ctx: DecisionContext,
  resolve?: (statements: readonly AnalyzedStatement[]) => SqlAction[],
  refusal?: (action: SqlAction) => string | undefined,
): StatementVerdict[] {
  let actions: SqlAction[];
  let changes: StatementVerdict['change'][];
  let parseErrors: (ParseError | undefined)[];
  try {
    actions = resolve ? resolve(analyzed) : analyzed.map((a) => a.action);
    changes = analyzed.map((a) => ('change' in a ? (a as { change: StatementVerdict['change'] }).change : sessionChange(a)));
    parseErrors = analyzed.map((a) => a.parseError);
  } catch (e) {
    return unclassified(analyzed.map((a) => a.text).join('; '), `classifier failed: ${(e as Error).message}`);
  }
  if (actions.length === 0) return [];
  const context = new StatementContext(ctx.clientAddr, ctx.sessionId, Date.now());
  const out: StatementVerdict[] = [];
  for (let i = 0; i < actions.length; i++) {
    const action = actions[i]!;
    let decision: Decision;
    const refused = refusal?.(action);
    if (refused) decision = gatewayBlock(refused);
    else if (!policy) decision = gatewayBlock('no policy is loaded');
    else {
      try {
        decision = policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action, context });
        const original = shadowedOriginal(action);
        if (original && decision.verdict !== 'block') decision = bothWays(decision, policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action: original, context }));
        const read = readView(action, analyzed[i]?.ast);
        if (read && decision.verdict !== 'block') decision = withReadMasks(decision, policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action: read.action, context }), read.onlyColumnsOf);
      } catch (e) {
        // The engine never throws by contract; fail closed if it does.
        decision = gatewayBlock(`policy evaluation failed: ${(e as Error).message}`);
      }
    }
    const parseError = parseErrors[i];
    out.push({ action, decision, change: changes[i] ?? null, ...(parseError ? { parseError } : {}) });
  }
  return out;
}

/**
 * A statement whose built-in name may mean a user's function is decided as the call it may be and
 * as what it says: the same answer both ways stands; otherwise (a mask scoped to reads, an
 * approval for calls only) it is refused rather than lose either rule.
 */
function bothWays(asCall: Decision, asWritten: Decision): Decision {
  const same = asCall.verdict === asWritten.verdict && JSON.stringify(asCall.masks) === JSON.stringify(asWritten.masks) && JSON.stringify(asCall.approvers) === JSON.stringify(asWritten.approvers);
  if (same) return asCall;
  if (asWritten.verdict === 'block') return asWritten;
  return gatewayBlock('this statement calls a built-in name (a function or operator) that a function outside pg_catalog on the search_path also has, and the policy decides the call it may be and the statement as written differently (e.g. a mask for reads): refused rather than lose either rule; qualify the built-in or drop the shadowing function');
}

function unknownAction(text: string, reason: string): SqlAction {
  return {
    type: 'sql', kind: 'unknown', effects: ['unknown'], reads: [], writes: [], columns: [], functions: [],
    has_where: true, limit: null, text, normalized: text, fingerprint: '', reason,
  };
}

/** Which of the statements decides a multi-statement message: the first block, else the first approve. */
export function worstVerdict(verdicts: StatementVerdict[]): StatementVerdict | undefined {
  return verdicts.find((v) => v.decision.verdict === 'block') ?? verdicts.find((v) => v.decision.verdict === 'approve');
}

/** The ErrorResponse text for a block: names the rule(s) and carries the rule's message. */
export function blockText(d: Decision): { message: string; detail?: string } {
  const rules = d.reasons.map((r) => r.id);
  const msg = d.message ?? 'blocked by policy';
  if (rules.length === 0) return { message: `hoop: blocked: ${msg}`, ...(d.defaulted ? { detail: 'no rule allows this statement (default block)' } : {}) };
  return { message: `hoop: blocked by ${rules.join(', ')}: ${msg}`, detail: `rule${rules.length > 1 ? 's' : ''}: ${rules.join(', ')}` };
}

/**
 * The ErrorResponse for a refused statement. A statement PostgreSQL's grammar refuses gets the
 * parser's own message, SQLSTATE 42601 and its position (what the server would have answered), the
 * decision's text moving to DETAIL; the statement is still not forwarded.
 */
export function refusalText(v: StatementVerdict): { message: string; detail?: string; hint?: string; sqlstate?: string; position?: number } {
  const block = blockText(v.decision);
  if (!v.parseError) {
    // An unknown statement says why it is unknown (e.g. which table a name means cannot be told).
    if (v.action.kind !== 'unknown' || !v.action.reason) return block;
    return { ...block, detail: `${block.detail ? `${block.detail}; ` : ''}the statement is unknown: ${v.action.reason}` };
  }
  // The server's own HINT/DETAIL for this parser error, when it has one; the gateway's note follows.
  const server = parserErrorFields(v.parseError.message, v.parseError.file);
  const note = `not forwarded: ${block.message.replace(/^hoop: /, '')}`;
  return {
    message: `hoop: ${v.parseError.message}`,
    detail: server.detail ? `${server.detail}\n${note}` : note,
    ...(server.hint ? { hint: server.hint } : {}),
    sqlstate: server.sqlstate ?? '42601',
    position: v.parseError.position,
  };
}
