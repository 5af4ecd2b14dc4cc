// Coverage for `hoop policy test --coverage`: which rules no test made apply, and which rules never
// determined a verdict (so their effect was never exercised), as OPA's cover reports line ranges.

import type { Span } from '../../language/ast.ts';
import type { RuleSummary } from '../index.ts';
import type { CoverageTrace } from './runner.ts';

export interface RuleCoverage {
  id: string;
  span: Span;
  effects: string[];
  /** Applied in at least one test. */
  applied: boolean;
  /** Was among the reasons of at least one test's verdict: its effect was exercised. */
  decided: boolean;
}

export interface CoverageReport {
  rules: RuleCoverage[];
  /** Percentage of rules whose effect some test exercised (0–100, one decimal). */
  percent: number;
  notCovered: RuleCoverage[];
}

export function coverageReport(rules: readonly RuleSummary[], trace: CoverageTrace): CoverageReport {
  const out = rules
    .map((r) => ({ id: r.id, span: r.span, effects: r.effects, applied: trace.applied.has(r.id), decided: trace.decided.has(r.id) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const covered = out.filter((r) => r.decided).length;
  const percent = out.length === 0 ? 100 : Math.round((covered / out.length) * 1000) / 10;
  return { rules: out, percent, notCovered: out.filter((r) => !r.decided) };
}
