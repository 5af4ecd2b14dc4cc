// `hoop policy dry-run`: re-decide every recorded statement under a candidate policy and report
// what would change.
//
// Streams: one recording at a time, one line at a time; what is kept is counts (the old × new
// verdict matrix, per-group counts) and at most `examplesPerGroup` examples per group, so memory
// does not grow with the amount of traffic. Deterministic: files in name order, examples in
// (file, line) order (the first ones met), groups sorted by name; nothing depends on timing.

import type { Explanation, PreparedPolicy, Verdict } from '../engine/index.ts';
import { readRecordingBatches, RecordingError, type RecordingHeader } from '../proxy/recording/index.ts';
import { changeCause, compareOutcomes, decidedOutcome, recordedOutcome, sameAsRecorded, VERDICTS, type ChangedField, type Outcome } from './compare.ts';
import { createRedecider, firstRequest, type Classifiers } from './redecide.ts';
import type { Decision } from '../engine/index.ts';

export interface DryRunOptions {
  /** Recording files, in the order to read them (see `recordingFiles`). */
  files: readonly string[];
  /** Report corrupt lines (and files whose header is unreadable) and go on. */
  skipBad?: boolean;
  /** Report only changes into or out of these verdicts (all changes when absent). */
  only?: readonly Verdict[];
  /** Examples kept per group (default 3). */
  examplesPerGroup?: number;
  onProgress?: (p: DryRunProgress) => void;
}

export interface DryRunProgress {
  filesDone: number;
  filesTotal: number;
  statements: number;
  file: string;
}

export interface ChangeExample {
  file: string;
  line: number;
  session_id: string;
  sub: string;
  resource: string;
  /** The decision time used for the replay. */
  time: string;
  text: string;
  fields: ChangedField[];
  before: Outcome;
  after: Outcome;
  /** Why the candidate policy decided as it did (first statement of the text). */
  explanation: Explanation;
}

export interface ChangeGroup {
  /** The rule(s) the change is attributed to (`changeCause`). */
  cause: string;
  count: number;
  /** `old→new` verdict transitions within the group, with counts. */
  transitions: Record<string, number>;
  examples: ChangeExample[];
}

export interface BadLine {
  file: string;
  line: number;
  message: string;
}

export interface DryRunReport {
  policy_hash: string;
  files: number;
  sessions: number;
  statements: number;
  /** Statements whose decision changed (verdict, masks or approvers), after `only`. */
  changed: number;
  /** Old verdict → new verdict → statements (every statement, changed or not). */
  matrix: Record<Verdict, Record<Verdict, number>>;
  /** Changed statements per changed field (one statement may count in several). */
  changed_fields: Record<ChangedField, number>;
  /** Statements whose recorded masks are unknown (recordings that predate `decision_masks`). */
  masks_unknown: number;
  groups: ChangeGroup[];
  bad_lines: number;
  /** The first corrupt lines (at most 100). */
  bad: BadLine[];
}

export type DryRunResult = { ok: true; report: DryRunReport } | { ok: false; error: RecordingError };

const MAX_BAD_KEPT = 100;
/** Distinct groups kept; further causes are counted under one overflow group. */
const MAX_GROUPS = 500;
const OVERFLOW = '(other rules)';

export async function dryRun(policy: PreparedPolicy, classifiers: Classifiers, opts: DryRunOptions): Promise<DryRunResult> {
  const perGroup = opts.examplesPerGroup ?? 3;
  const only = opts.only && opts.only.length > 0 ? new Set(opts.only) : undefined;
  const redecider = createRedecider(policy, classifiers);
  const matrix = emptyMatrix();
  const fields: Record<ChangedField, number> = { verdict: 0, masks: 0, approvers: 0 };
  const groups = new Map<string, ChangeGroup>();
  const outcomes = new WeakMap<Decision, Outcome>();
  const bad: BadLine[] = [];
  let badCount = 0;
  let sessions = 0;
  let statements = 0;
  let changed = 0;
  let masksUnknown = 0;
  let filesDone = 0;

  const noteBad = (error: RecordingError) => {
    badCount += 1;
    if (bad.length < MAX_BAD_KEPT) bad.push({ file: error.file, line: error.line, message: error.detail });
  };

  for (const file of opts.files) {
    opts.onProgress?.({ filesDone, filesTotal: opts.files.length, statements, file });
    let header: RecordingHeader | undefined;
    let session: ReturnType<typeof redecider.session> | undefined;
    try {
      for await (const batch of readRecordingBatches(file, { skipBad: opts.skipBad })) for (const e of batch) {
        if (e.type === 'header') {
          header = e.header;
          session = redecider.session(header);
          sessions += 1;
          continue;
        }
        if (e.type === 'bad') {
          noteBad(e.error);
          continue;
        }
        if (e.type !== 'statement') continue;
        const event = e.event;
        statements += 1;
        if ((statements & 0xffff) === 0) opts.onProgress?.({ filesDone, filesTotal: opts.files.length, statements, file });
        const redecided = session!.decide(event);
        let after = outcomes.get(redecided.decision);
        if (!after) {
          after = decidedOutcome(redecided.decision);
          outcomes.set(redecided.decision, after);
        }
        if (sameAsRecorded(event, after)) {
          matrix[after.verdict][after.verdict] += 1;
          continue;
        }
        const before = recordedOutcome(event);
        if (before.masks === undefined) masksUnknown += 1;
        matrix[before.verdict][after.verdict] += 1;
        const diff = compareOutcomes(before, after);
        if (diff.length === 0) continue;
        if (only && !only.has(before.verdict) && !only.has(after.verdict)) continue;
        changed += 1;
        for (const f of diff) fields[f] += 1;
        let cause = changeCause(before, after);
        if (!groups.has(cause) && groups.size >= MAX_GROUPS) cause = OVERFLOW;
        let group = groups.get(cause);
        if (!group) {
          group = { cause, count: 0, transitions: {}, examples: [] };
          groups.set(cause, group);
        }
        group.count += 1;
        const t = `${before.verdict}→${after.verdict}`;
        group.transitions[t] = (group.transitions[t] ?? 0) + 1;
        if (group.examples.length < perGroup) {
          const h = header!;
          const request = firstRequest(redecided);
          group.examples.push({
            file,
            line: e.line,
            session_id: h.session_id,
            sub: h.identity.sub,
            resource: `${h.resource.kind}/${h.resource.name}`,
            time: redecided.context.time,
            text: event.text,
            fields: diff,
            before,
            after,
            explanation: request ? policy.explain(request) : { decision: redecided.decision, rules: [], facts: {} },
          });
        }
      }
    } catch (err) {
      if (!(err instanceof RecordingError)) throw err;
      // A file whose header cannot be read is one bad line under --skip-bad; a future format never is.
      if (!opts.skipBad || err.code === 'future_version' || err.code === 'unreadable') return { ok: false, error: err };
      noteBad(err);
    }
    filesDone += 1;
  }
  opts.onProgress?.({ filesDone, filesTotal: opts.files.length, statements, file: '' });

  return {
    ok: true,
    report: {
      policy_hash: policy.hash,
      files: opts.files.length,
      sessions,
      statements,
      changed,
      matrix,
      changed_fields: fields,
      masks_unknown: masksUnknown,
      groups: [...groups.values()].sort((a, b) => (a.cause < b.cause ? -1 : a.cause > b.cause ? 1 : 0)),
      bad_lines: badCount,
      bad,
    },
  };
}

function emptyMatrix(): Record<Verdict, Record<Verdict, number>> {
  const m = {} as Record<Verdict, Record<Verdict, number>>;
  for (const a of VERDICTS) {
    m[a] = {} as Record<Verdict, number>;
    for (const b of VERDICTS) m[a][b] = 0;
  }
  return m;
}
