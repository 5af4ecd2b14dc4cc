// Every mask a policy could apply to one session, whatever it runs: for what reaches a client
// outside any statement's answer (PostgreSQL's NotificationResponse: another session's NOTIFY
// payload can carry any value any statement could read). The rules whose `on` (resource) and
// `when` (identity) selectors hold for the session count, whatever their `match` and `if` say;
// computed from the engine's explanation of a synthetic request and the compiled rules.

import type { Masks } from '../../engine/response.ts';
import type { CompiledPolicyIR } from '../../engine/tree.ts';
import type { Request, SqlAction } from '../../stdlib/facts.ts';
import type { DecideContext } from './decide.ts';
import type { PolicyEvaluator } from './types.ts';

/** A compiled policy (engine `PreparedPolicy`): per-rule outcomes and the rules' effects. */
interface ExplainablePolicy extends PolicyEvaluator {
  explain(req: Request): { rules: readonly { id: string; outcome: { status: string; selector?: string } }[] };
  readonly ir: CompiledPolicyIR;
}

function explainable(p: PolicyEvaluator): p is ExplainablePolicy {
  const q = p as Partial<ExplainablePolicy>;
  return typeof q.explain === 'function' && typeof q.ir === 'object' && q.ir !== null && Array.isArray(q.ir.rules);
}

/** The action of the synthetic request: only the rules' `on` and `when` outcomes are read. */
const LISTEN_ACTION: SqlAction = Object.freeze({
  type: 'sql', kind: 'utility', effects: ['utility'], reads: [], writes: [], columns: [], functions: [],
  has_where: true, limit: null, text: 'LISTEN', normalized: 'LISTEN', fingerprint: '',
}) as SqlAction;

/**
 * Every mask a rule could apply to this identity on this resource, or `undefined` when that cannot
 * be told (no policy, a policy without explanations, an explanation that does not cover every rule).
 */
export function sessionMasks(policy: PolicyEvaluator | undefined, ctx: DecideContext): Masks | undefined {
  if (!policy || !explainable(policy)) return undefined;
  try {
    const req: Request = { identity: ctx.identity, resource: ctx.resource, action: LISTEN_ACTION, context: { time: new Date().toISOString(), client_addr: ctx.clientAddr, session_id: ctx.sessionId } };
    const outcomes = policy.explain(req).rules;
    const rules = new Map(policy.ir.rules.map((r) => [r.id, r]));
    if (outcomes.length !== rules.size) return undefined;
    const masks: Masks = { columns: [], detectors: [] };
    for (const { id, outcome } of outcomes) {
      const rule = rules.get(id);
      if (!rule) return undefined;
      // Skipped by its resource or identity selector: the rule is not about this session.
      if (outcome.status === 'skipped' && (outcome.selector === 'on' || outcome.selector === 'when')) continue;
      for (const c of rule.effects.columnMasks) masks.columns.push({ column: c.column, masker: c.masker, rule: id });
      for (const d of rule.effects.detectorMasks) masks.detectors.push({ detectors: d.detectors, masker: d.masker, rule: id });
    }
    return masks;
  } catch {
    return undefined;
  }
}

