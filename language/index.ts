// The public API of language/: parse, check a set, format, render diagnostics.

import type { PolicyFile } from './ast.ts';
import type { Diagnostic } from './diagnostics.ts';
import { parseText, type ParseResult } from './parse.ts';

export * from './ast.ts';
export * from './diagnostics.ts';
export { didYouMean, suggest, editDistance } from './fuzzy.ts';
export type { ParseResult } from './parse.ts';

/**
 * Parses one .hoop file. Never throws: every problem, including an internal failure, comes back
 * as a diagnostic. An AST that comes with error diagnostics is for tooling only (formatting is
 * refused, and the engine must not compile it).
 */
export function parse(text: string, file: string): ParseResult {
  try {
    return parseText(text, file);
  } catch (e) {
    const span = { file, startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 };
    const ast: PolicyFile = { kind: 'PolicyFile', file, rules: [], tests: [], comments: [], span };
    const diag: Diagnostic = {
      code: 'HOOP1001',
      severity: 'error',
      message: `internal parser error: ${e instanceof Error ? e.message : String(e)}`,
      help: 'this is a bug in hoop; please report it with the file that caused it',
      span,
      related: [],
    };
    return { ast, diagnostics: [diag] };
  }
}
