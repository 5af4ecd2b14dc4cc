// The public API of language/: parse, check a set, format, render diagnostics.

import type { PolicyFile } from './ast.ts';
import { type Diagnostic, hasErrors } from './diagnostics.ts';
import { parseText, type ParseResult } from './parse.ts';
import { formatText, type FormatResult } from './formatter.ts';

export * from './ast.ts';
export * from './diagnostics.ts';
export { didYouMean, suggest, editDistance } from './fuzzy.ts';
export type { ParseResult } from './parse.ts';
export { checkPolicySet, effectiveDefault, qualify, packageOf, resolveRuleName } from './check-set.ts';
export { formatAst, effectText, literalText, canonicalJson, type FormatResult } from './formatter.ts';
export { renderDiagnostics, diagnosticsToJson, excerpt, formatLocation, type Sources, type JsonDiagnostic } from './render.ts';

/**
 * Parses one .hoop file. Never throws: every problem, including an internal failure, comes back
 * as a diagnostic. An AST that comes with error diagnostics is for tooling only (formatting is
 * refused, and the engine must not compile it).
 */
export function parse(text: string, file: string): ParseResult {
  try {
    return parseText(text, file);
  } catch (e) {
    const diag = internalError(file, e);
    const ast: PolicyFile = { kind: 'PolicyFile', file, rules: [], tests: [], comments: [], span: diag.span };
    return { ast, diagnostics: [diag] };
  }
}

/**
 * Formats one file canonically. Returns `text` only when the file has no errors and the output
 * parses back to the same AST and comments; otherwise `diagnostics` say why. Never throws.
 */
export function format(text: string, file: string): FormatResult {
  try {
    return formatText(text, file);
  } catch (e) {
    const parsed = parse(text, file);
    return hasErrors(parsed.diagnostics) ? { diagnostics: parsed.diagnostics } : { diagnostics: [internalError(file, e)] };
  }
}

function internalError(file: string, e: unknown): Diagnostic {
  const span = { file, startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 };
  return {
    code: 'HOOP1001',
    severity: 'error',
    message: `internal error: ${e instanceof Error ? e.message : String(e)}`,
    help: 'this is a bug in hoop; please report it with the file that caused it',
    span,
    related: [],
  };
}
