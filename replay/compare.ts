// What counts as a changed decision, and which rule a change is attributed to.
//
// Compared: the verdict, the decision's masks (canonical strings, `describeMasks`) and the approver
// groups. Not compared: the rule ids (renaming a rule changes nothing the client sees) and the
// block message. Masks are compared only when the recording says what they were (see
// `recordedDecisionMasks`).

import type { Decision, Verdict } from '../engine/index.ts';
import { describeMasks, recordedDecisionMasks, type RecordingStatement } from '../proxy/recording/index.ts';

export type ChangedField = 'verdict' | 'masks' | 'approvers';

/** A decision reduced to what a dry-run compares and shows. */
export interface Outcome {
  verdict: Verdict;
  /** Undefined: not known (a recording that predates `decision_masks`). */
  masks: string[] | undefined;
  approvers: string[];
  rules: string[];
}

export const VERDICTS: readonly Verdict[] = ['allow', 'mask', 'approve', 'block'];

export function recordedOutcome(e: RecordingStatement): Outcome {
  const masks = recordedDecisionMasks(e);
  return {
    verdict: e.verdict,
    masks: masks && [...masks].sort(),
    approvers: [...new Set(e.approvers ?? [])].sort(),
    rules: [...e.reasons].sort(),
  };
}

export function decidedOutcome(d: Decision): Outcome {
  return {
    verdict: d.verdict,
    masks: describeMasks(d.masks),
    approvers: [...new Set(d.approvers)].sort(),
    rules: d.reasons.map((r) => r.id).sort(),
  };
}

/** The fields that differ; empty when the decision is unchanged. */
export function compareOutcomes(before: Outcome, after: Outcome): ChangedField[] {
  const out: ChangedField[] = [];
  if (before.verdict !== after.verdict) out.push('verdict');
  if (before.masks !== undefined && after.masks !== undefined && !sameList(before.masks, after.masks)) out.push('masks');
  if (!sameList(before.approvers, after.approvers)) out.push('approvers');
  return out;
}

/**
 * The rule a change is attributed to: the rules that now decide and did not before; else the rules
 * that decided before and no longer do; else (same rules, different effect) the deciding rules;
 * `(default)` when no rule decides either way.
 */
export function changeCause(before: Outcome, after: Outcome): string {
  const was = new Set(before.rules);
  const now = new Set(after.rules);
  const added = after.rules.filter((r) => !was.has(r));
  if (added.length > 0) return added.join(', ');
  const removed = before.rules.filter((r) => !now.has(r));
  if (removed.length > 0) return `no longer: ${removed.join(', ')}`;
  if (after.rules.length > 0) return after.rules.join(', ');
  return '(default)';
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const NONE: readonly string[] = [];

/**
 * The allocation-free common case: the recorded decision equals the new one as written (the
 * gateway writes masks and approvers sorted). False means "compare properly", not "changed".
 */
export function sameAsRecorded(e: RecordingStatement, after: Outcome): boolean {
  if (e.verdict !== after.verdict) return false;
  if (!sameList(e.approvers ?? NONE, after.approvers)) return false;
  const masks = e.decision_masks ?? (e.verdict === 'allow' || e.verdict === 'block' ? NONE : undefined);
  return masks !== undefined && after.masks !== undefined && sameList(masks, after.masks);
}
