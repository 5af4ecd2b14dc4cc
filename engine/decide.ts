// From "which rules apply" to a Decision (DESIGN.md "Semantics", the four rules), for the compiled
// evaluator. The reference interpreter has its own, deliberately separate, literal version; the
// conformance suite checks the two agree.
//
// Conventions both follow (documented in docs/engine.md):
//   - reasons are sorted by rule id; a rule whose condition failed at run time counts as a block;
//   - block message: the first blocking rule's (by id), `blocked by rule <id>` when it has none,
//     the run-time error for a failed condition, or the default's message;
//   - column masks sorted by column (stable: rule id, then effect order), exact repeats dropped;
//     detector masks in rule id order.

import type { Span } from '../language/ast.ts';
import type { ColumnMask, Decision, DetectorMask, Limits, Masks, Reason, RuleError } from './response.ts';
import { DEFAULT_BLOCK_MESSAGE, type DefaultIR, type LoweredRule } from './tree.ts';

export function reasonOf(rule: LoweredRule): Reason {
  return Object.freeze({ id: rule.id, rule: rule.rule, package: rule.package, span: rule.span as Span });
}

export function blockMessage(rule: LoweredRule): string {
  return rule.effects.blockMessage ?? `blocked by rule ${rule.id}`;
}

export function conditionErrorMessage(id: string, error: string): string {
  return `rule ${id}: condition failed at run time: ${error}`;
}

export function emptyMasks(): Masks {
  return { columns: [], detectors: [] };
}

/** Per-rule effect bits, so the verdict can be found without touching the rule objects. */
export const BLOCKS = 1;
export const APPROVES = 2;
export const ALLOWS = 4;
export const MASKS = 8;
export const LIMITS = 16;

export function effectFlags(rule: LoweredRule): number {
  return (rule.effects.block ? BLOCKS : 0) | (rule.effects.approve ? APPROVES : 0) | (rule.effects.allow ? ALLOWS : 0) | (hasMask(rule) ? MASKS : 0)
    | (rule.effects.limits ? LIMITS : 0);
}

/**
 * `applied` and `errored` hold rule indices in ascending (id) order; `errorText[i]` is the error of
 * `errored[i]`. `reasons[index]` are the prebuilt, frozen Reason values.
 */
export function decide(
  rules: readonly LoweredRule[],
  flags: Uint8Array,
  reasons: readonly Reason[],
  applied: ArrayLike<number>,
  appliedCount: number,
  errored: readonly number[],
  errorText: readonly string[],
  defaults: DefaultIR,
): Decision {
  const errors: RuleError[] = errored.length === 0 ? [] : errored.map((index, i) => ({ rule: rules[index].id, message: errorText[i] }));
  let all = 0;
  for (let i = 0; i < appliedCount; i++) all |= flags[applied[i]];

  // 1. Any block (or failed condition) → block.
  if (errored.length > 0 || (all & BLOCKS) !== 0) {
    const blockers: number[] = [];
    let e = 0;
    for (let i = 0; i < appliedCount || e < errored.length; ) {
      const a = i < appliedCount ? applied[i] : Infinity;
      const b = e < errored.length ? errored[e] : Infinity;
      if (b <= a) {
        blockers.push(b);
        e++;
        if (a === b) i++;
      } else {
        if (flags[a] & BLOCKS) blockers.push(a);
        i++;
      }
    }
    const first = blockers[0];
    const errorAt = errored.indexOf(first);
    const message = errorAt >= 0 ? conditionErrorMessage(rules[first].id, errorText[errorAt]) : blockMessage(rules[first]);
    return { verdict: 'block', masks: emptyMasks(), approvers: [], message, reasons: blockers.map((i) => reasons[i]), defaulted: false, errors };
  }

  // 2. Any approve → approve, carrying every applying mask and all approver groups.
  if ((all & APPROVES) !== 0) {
    const approvers = new Set<string>();
    let within = Infinity;
    let quorum = 1;
    let lasting: number | null = Infinity;
    const why: Reason[] = [];
    for (let i = 0; i < appliedCount; i++) {
      const approve = rules[applied[i]].effects.approve;
      if (!approve) continue;
      for (const g of approve.groups) approvers.add(g);
      within = Math.min(within, approve.withinMs);
      quorum = Math.max(quorum, approve.quorum);
      lasting = lasting === null || approve.lastingMs === null ? null : Math.min(lasting, approve.lastingMs);
      why.push(reasons[applied[i]]);
    }
    const approved: Decision = {
      verdict: 'approve',
      masks: collectMasks(rules, applied, appliedCount),
      approvers: [...approvers].sort(),
      approvalWithinMs: within,
      ...(quorum > 1 ? { approvalQuorum: quorum } : {}),
      ...(lasting !== null && Number.isFinite(lasting) ? { approvalLastingMs: lasting } : {}),
      reasons: why,
      defaulted: false,
      errors,
    };
    return (all & LIMITS) === 0 ? approved : withLimits(approved, rules, applied, appliedCount);
  }

  // 3. Any allow → allow, or mask when a mask applies. 4. Otherwise the default.
  const granted = (all & ALLOWS) !== 0;
  if (!granted && defaults.effect === 'block') {
    return { verdict: 'block', masks: emptyMasks(), approvers: [], message: defaults.message ?? DEFAULT_BLOCK_MESSAGE, reasons: [], defaulted: true, errors };
  }
  if ((all & MASKS) === 0) {
    const why: Reason[] = [];
    for (let i = 0; i < appliedCount; i++) if (flags[applied[i]] & ALLOWS) why.push(reasons[applied[i]]);
    const allowed: Decision = { verdict: 'allow', masks: emptyMasks(), approvers: [], reasons: why, defaulted: !granted, errors };
    return (all & LIMITS) === 0 ? allowed : withLimits(allowed, rules, applied, appliedCount);
  }
  const masks = collectMasks(rules, applied, appliedCount);
  const masked = masks.columns.length > 0 || masks.detectors.length > 0;
  const why: Reason[] = [];
  for (let i = 0; i < appliedCount; i++) {
    const effects = rules[applied[i]].effects;
    if (effects.allow || (masked && hasMask(rules[applied[i]]))) why.push(reasons[applied[i]]);
  }
  const decided: Decision = { verdict: masked ? 'mask' : 'allow', masks, approvers: [], reasons: why, defaulted: !granted, errors };
  return (all & LIMITS) === 0 ? decided : withLimits(decided, rules, applied, appliedCount);
}

/**
 * The applying rules' limits (only called when one of them has a limit): the smallest row limit and
 * shortest time limit (the first rule in id order on a tie), every rate limit in rule id order.
 */
function withLimits(d: Decision, rules: readonly LoweredRule[], applied: ArrayLike<number>, count: number): Decision {
  const limits: Limits = { rate: [] };
  for (let i = 0; i < count; i++) {
    const rule = rules[applied[i]];
    const l = rule.effects.limits;
    if (l === null) continue;
    if (l.rows !== null && (limits.rows === undefined || l.rows < limits.rows.rows)) limits.rows = { rows: l.rows, rule: rule.id };
    if (l.timeMs !== null && (limits.time === undefined || l.timeMs < limits.time.ms)) limits.time = { ms: l.timeMs, rule: rule.id };
    for (const r of l.rates) limits.rate.push({ count: r.count, windowMs: r.windowMs, rule: rule.id });
  }
  d.limits = limits;
  return d;
}

export function hasMask(rule: LoweredRule): boolean {
  return rule.effects.columnMasks.length > 0 || rule.effects.detectorMasks.length > 0;
}

function collectMasks(rules: readonly LoweredRule[], applied: ArrayLike<number>, count: number): Masks {
  const columns: ColumnMask[] = [];
  const detectors: DetectorMask[] = [];
  for (let i = 0; i < count; i++) {
    const rule = rules[applied[i]];
    for (const m of rule.effects.columnMasks) columns.push({ column: m.column, masker: m.masker, rule: rule.id });
    for (const m of rule.effects.detectorMasks) detectors.push({ detectors: m.detectors, masker: m.masker, rule: rule.id });
  }
  return { columns: sortColumnMasks(columns), detectors };
}

/** Stable sort by column, then drop exact repeats (same column, masker and rule). */
export function sortColumnMasks(columns: ColumnMask[]): ColumnMask[] {
  if (columns.length < 2) return columns;
  const sorted = columns
    .map((m, i) => ({ m, i }))
    .sort((a, b) => (a.m.column < b.m.column ? -1 : a.m.column > b.m.column ? 1 : a.i - b.i))
    .map((x) => x.m);
  return sorted.filter((m, i) => i === 0 || !sameColumnMask(m, sorted[i - 1]));
}

function sameColumnMask(a: ColumnMask, b: ColumnMask): boolean {
  return a.column === b.column && a.rule === b.rule && a.masker.name === b.masker.name && a.masker.args.join(',') === b.masker.args.join(',');
}
