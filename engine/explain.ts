// Explanations: for every rule of the set, whether it applied or which selector or condition did
// not hold and why, next to the decision and the facts the decision was made over. The per-rule
// outcomes come from the reference interpreter (its checks are written to be read); the decision
// comes from the compiled evaluator, and the conformance suite proves the two agree.

import type { PolicyFile } from '../language/ast.ts';
import { celActivation, celFacts, type CelActivation, type CelEnvironment } from '../stdlib/cel.ts';
import type { Request } from '../stdlib/facts.ts';
import { ruleOutcome, rulesOf } from './reference/interpreter.ts';
import type { Decision, Explanation, RuleExplanation } from './response.ts';

export function explain(files: readonly PolicyFile[], req: Request, decision: Decision, cel: CelEnvironment): Explanation {
  let act: CelActivation | undefined;
  const activation = (): CelActivation => (act ??= celActivation(req));
  const rules: RuleExplanation[] = rulesOf(files)
    .map(({ id, rule }) => ({ id, span: rule.span, outcome: ruleOutcome(rule, req, cel, activation) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let facts: unknown;
  try {
    facts = { ...celFacts(activation()), action: req.action };
  } catch (error) {
    facts = { error: error instanceof Error ? error.message : String(error) };
  }
  return { decision, rules, facts };
}
