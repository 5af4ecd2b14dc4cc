// Classifiers for replaying recordings: the same SQL and shell classifiers the gateway uses, with
// a larger classification cache (recorded traffic repeats the same statements many times over).

import { loadShellClassifier } from '../stdlib/shell/index.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { readViewWith } from '../stdlib/sql/read-view.ts';
import type { Classifiers } from './redecide.ts';

let loaded: Promise<Classifiers> | undefined;

export function loadReplayClassifiers(): Promise<Classifiers> {
  loaded ??= Promise.all([loadSqlClassifier({ cacheSize: 16_384 }), loadShellClassifier()]).then(([sql, shell]) => ({ sql, shell, readView: readViewWith(sql) }));
  return loaded;
}
