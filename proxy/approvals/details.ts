// What an approver is shown besides the statement: the policy's explanation of why it needs an
// approval (the rules, where they are, what the request does) and what it would run with (masks
// and limits). Built once when the approval is requested and stored with it, so the page shows
// what was decided even after the policy changed.

import type { Decision } from '../../engine/response.ts';
import type { Action } from '../../stdlib/facts.ts';
import type { ApprovalDetails } from '../ports.ts';
import { describeMasks } from '../recording/format.ts';

export function approvalDetails(action: Action, decision: Decision): ApprovalDetails {
  const d: ApprovalDetails = {
    kind: action.kind,
    rules: decision.reasons.map((r) => ({ id: r.id, at: `${r.span.file}:${r.span.startLine}:${r.span.startColumn}` })),
    masks: describeMasks(decision.masks),
    limits: describeLimits(decision),
  };
  if (action.type === 'sql') {
    if (action.reads.length > 0) d.reads = [...action.reads];
    if (action.writes.length > 0) d.writes = [...action.writes];
    if (!action.has_where) d.notes = ['no WHERE clause'];
  } else if (action.type === 'shell') {
    d.programs = [...action.programs];
    if (action.redirects.length > 0) d.writes = [...action.redirects];
  } else if (action.type === 'sftp') {
    d.paths = action.target !== undefined ? [action.path, action.target] : [action.path];
  }
  return d;
}

/** `limit` effects (issue 11) as an approver reads them; none when the engine has none. */
function describeLimits(decision: Decision): string[] {
  const limits = (decision as { limits?: { rows?: { rows: number; rule: string }; time?: { ms: number; rule: string }; rate?: { count: number; windowMs: number; rule: string }[] } }).limits;
  if (!limits) return [];
  const out: string[] = [];
  if (limits.rows) out.push(`rows ${limits.rows.rows} (${limits.rows.rule})`);
  if (limits.time) out.push(`time ${seconds(limits.time.ms)} (${limits.time.rule})`);
  for (const r of limits.rate ?? []) out.push(`rate ${r.count} per ${seconds(r.windowMs)} (${r.rule})`);
  return out;
}

function seconds(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}
