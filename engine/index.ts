// The engine's public API: what the proxy and the CLI call. Keep it small and stable.
//
//   const { sources, diagnostics } = await loadPolicySources('./policies');   // a .hoop file or a folder
//   const { policy, files, diagnostics } = compilePolicy(sources);            // registry optional
//   if (!policy) → report diagnostics (language/render.ts), refuse to load
//   policy.evaluate(request)          → Decision        never throws; internal failure = block
//   policy.explain(request)           → Explanation     per-rule outcome + the facts
//   policy.evaluateReference(request) → Decision        the plain AST interpreter (tests, dry-run)
//   policy.ruleCount, policy.hash, policy.tests, policy.rules, policy.ir
//   combineDecisions(decisions)       → Decision        several statements in one message
//
// `compileFiles(files)` does the same from already parsed ASTs (tests, generated policies).
// Decisions are described in engine/response.ts; requests in stdlib/facts.ts.

import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { PolicyFile, Span, TestCase } from '../language/ast.ts';
import { hasErrors, sortDiagnostics, type Diagnostic } from '../language/diagnostics.ts';
import { checkPolicySet, parse } from '../language/index.ts';
import { celEnvironment, type CelEnvironment } from '../stdlib/cel.ts';
import type { Request } from '../stdlib/facts.ts';
import { defaultRegistry, type Registry } from '../stdlib/registry.ts';
import { compileFiles as runCompiler, type StageName } from './compiler/index.ts';
import { Evaluator } from './evaluator.ts';
import { explain } from './explain.ts';
import { interpret } from './reference/interpreter.ts';
import type { Decision, Explanation } from './response.ts';
import type { CompiledPolicyIR } from './tree.ts';

export { combineDecisions, withReadView } from './combine.ts';
export type { Decision, Explanation, Reason, Masks, ColumnMask, DetectorMask, MaskerSpec, DetectorSpec, RuleError, RuleOutcome, Verdict, Limits, RowLimit, TimeLimit, RateLimit } from './response.ts';
export type { CompiledPolicyIR } from './tree.ts';
export { defaultRegistry, type Registry } from '../stdlib/registry.ts';

export interface PolicySource {
  file: string;
  text: string;
}

/** A test block with where it came from (for `hoop policy test`). */
export interface PolicyTest {
  package: string;
  file: string;
  test: TestCase;
}

/** A rule and its effects (for coverage reports). */
export interface RuleSummary {
  id: string;
  rule: string;
  package: string;
  span: Span;
  /** Effect kinds in source order: `allow`, `block`, `approve`, `mask column`, `mask detect`. */
  effects: string[];
}

export interface PreparedPolicy {
  evaluate(req: Request): Decision;
  /** Some condition reads `sql.estimate` (cost facts). */
  readonly estimates: boolean;
  /** A rule that may apply to this request reads `sql.estimate`: ask for one before `evaluate`. */
  needsEstimate(req: Request): boolean;
  explain(req: Request): Explanation;
  evaluateReference(req: Request): Decision;
  readonly ruleCount: number;
  /**
   * Every table glob of an \`on tables [...]\` scope in the set (qualified, as rules match them): a
   * statement whose reads cannot be known is decided as reading these (engine/combine.ts withReadView).
   */
  readonly tableScopes: readonly string[];
  /** sha256 (hex) of the sources, in file order: identical sources give an identical hash. */
  readonly hash: string;
  readonly tests: readonly PolicyTest[];
  readonly rules: readonly RuleSummary[];
  /** The compiled form (decision tree and lowered rules), JSON-serialisable. */
  readonly ir: CompiledPolicyIR;
  /** Milliseconds per compiler stage (and `parse` for compilePolicy). */
  readonly timings: Partial<Record<StageName | 'parse', number>>;
}

export interface CompileOutput {
  /** Undefined when any diagnostic is an error. */
  policy?: PreparedPolicy;
  files: PolicyFile[];
  diagnostics: Diagnostic[];
}

let standard: Registry | undefined;
/** The default registry, built on first use and shared, so its CEL environment is built once. */
function standardRegistry(): Registry {
  return (standard ??= defaultRegistry());
}

/** Parse and compile a set of `.hoop` sources. Never throws. */
export function compilePolicy(sources: readonly PolicySource[], registry: Registry = standardRegistry()): CompileOutput {
  const started = performance.now();
  const ordered = [...sources].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const files: PolicyFile[] = [];
  const diagnostics: Diagnostic[] = [];
  if (ordered.length === 0) diagnostics.push(noFiles('<none>'));
  for (const source of ordered) {
    const parsed = parse(source.text, source.file);
    files.push(parsed.ast);
    diagnostics.push(...parsed.diagnostics);
  }
  diagnostics.push(...checkPolicySet(files));
  const parseMs = performance.now() - started;
  const result = compileFiles(files, registry, hashSources(ordered));
  const all = sortDiagnostics([...diagnostics, ...result.diagnostics]);
  if (hasErrors(all) || !result.policy) return { files, diagnostics: all };
  (result.policy.timings as Record<string, number>).parse = parseMs;
  return { policy: result.policy, files, diagnostics: all };
}

/** Compile already parsed files (the parser's own diagnostics are the caller's to check). */
export function compileFiles(files: readonly PolicyFile[], registry: Registry = standardRegistry(), hash?: string): CompileOutput {
  try {
    const cel = celEnvironment(registry);
    const result = runCompiler(files, registry, cel);
    const diagnostics = sortDiagnostics(result.diagnostics);
    if (!result.ir || hasErrors(diagnostics)) return { files: [...files], diagnostics };
    const policy = new Prepared(result.ir, result.resolved.files, cel, hash ?? hashAst(result.resolved.files), result.resolved.tests, result.timings);
    return { policy, files: [...files], diagnostics };
  } catch (error) {
    // A broken invariant inside the compiler: refuse the set rather than guess.
    const span = files[0]?.span ?? { file: '<none>', startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 };
    return {
      files: [...files],
      diagnostics: [{
        code: 'HOOP5004',
        severity: 'error',
        message: `internal compiler error: ${error instanceof Error ? error.message : String(error)}`,
        help: 'this is a bug in hoop; please report it with the policy that caused it',
        span,
        related: [],
      }],
    };
  }
}

class Prepared implements PreparedPolicy {
  readonly #evaluator: Evaluator;
  readonly #files: readonly PolicyFile[];
  readonly #cel: CelEnvironment;
  readonly ir: CompiledPolicyIR;
  readonly hash: string;
  readonly tests: readonly PolicyTest[];
  readonly rules: readonly RuleSummary[];
  readonly timings: Partial<Record<StageName | 'parse', number>>;

  constructor(ir: CompiledPolicyIR, files: readonly PolicyFile[], cel: CelEnvironment, hash: string, tests: readonly PolicyTest[], timings: Partial<Record<StageName, number>>) {
    this.ir = ir;
    this.#evaluator = new Evaluator(ir, cel);
    this.#files = files;
    this.#cel = cel;
    this.hash = hash;
    this.tests = tests;
    this.timings = { ...timings };
    this.rules = ir.rules.map((r) => ({ id: r.id, rule: r.rule, package: r.package, span: r.span, effects: effectNames(r.effects) }));
  }

  get ruleCount(): number {
    return this.ir.rules.length;
  }

  #tableScopes: readonly string[] | undefined;
  get tableScopes(): readonly string[] {
    if (this.#tableScopes) return this.#tableScopes;
    const all = new Set<string>();
    for (const r of this.ir.rules) if (r.match?.type === 'sql') for (const t of r.match.tables ?? []) all.add(t);
    return (this.#tableScopes = Object.freeze([...all].sort()));
  }

  get estimates(): boolean {
    return this.#evaluator.estimates;
  }

  needsEstimate(req: Request): boolean {
    return this.#evaluator.needsEstimate(req);
  }

  evaluate(req: Request): Decision {
    return this.#evaluator.evaluate(req);
  }

  evaluateReference(req: Request): Decision {
    try {
      return interpret(this.#files, req, this.#cel);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { verdict: 'block', masks: { columns: [], detectors: [] }, approvers: [], message: `internal error while deciding: ${message}`, reasons: [], defaulted: false, errors: [{ rule: '', message }] };
    }
  }

  explain(req: Request): Explanation {
    const decision = this.evaluate(req);
    try {
      return explain(this.#files, req, decision, this.#cel);
    } catch (error) {
      return { decision, rules: [], facts: { error: error instanceof Error ? error.message : String(error) } };
    }
  }
}

function effectNames(effects: CompiledPolicyIR['rules'][number]['effects']): string[] {
  const out: string[] = [];
  if (effects.block) out.push('block');
  if (effects.approve) out.push('approve');
  if (effects.allow) out.push('allow');
  if (effects.columnMasks.length > 0) out.push('mask column');
  if (effects.detectorMasks.length > 0) out.push('mask detect');
  if (effects.limits?.rows != null) out.push('limit rows');
  if (effects.limits?.timeMs != null) out.push('limit time');
  if (effects.limits && effects.limits.rates.length > 0) out.push('limit rate');
  return out;
}

function hashSources(sources: readonly PolicySource[]): string {
  const h = createHash('sha256');
  for (const s of sources) h.update(`${s.file}\u0000${s.text}\u0000`);
  return h.digest('hex');
}

function hashAst(files: readonly PolicyFile[]): string {
  return createHash('sha256').update(JSON.stringify(files.map((f) => [f.file, f]))).digest('hex');
}

function noFiles(path: string): Diagnostic {
  return {
    code: 'HOOP5002',
    severity: 'error',
    message: `no .hoop files in ${path}`,
    help: 'point at a .hoop file or a folder that contains some',
    span: { file: path, startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 },
    related: [],
  };
}

/**
 * Read a `.hoop` file, or every `.hoop` file below a folder (recursively, sorted by path).
 * File names are given relative to the current directory. Never throws: an unreadable path is
 * HOOP5003, a folder without policies HOOP5002.
 */
export async function loadPolicySources(path: string): Promise<{ sources: PolicySource[]; diagnostics: Diagnostic[] }> {
  const sources: PolicySource[] = [];
  const diagnostics: Diagnostic[] = [];
  const display = (p: string): string => relative(process.cwd(), p) || p;
  const unreadable = (p: string, error: unknown): void => {
    diagnostics.push({ ...noFiles(display(p)), code: 'HOOP5003', message: `cannot read ${display(p)}: ${error instanceof Error ? error.message : String(error)}`, help: 'check the path and its permissions' });
  };
  const walk = async (p: string, top: boolean): Promise<void> => {
    let info;
    try {
      info = await stat(p);
    } catch (error) {
      unreadable(p, error);
      return;
    }
    if (info.isDirectory()) {
      let entries: string[];
      try {
        entries = (await readdir(p)).sort();
      } catch (error) {
        unreadable(p, error);
        return;
      }
      for (const entry of entries) {
        if (entry.startsWith('.') || entry === 'node_modules') continue;
        await walk(join(p, entry), false);
      }
    } else if (top || p.endsWith('.hoop')) {
      try {
        sources.push({ file: display(p), text: await readFile(p, 'utf8') });
      } catch (error) {
        unreadable(p, error);
      }
    }
  };
  await walk(path, true);
  if (sources.length === 0 && diagnostics.length === 0) diagnostics.push(noFiles(display(path)));
  sources.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { sources, diagnostics };
}
