// Diagnostics for people and for machines.
//
// Human form (one block per diagnostic, sorted by file, position, code):
//
//   policy.hoop:4:13: error[HOOP2001]: unknown statement kind `selec`
//     |
//   4 |   match sql selec
//     |             ^^^^^
//     = help: did you mean `select`?
//     = note: first defined here: policy.hoop:2:6
//
// The JSON form is a plain array of objects with 1-based lines and columns (end exclusive).

import type { Span } from './ast.ts';
import { type Diagnostic, sortDiagnostics } from './diagnostics.ts';
import { LINE_BREAK } from './lexer.ts';

/** Source text by file name (what the spans' `file` fields refer to). */
export type Sources = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

function sourceOf(sources: Sources, file: string): string | undefined {
  if (sources instanceof Map) return sources.get(file);
  return (sources as Readonly<Record<string, string>>)[file];
}

export function formatLocation(span: Span): string {
  return `${span.file}:${span.startLine}:${span.startColumn}`;
}

/** The caret excerpt for a span: its first line, underlined from start to end (or line end). */
export function excerpt(span: Span, text: string | undefined): string[] {
  if (text === undefined) return [];
  const lines = text.split(LINE_BREAK);
  const lineText = lines[span.startLine - 1];
  if (lineText === undefined) return [];
  const gutter = String(span.startLine);
  const pad = ' '.repeat(gutter.length);
  const shown = lineText.replace(/\t/g, ' ');
  const start = Math.max(1, span.startColumn);
  const end = span.endLine === span.startLine ? Math.max(span.endColumn, start + 1) : Math.max(lineText.length + 1, start + 1);
  const carets = '^'.repeat(Math.max(1, end - start));
  return [
    `${pad} |`,
    `${gutter} | ${shown}`.trimEnd(),
    `${pad} | ${' '.repeat(start - 1)}${carets}`,
  ];
}

function renderOne(d: Diagnostic, sources: Sources): string {
  const out = [`${formatLocation(d.span)}: ${d.severity}[${d.code}]: ${d.message}`];
  const ex = excerpt(d.span, sourceOf(sources, d.span.file));
  out.push(...ex);
  const indent = ex.length > 0 ? ' '.repeat(ex[0].indexOf('|')) : '';
  if (d.help !== undefined) out.push(`${indent}= help: ${d.help}`);
  for (const r of d.related) out.push(`${indent}= note: ${r.message}: ${formatLocation(r.span)}`);
  return out.join('\n');
}

/** All diagnostics, sorted deterministically, separated by blank lines, with a summary line. */
export function renderDiagnostics(diags: readonly Diagnostic[], sources: Sources): string {
  if (diags.length === 0) return '';
  const sorted = sortDiagnostics([...diags]);
  const errors = sorted.filter((d) => d.severity === 'error').length;
  const warnings = sorted.length - errors;
  const parts = sorted.map((d) => renderOne(d, sources));
  const count = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  parts.push([errors > 0 ? count(errors, 'error') : '', warnings > 0 ? count(warnings, 'warning') : ''].filter(Boolean).join(', '));
  return parts.join('\n\n') + '\n';
}

export interface JsonDiagnostic {
  code: string;
  severity: string;
  message: string;
  help?: string;
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  related: { message: string; file: string; line: number; column: number }[];
}

export function diagnosticsToJson(diags: readonly Diagnostic[]): JsonDiagnostic[] {
  return sortDiagnostics([...diags]).map((d) => {
    const j: JsonDiagnostic = {
      code: d.code,
      severity: d.severity,
      message: d.message,
      file: d.span.file,
      line: d.span.startLine,
      column: d.span.startColumn,
      endLine: d.span.endLine,
      endColumn: d.span.endColumn,
      related: d.related.map((r) => ({ message: r.message, file: r.span.file, line: r.span.startLine, column: r.span.startColumn })),
    };
    if (d.help !== undefined) j.help = d.help;
    return j;
  });
}
