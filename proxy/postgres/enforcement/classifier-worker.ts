// The classifier pool's worker (classifier-pool.ts): the same SQL classifier as the event loop
// (stdlib/sql), so a statement gets the same facts wherever it is classified. It answers with plain
// data: the facts with `normalized` and `fingerprint` already computed (each is another pass of the
// parser over the text: done here, not on the event loop), and what the session reads from the AST
// (its PREPARE/DECLARE/... change and its search_path/temporary-table effects). ASTs stay here.

import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { SqlAction, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import { loadSqlClassifier, portableRawNames, restoredAction, sessionChange } from '../../../stdlib/sql/index.ts';
import { sessionEffects } from '../../../stdlib/sql/search-path.ts';
import type { PoolAnswer, PoolJob, PooledStatement } from './classifier-pool.ts';

// Background work: on Linux a priority set for "process 0" applies to the calling thread only, so
// this thread yields the CPU to the event loop (which answers every other session) when both want it.
try {
  setPriority(0, 19);
} catch {
  // Not permitted or not supported: the worker runs at normal priority.
}

const classifier = await loadSqlClassifier({ cacheSize: 0 });

/** Texts equal to the job's are not copied back (a long statement is most of the answer); the pool puts them back. */
const SAME = '\u0000input';

parentPort!.on('message', (job: PoolJob) => {
  let answer: PoolAnswer;
  try {
    const names: SqlClassifyOptions = {};
    // As actions again: an EXECUTE resolves its PREPARE's unqualified names anew (walk.ts mergeAction).
    const restore = (list: PoolJob['prepared']): Map<string, SqlAction> => new Map(list.map(([name, { raw, ...a }]) => [name, restoredAction({ text: '', normalized: '', fingerprint: '', ...a } as SqlAction, raw)]));
    if (job.prepared.length > 0) names.prepared = restore(job.prepared);
    if (job.cursors.length > 0) names.cursors = restore(job.cursors);
    const statements = classifier.analyze(job.text, names.prepared || names.cursors ? names : undefined).map((s): PooledStatement => {
      const action = JSON.parse(JSON.stringify(s.action)) as SqlAction;
      const raw = portableRawNames(s.action);
      if (action.text === job.text) action.text = SAME;
      if (action.normalized === job.text) action.normalized = SAME;
      return {
        text: s.text === job.text ? SAME : s.text,
        ast: null,
        action,
        change: sessionChange(s),
        effects: sessionEffects(s.ast),
        ...(raw ? { raw } : {}),
        ...(s.parseError ? { parseError: s.parseError } : {}),
      };
    });
    answer = { id: job.id, ok: true, statements };
  } catch (e) {
    answer = { id: job.id, ok: false, reason: `classifier failed: ${(e as Error).message}` };
  }
  parentPort!.postMessage(answer);
});
parentPort!.postMessage({ ready: true });
