// Coded diagnostics shared by the parser, the semantic checks and the engine's compiler.
//
// A diagnostic is a value, not an exception: every stage appends to a list and carries on, so a
// single run reports every problem in a set of files. Codes are stable (tests and editors key
// on them); messages may improve.

import type { Span } from './ast.ts';

export type Severity = 'error' | 'warning';

export interface Related {
  message: string;
  span: Span;
}

export interface Diagnostic {
  /** Stable code, e.g. `HOOP1001`; see DIAGNOSTIC_CODES. */
  code: DiagnosticCode;
  severity: Severity;
  /** One line, lower-case start, no trailing period. */
  message: string;
  /** One line of advice ("did you mean `select`?"). */
  help?: string;
  span: Span;
  related: Related[];
}

/**
 * The closed registry of diagnostic codes. Add here first; every producer names one of these.
 * Groups: 1xxx syntax, 2xxx names and structure, 3xxx CEL, 4xxx tests, 5xxx set-level.
 */
export const DIAGNOSTIC_CODES = {
  HOOP1001: 'syntax error',
  HOOP1002: 'unterminated string or comment',
  HOOP1003: 'unexpected character',
  HOOP1004: 'invalid escape in string',
  HOOP1005: 'invalid duration',
  HOOP1006: 'unterminated CEL expression',
  HOOP1007: 'formatter soundness check failed',
  HOOP2001: 'unknown statement kind',
  HOOP2002: 'unknown resource kind',
  HOOP2003: 'unknown masker',
  HOOP2004: 'unknown detector',
  HOOP2005: 'duplicate rule name',
  HOOP2006: 'rule has no effect',
  HOOP2007: 'selector given twice',
  HOOP2008: 'invalid masker or detector arguments',
  HOOP2009: 'invalid column reference',
  HOOP2010: 'invalid glob',
  HOOP2011: 'conflicting effects in one rule',
  HOOP2012: 'invalid regular expression',
  HOOP2013: 'shell match on a non-shell resource',
  HOOP2014: 'sql match on a non-postgres resource',
  HOOP2015: 'duplicate default',
  HOOP2016: 'unknown test field',
  HOOP2017: 'package declared twice',
  HOOP2018: 'invalid limit',
  HOOP2019: 'limit that cannot apply to the rule\'s resource kind',
  HOOP2020: 'invalid ssh, sftp or forward match',
  HOOP2021: 'invalid approval quorum or lasting window',
  HOOP3001: 'CEL syntax error',
  HOOP3002: 'CEL type error',
  HOOP3003: 'CEL condition is not boolean',
  HOOP3004: 'forbidden CEL function',
  HOOP4001: 'unknown rule in expectation',
  HOOP4002: 'test has no input',
  HOOP4003: 'test has no expectation',
  HOOP4004: 'duplicate test name',
  HOOP4005: 'test field given twice',
  HOOP4006: 'invalid test field value',
  HOOP4007: 'conflicting expectations',
  HOOP5001: 'conflicting defaults across files',
  HOOP5002: 'no policy files',
  HOOP5003: 'cannot read file',
  HOOP5004: 'internal compiler error',
  HOOP5005: 'default allow lets unknown statements through',
} as const;
export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'error');
}

/** Sort by file, then position, then code, so output is deterministic. */
export function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return [...diags].sort(
    (a, b) =>
      a.span.file.localeCompare(b.span.file) ||
      a.span.startOffset - b.span.startOffset ||
      a.code.localeCompare(b.code),
  );
}
