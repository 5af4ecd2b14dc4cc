// Stage 2, check: the semantic checks that need the stdlib registry or the CEL environment.
// Syntax, names, column references, globs, conflicting effects and `match` under the wrong
// resource kind are the parser's (language/cst-to-ast.ts); here, what needs the registry:
//   - masker and detector names (HOOP2003/HOOP2004, with "did you mean"), their arguments
//     (HOOP2008) and `regex(...)` patterns compiled as RE2 (HOOP2012),
//   - CEL conditions: syntax, types, boolean result, forbidden functions (HOOP3001-HOOP3004),
//     at the file position inside the backticks,
//   - a warning when `default allow` would let `unknown` statements through (HOOP5005).
// Every problem is reported; nothing stops at the first.

import type { Condition, DetectorRef, MaskerRef, Rule, Span } from '../../language/ast.ts';
import type { Diagnostic, DiagnosticCode } from '../../language/diagnostics.ts';
import { didYouMean } from '../../language/fuzzy.ts';
import type { CelEnvironment, CelProblem } from '../../stdlib/cel.ts';
import { checkArgs, type DetectorDecl, type MaskerDecl, type Registry } from '../../stdlib/registry.ts';
import type { ResolvedSet } from './resolve.ts';

export function check(set: ResolvedSet, registry: Registry, cel: CelEnvironment): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const { rule } of set.rules) checkRule(rule, registry, cel, out);
  checkUnknownUnderDefaultAllow(set, out);
  return out;
}

/**
 * No rule matches `unknown` unless it names it, so under `default allow` a statement the
 * classifier cannot understand runs — unless some rule says `match sql unknown`. Warn (HOOP5005).
 */
function checkUnknownUnderDefaultAllow(set: ResolvedSet, out: Diagnostic[]): void {
  if (set.default.effect !== 'allow' || !set.default.span) return;
  const named = set.rules.some(({ rule }) => rule.match?.kind === 'SqlMatch' && rule.match.statementKinds.some((k) => k.value === 'unknown'));
  if (named) return;
  out.push({
    code: 'HOOP5005',
    severity: 'warning',
    message: 'with `default allow`, SQL statements the classifier cannot understand (`unknown`) are allowed',
    help: 'add `rule block_unknown { match sql unknown block "statement not understood" }` (no other rule matches `unknown`)',
    span: set.default.span,
    related: [],
  });
}

function diag(code: DiagnosticCode, message: string, span: Span, help?: string): Diagnostic {
  return { code, severity: 'error', message, help, span, related: [] };
}

function checkRule(rule: Rule, registry: Registry, cel: CelEnvironment, out: Diagnostic[]): void {
  for (const effect of rule.effects) {
    if (effect.kind === 'MaskColumn') {
      checkMasker(effect.masker, registry, out);
    } else if (effect.kind === 'MaskDetect') {
      for (const detector of effect.detectors) checkDetector(detector, registry, out);
      checkMasker(effect.masker, registry, out);
    }
  }

  for (const condition of rule.conditions) {
    const result = cel.compile(condition.source);
    for (const problem of result.problems) out.push(celDiagnostic(condition, problem));
  }
}

function checkMasker(ref: MaskerRef, registry: Registry, out: Diagnostic[]): void {
  checkRef(ref, registry.maskers, 'HOOP2003', 'masker', out);
}

function checkDetector(ref: DetectorRef, registry: Registry, out: Diagnostic[]): void {
  checkRef(ref, registry.detectors, 'HOOP2004', 'detector', out);
}

/** A masker or detector reference: a declared name (else "did you mean"), then its arguments. */
function checkRef(
  ref: MaskerRef | DetectorRef,
  declared: ReadonlyMap<string, MaskerDecl | DetectorDecl>,
  code: 'HOOP2003' | 'HOOP2004',
  what: string,
  out: Diagnostic[],
): void {
  const decl = declared.get(ref.name.value);
  if (!decl) {
    out.push(diag(code, `unknown ${what} \`${ref.name.value}\``, ref.name.span,
      didYouMean(ref.name.value, declared.keys()) ?? `${what}s: ${[...declared.keys()].join(', ')}`));
    return;
  }
  const args: (number | string)[] = ref.args.map((a) => a.value);
  checkArguments(decl, args, ref.args.map((a) => a.span), ref.span, out);
}

function checkArguments(decl: MaskerDecl | DetectorDecl, args: (number | string)[], spans: Span[], whole: Span, out: Diagnostic[]): void {
  for (const problem of checkArgs(decl, args)) {
    const span = problem.index >= 0 ? spans[problem.index] ?? whole : whole;
    const code = decl.params[problem.index]?.type === 're2' && typeof args[problem.index] === 'string' ? 'HOOP2012' : 'HOOP2008';
    out.push(diag(code, problem.message, span, problem.help));
  }
}

/** Map a problem at offsets inside the CEL text onto the file, through the condition's exprSpan. */
export function celDiagnostic(condition: Condition, problem: CelProblem): Diagnostic {
  return diag(problem.code, problem.message, spanInside(condition.source, condition.exprSpan, problem.start, problem.end), problem.help);
}

/** The file span of `source[start, end)`, given that `source` begins at `base`. */
export function spanInside(source: string, base: Span, start: number, end: number): Span {
  const at = (offset: number): { line: number; column: number } => {
    let line = base.startLine;
    let column = base.startColumn;
    for (let i = 0; i < offset && i < source.length; i++) {
      if (source[i] === '\n') {
        line++;
        column = 1;
      } else {
        column++;
      }
    }
    return { line, column };
  };
  const s = at(start);
  const e = at(end);
  return {
    file: base.file,
    startOffset: base.startOffset + start,
    endOffset: base.startOffset + end,
    startLine: s.line,
    startColumn: s.column,
    endLine: e.line,
    endColumn: e.column,
  };
}
