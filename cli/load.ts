// Shared by the policy commands: read and compile policy paths, print diagnostics, and load the
// classifiers once (the SQL and shell parsers are WASM modules: worth loading only when needed).

import { compilePolicy, loadPolicySources, type PolicySource, type PreparedPolicy } from '../engine/index.ts';
import { diagnosticsToJson, hasErrors, renderDiagnostics, type Diagnostic } from '../language/index.ts';
import type { Classifiers } from '../engine/tester/runner.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { readViewWith } from '../stdlib/sql/read-view.ts';
import { loadShellClassifier } from '../stdlib/shell/index.ts';

export type ErrorFormat = 'human' | 'json';

export interface Loaded {
  policy?: PreparedPolicy;
  sources: PolicySource[];
  diagnostics: Diagnostic[];
}

/** Reads every path (files or folders) and compiles them as one set. */
export async function loadPolicy(paths: readonly string[]): Promise<Loaded> {
  const sources: PolicySource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const p of paths.length ? paths : ['.']) {
    const r = await loadPolicySources(p);
    sources.push(...r.sources);
    diagnostics.push(...r.diagnostics);
  }
  if (hasErrors(diagnostics)) return { sources, diagnostics };
  const compiled = compilePolicy(sources);
  return { policy: compiled.policy, sources, diagnostics: [...diagnostics, ...compiled.diagnostics] };
}

export function sourceMap(sources: readonly PolicySource[]): Map<string, string> {
  return new Map(sources.map((s) => [s.file, s.text]));
}

/** Prints diagnostics to stderr (human) or stdout (json). Returns true when any is an error. */
export function reportDiagnostics(loaded: Loaded, format: ErrorFormat): boolean {
  const errors = hasErrors(loaded.diagnostics);
  if (loaded.diagnostics.length > 0) {
    if (format === 'json') process.stdout.write(`${JSON.stringify({ diagnostics: diagnosticsToJson(loaded.diagnostics) }, null, 2)}\n`);
    else process.stderr.write(`${renderDiagnostics(loaded.diagnostics, sourceMap(loaded.sources))}\n`);
  }
  return errors;
}

let classifiers: Promise<Classifiers> | undefined;
export function loadClassifiers(): Promise<Classifiers> {
  classifiers ??= Promise.all([loadSqlClassifier(), loadShellClassifier()]).then(([sql, shell]) => ({ sql, shell, readView: readViewWith(sql) }));
  return classifiers;
}

export function parseErrorFormat(v: string | undefined): ErrorFormat {
  if (v === undefined || v === 'human') return 'human';
  if (v === 'json') return 'json';
  throw new UsageError(`--error-format must be human or json, not ${JSON.stringify(v)}`);
}

/** A bad flag value: exit 2 with the message. */
export class UsageError extends Error {}
