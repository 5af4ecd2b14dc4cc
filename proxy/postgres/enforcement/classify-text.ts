// Where a statement is classified (issue 14 item 11): inline when short (a worker round trip costs
// more than classifying it), in the classifier pool when long, so that no statement, however long,
// holds the event loop every session shares. Either way the same classifier decides the facts, and
// the same policy the verdict.

import type { SqlClassifyOptions } from '../../../stdlib/facts.ts';
import type { AnalyzedStatement } from '../../../stdlib/sql/index.ts';
import type { ClassifierPool } from './classifier-pool.ts';
import type { SessionClassifier } from './statements.ts';

/** Texts shorter than this are classified on the event loop (worst case, a dense IN list: ~10 ms). */
export const CLASSIFY_INLINE_BELOW = 16 * 1024;

export interface TextClassifiers {
  classifier: SessionClassifier;
  /** Without a pool every statement is classified inline. */
  pool?: ClassifierPool | undefined;
}

export type Analyzed = { ok: true; statements: readonly AnalyzedStatement[] } | { ok: false; reason: string };

/** The statements of `text`, classified inline or in the pool; never rejects (a failure is `ok: false`: refuse). */
export function analyzeText(via: TextClassifiers, text: string, names: SqlClassifyOptions | undefined): Analyzed | Promise<Analyzed> {
  if (via.pool && text.length >= CLASSIFY_INLINE_BELOW) return via.pool.analyze(text, names);
  try {
    return { ok: true, statements: via.classifier.analyze(text, names) };
  } catch (e) {
    // The contract says classify never throws; if it does, nothing runs.
    return { ok: false, reason: `classifier failed: ${(e as Error).message}` };
  }
}
