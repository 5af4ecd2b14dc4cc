// One decision for a message that holds several statements (DESIGN.md: "if any is blocked, none
// runs"): the most restrictive verdict wins (block ⊒ approve ⊒ mask ⊒ allow).
//
// - reasons: the union (by id, sorted) of the reasons of the statements whose verdict is the
//   winning one; for `mask`, also those of `allow` statements (they granted access too);
// - masks and approvers: the union over all statements (none on block);
// - message: the first blocked statement's; approvalWithinMs: the minimum;
// - defaulted: every statement with the winning verdict was decided by the default;
// - errors: the union. An empty list is a block (there is nothing that was allowed).
// - limits (not on block): the smallest rows and time over all statements, every rate limit once.

import { sortColumnMasks, emptyMasks } from './decide.ts';
import type { Decision, Limits, Reason, RuleError, Verdict } from './response.ts';
import type { SqlAction } from '../stdlib/facts.ts';
import type { ReadView } from '../stdlib/sql/read-view.ts';

const RANK: Record<Verdict, number> = { allow: 0, mask: 1, approve: 2, block: 3 };

export function combineDecisions(decisions: readonly Decision[]): Decision {
  if (decisions.length === 0) {
    return { verdict: 'block', masks: emptyMasks(), approvers: [], message: 'no statement to decide', reasons: [], defaulted: true, errors: [] };
  }
  if (decisions.length === 1) return decisions[0];
  let verdict: Verdict = 'allow';
  for (const d of decisions) if (RANK[d.verdict] > RANK[verdict]) verdict = d.verdict;
  const deciding = decisions.filter((d) => d.verdict === verdict || (verdict === 'mask' && d.verdict === 'allow'));

  const reasons = new Map<string, Reason>();
  for (const d of deciding) for (const r of d.reasons) if (!reasons.has(r.id)) reasons.set(r.id, r);
  const errors = new Map<string, RuleError>();
  for (const d of decisions) for (const e of d.errors) errors.set(`${e.rule}\u0000${e.message}`, e);

  const combined: Decision = {
    verdict,
    masks: emptyMasks(),
    approvers: [],
    reasons: [...reasons.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    defaulted: decisions.filter((d) => d.verdict === verdict).every((d) => d.defaulted),
    errors: [...errors.values()],
  };
  if (verdict === 'block') {
    combined.message = decisions.find((d) => d.verdict === 'block')?.message;
    return combined;
  }
  const detectorKeys = new Set<string>();
  for (const d of decisions) {
    combined.masks.columns.push(...d.masks.columns);
    for (const m of d.masks.detectors) {
      const key = JSON.stringify(m);
      if (!detectorKeys.has(key)) {
        detectorKeys.add(key);
        combined.masks.detectors.push(m);
      }
    }
  }
  combined.masks.columns = sortColumnMasks(combined.masks.columns);
  const limits = combineLimits(decisions);
  if (limits) combined.limits = limits;
  if (verdict === 'approve') {
    combined.approvers = [...new Set(decisions.flatMap((d) => d.approvers))].sort();
    const within = decisions.map((d) => d.approvalWithinMs).filter((w): w is number => w !== undefined);
    if (within.length > 0) combined.approvalWithinMs = Math.min(...within);
    const approving = decisions.filter((d) => d.verdict === 'approve');
    const quorum = Math.max(1, ...approving.map((d) => d.approvalQuorum ?? 1));
    if (quorum > 1) combined.approvalQuorum = quorum;
    const lasting = approving.map((d) => d.approvalLastingMs);
    if (lasting.length > 0 && lasting.every((l) => l !== undefined)) combined.approvalLastingMs = Math.min(...(lasting as number[]));
  }
  return combined;
}

function combineLimits(decisions: readonly Decision[]): Limits | undefined {
  let out: Limits | undefined;
  const rates = new Set<string>();
  for (const d of decisions) {
    const l = d.limits;
    if (!l) continue;
    out ??= { rate: [] };
    if (l.rows && (!out.rows || l.rows.rows < out.rows.rows || (l.rows.rows === out.rows.rows && l.rows.rule < out.rows.rule))) out.rows = l.rows;
    if (l.time && (!out.time || l.time.ms < out.time.ms || (l.time.ms === out.time.ms && l.time.rule < out.time.rule))) out.time = l.time;
    for (const r of l.rate) {
      const key = `${r.rule}\u0000${r.windowMs}\u0000${r.count}`;
      if (rates.has(key)) continue;
      rates.add(key);
      out.rate.push(r);
    }
  }
  out?.rate.sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : a.windowMs - b.windowMs || a.count - b.count));
  return out;
}

/**
 * `decision` with the masks of the read the statement contains (`read`, from stdlib/sql/read-view.ts)
 * added; `decideRead` decides that read, and is called only when it can change anything. An opaque
 * read (code whose reads cannot be known) is decided as reading every table in `tableScopes` too
 * (PreparedPolicy.tableScopes): a mask rule scoped `on tables` applies to it as to a read of them.
 */
export function withReadView(decision: Decision, read: ReadView | undefined, decideRead: (action: SqlAction) => Decision, tableScopes: readonly string[] = []): Decision {
  if (!read || decision.verdict === 'block') return decision;
  const view = read.opaque && tableScopes.length > 0 ? widenedRead(read, tableScopes) : read;
  const asRead = decideRead(view.action);
  // Code whose reads cannot be known may read what a rule blocks or holds for approval: a rule's
  // block or approve of that read stands too (not the default's: the statement's own rules decide
  // what runs otherwise).
  if (view.opaque && !asRead.defaulted) {
    if (asRead.verdict === 'block') return asRead;
    if (asRead.verdict === 'approve' && decision.verdict !== 'approve') return withReadMasks(asRead, decision);
  }
  return withReadMasks(decision, asRead, view.onlyColumnsOf);
}

/** The read view reading `tables` too (for an opaque one: every table a policy's scopes name). */
function widenedRead(read: ReadView, tables: readonly string[]): ReadView {
  const reads = [...read.action.reads];
  for (const t of tables) if (!reads.includes(t)) reads.push(t);
  // The classifier's actions keep their lazy fields in their prototype: copy it.
  return { ...read, action: Object.assign(Object.create(Object.getPrototypeOf(read.action) as object) as SqlAction, read.action, { reads }) };
}

/**
 * `decision` with the masks of `asRead` added: the same statement decided as the read it contains
 * (stdlib/sql/read-view.ts). Masks only tighten: an allow becomes a mask, nothing else changes
 * but the masks (and, for a mask, the reasons: the rules that mask are added); a block or approve
 * of the read view is not taken (the statement's own rules decide whether it runs).
 * `onlyColumnsOf`: take only the column masks of these (qualified) tables, and no detectors.
 */
function withReadMasks(decision: Decision, asRead: Decision, onlyColumnsOf?: readonly string[]): Decision {
  const columns = asRead.masks.columns.filter((m) => !decision.masks.columns.some((d) => d.column === m.column && d.rule === m.rule) && (!onlyColumnsOf || onlyColumnsOf.includes(tableOf(m.column))));
  const detectors = onlyColumnsOf ? [] : asRead.masks.detectors.filter((m) => !decision.masks.detectors.some((d) => d.rule === m.rule));
  if (columns.length === 0 && detectors.length === 0) return decision;
  const masks = { columns: [...decision.masks.columns, ...columns], detectors: [...decision.masks.detectors, ...detectors] };
  // An approve carries every applying mask, and its reasons stay the rules that ask for approval.
  if (decision.verdict === 'approve') return { ...decision, masks };
  // A mask's reasons are the rules granting plus those masking (DESIGN.md, Semantics).
  const masking = new Set([...columns, ...detectors].map((m) => m.rule));
  const reasons = [...decision.reasons, ...asRead.reasons.filter((r) => masking.has(r.id) && !decision.reasons.some((d) => d.id === r.id))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { ...decision, verdict: 'mask', masks, reasons };
}

/** `schema.table` of a column mask's `schema.table.column` (`table.column` is in `public`). */
function tableOf(column: string): string {
  const parts = column.split('.');
  parts.pop();
  return parts.length === 1 ? `public.${parts[0]}` : parts.join('.');
}
