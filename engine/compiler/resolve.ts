// Stage 1, resolve: flatten a set of parsed files into rules with fully qualified ids, in id order,
// plus the set's default and its tests. Files are taken in name order, so nothing downstream
// depends on the order the caller listed them in.

import type { PolicyFile, Rule, TestCase } from '../../language/ast.ts';
import { effectiveDefault } from '../../language/check-set.ts';
import { ruleId } from '../names.ts';
import type { DefaultIR } from '../tree.ts';

export interface ResolvedRule {
  id: string;
  package: string;
  file: string;
  rule: Rule;
}

export interface ResolvedTest {
  package: string;
  file: string;
  test: TestCase;
}

export interface ResolvedSet {
  files: PolicyFile[];
  rules: ResolvedRule[];
  default: DefaultIR;
  tests: ResolvedTest[];
}

export function packageOf(file: PolicyFile): string {
  return file.package?.value ?? '';
}

export function resolve(input: readonly PolicyFile[]): ResolvedSet {
  const files = [...input].sort((a, b) => compare(a.file, b.file));
  const rules: ResolvedRule[] = [];
  const tests: ResolvedTest[] = [];
  for (const file of files) {
    const pkg = packageOf(file);
    for (const rule of file.rules) rules.push({ id: ruleId(pkg, rule.name.value), package: pkg, file: file.file, rule });
    for (const test of file.tests) tests.push({ package: pkg, file: file.file, test });
  }
  // Duplicate ids (HOOP2005) are reported elsewhere; a stable order keeps the output deterministic.
  rules.sort((a, b) => compare(a.id, b.id) || compare(a.file, b.file) || a.rule.span.startOffset - b.rule.span.startOffset);
  // The language's rule (language/check-set.ts): block if any file says block, allow only if every
  // file that declares a default says allow; conflicts are warned about (HOOP5001).
  const decided = effectiveDefault(files);
  const defaultIR: DefaultIR = { effect: decided.effect, message: decided.decl?.effect === 'block' ? decided.decl.message?.value : undefined, span: decided.decl?.span };
  return { files, rules, default: defaultIR, tests };
}

/** Code-unit order: locale-independent, the same on every machine. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
