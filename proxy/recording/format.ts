// The session recording format (docs/recordings.md): one JSON Lines file per session.
//   line 1:   {"type":"header","version":1, ...SessionHeader}
//   then:     {"type":"statement", ...StatementEvent}   one per statement, in order
//   last:     {"type":"footer","ended_at":..., "statements":N, "verdicts":{...}}   (absent if the gateway died)

import type { SessionHeader, StatementEvent } from '../ports.ts';
import type { Decision, Masks, MaskerSpec, Verdict } from '../../engine/response.ts';

export const RECORDING_VERSION = 1;

export interface RecordingHeader extends SessionHeader {
  type: 'header';
  version: number;
}

export interface RecordingStatement extends StatementEvent {
  type: 'statement';
}

export interface RecordingFooter {
  type: 'footer';
  ended_at: string;
  statements: number;
  verdicts: Partial<Record<Verdict, number>>;
}

/** `20261126T010203Z-<session_id>.jsonl`: names sort by start time. */
export function recordingFileName(header: SessionHeader): string {
  const t = new Date(header.started_at);
  const stamp = Number.isNaN(t.getTime()) ? 'unknown' : t.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const id = header.session_id.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${stamp}-${id}.jsonl`;
}

/**
 * The policy decision's masks as canonical, sorted strings (`StatementEvent.decision_masks`):
 * `column public.customers.email with hash`, `detect credit_card+us_ssn with redact`,
 * `... with partial(4)`. Which rule asked for a mask is left out on purpose: renaming a rule does
 * not change what the client sees, so it must not read as a change in a dry-run.
 */
export function describeMasks(masks: Masks): string[] {
  const out = new Set<string>();
  for (const m of masks.columns) out.add(`column ${m.column} with ${masker(m.masker)}`);
  for (const m of masks.detectors) {
    const names = m.detectors.map((d) => (d.args.length ? `${d.name}(${d.args.map((a) => JSON.stringify(a)).join(', ')})` : d.name)).sort();
    out.add(`detect ${names.join('+')} with ${masker(m.masker)}`);
  }
  return [...out].sort();
}

function masker(m: MaskerSpec): string {
  return m.args.length ? `${m.name}(${m.args.join(', ')})` : m.name;
}

/**
 * The `decision_masks` field for a statement event. Written whenever the decision could carry
 * masks (`mask`, `approve`, or any masks at all), even when empty, so that a reader can tell
 * "no masks" from "recorded before the field existed" (see `recordedDecisionMasks`).
 */
export function decisionMasksField(d: Decision): { decision_masks?: string[] } {
  const any = d.masks.columns.length > 0 || d.masks.detectors.length > 0;
  return any || d.verdict === 'mask' || d.verdict === 'approve' ? { decision_masks: describeMasks(d.masks) } : {};
}

/**
 * The recorded decision's masks, or undefined when the recording does not say (a `mask` or
 * `approve` statement from a gateway that did not write `decision_masks` yet). `allow` and
 * `block` decisions never carry masks.
 */
export function recordedDecisionMasks(e: Pick<StatementEvent, 'verdict' | 'decision_masks'>): string[] | undefined {
  if (e.decision_masks) return e.decision_masks;
  return e.verdict === 'allow' || e.verdict === 'block' ? [] : undefined;
}
