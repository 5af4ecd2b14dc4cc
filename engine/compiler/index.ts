// The compiler: parsed files → CompiledPolicyIR, as named stages run in order (OPA's compile.go
// pattern): resolve → check → lower → build-tree. A stage appends diagnostics and the pipeline
// stops before `lower` when any are errors, so a broken set never yields a policy. Each stage's
// wall time is recorded under its name (the benchmark prints them).

import type { PolicyFile } from '../../language/ast.ts';
import { hasErrors, type Diagnostic } from '../../language/diagnostics.ts';
import type { CelEnvironment } from '../../stdlib/cel.ts';
import type { Registry } from '../../stdlib/registry.ts';
import { TREE_VERSION, type CompiledPolicyIR } from '../tree.ts';
import { buildTree } from './build-tree.ts';
import { check } from './check.ts';
import { lower } from './lower.ts';
import { resolve, type ResolvedSet } from './resolve.ts';

export const STAGES = ['resolve', 'check', 'lower', 'build-tree'] as const;
export type StageName = (typeof STAGES)[number];

export interface CompileResult {
  ir?: CompiledPolicyIR;
  resolved: ResolvedSet;
  diagnostics: Diagnostic[];
  /** Milliseconds per stage. */
  timings: Partial<Record<StageName, number>>;
}

export function compileFiles(files: readonly PolicyFile[], registry: Registry, cel: CelEnvironment): CompileResult {
  const timings: CompileResult['timings'] = {};
  const timed = <T>(stage: StageName, run: () => T): T => {
    const start = performance.now();
    try {
      return run();
    } finally {
      timings[stage] = performance.now() - start;
    }
  };
  const resolved = timed('resolve', () => resolve(files));
  const diagnostics = timed('check', () => check(resolved, registry, cel));
  if (hasErrors(diagnostics)) return { resolved, diagnostics, timings };
  const rules = timed('lower', () => lower(resolved.rules));
  const tree = timed('build-tree', () => buildTree(rules));
  return { ir: { version: TREE_VERSION, rules, default: resolved.default, tree }, resolved, diagnostics, timings };
}
