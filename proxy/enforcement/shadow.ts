// Shadow policy (DESIGN.md "The gateway": `policy_shadow:`): every request is decided by the active
// set, which is enforced, and by a candidate set, which is not. Where the two would enforce
// something different — another verdict, other masks, other approvers, other limits, another block
// message — the request's audit record gets `shadow: {verdict, reasons, ...}` and /metrics counts
// it; `hoop shadow report` summarises the records. Pure: no I/O, no sockets.

import type { Decision, Limits, Masks } from '../../engine/response.ts';

/** What the audit record carries about a disagreement (absent when the two sets agree). */
export interface ShadowRecord {
  /** The candidate's verdict. */
  verdict: Decision['verdict'];
  /** The rules that determined it (ids, sorted). */
  reasons: string[];
  /** What differs from the active decision: `verdict`, `masks`, `approvers`, `limits`, `message`. */
  differs: ShadowDifference[];
  /** The candidate's block message, when it blocks. */
  message?: string;
  /** The candidate's masks (`schema.table.column=masker`, detectors `d1+d2=masker`), when they differ. */
  masks?: string[];
  /** The candidate's approver groups, when they differ. */
  approvers?: string[];
  /** The candidate's limits, when they differ. */
  limits?: Limits;
  /** The candidate's set (its hash), so a report can tell candidates apart across reloads. */
  policy?: string;
}

export type ShadowDifference = 'verdict' | 'masks' | 'approvers' | 'limits' | 'message';

/** Masks as the audit record lists them. */
export function maskTexts(m: Masks): string[] {
  const out: string[] = [];
  for (const c of m.columns) out.push(`${c.column}=${c.masker.name}${c.masker.args.length ? `(${c.masker.args.join(',')})` : ''}`);
  for (const d of m.detectors) out.push(`${d.detectors.map((x) => x.name).join('+')}=${d.masker.name}${d.masker.args.length ? `(${d.masker.args.join(',')})` : ''}`);
  return [...new Set(out)].sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Limit values only (which rule set one is the reasons' business). */
function limitKey(l: Limits | undefined): string {
  if (!l) return '';
  const rates = l.rate.map((r) => `${r.count}/${r.windowMs}`).sort().join(',');
  return `${l.rows?.rows ?? ''};${l.time?.ms ?? ''};${rates}`;
}

/**
 * The disagreement between the enforced decision and the candidate's, or undefined when the
 * candidate would have enforced exactly the same thing (reasons alone differing is agreement: the
 * client would see no difference).
 */
export function shadowDisagreement(active: Decision, shadow: Decision, policyHash?: string): ShadowRecord | undefined {
  const differs: ShadowDifference[] = [];
  if (active.verdict !== shadow.verdict) differs.push('verdict');
  const runs = shadow.verdict !== 'block' && active.verdict !== 'block';
  const activeMasks = runs ? maskTexts(active.masks) : [];
  const shadowMasks = runs ? maskTexts(shadow.masks) : [];
  if (runs && !sameList(activeMasks, shadowMasks)) differs.push('masks');
  if (active.verdict === 'approve' && shadow.verdict === 'approve' && !sameList(active.approvers, shadow.approvers)) differs.push('approvers');
  if (runs && limitKey(active.limits) !== limitKey(shadow.limits)) differs.push('limits');
  if (active.verdict === 'block' && shadow.verdict === 'block' && active.message !== shadow.message) differs.push('message');
  if (differs.length === 0) return undefined;
  const out: ShadowRecord = { verdict: shadow.verdict, reasons: shadow.reasons.map((r) => r.id), differs };
  if (shadow.verdict === 'block' && shadow.message !== undefined) out.message = shadow.message;
  if (differs.includes('masks')) out.masks = shadowMasks;
  if (differs.includes('approvers')) out.approvers = shadow.approvers;
  if (differs.includes('limits') && shadow.limits) out.limits = shadow.limits;
  if (policyHash) out.policy = policyHash.slice(0, 12);
  return out;
}
