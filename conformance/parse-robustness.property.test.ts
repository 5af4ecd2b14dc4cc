// parse() is total: on any text — random, or a valid file with tokens deleted, duplicated or
// swapped in — it returns an AST and diagnostics with sane positions and known codes, never
// throws; and whenever a file has no errors, formatting it succeeds and is a fixed point.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTIC_CODES, format, formatAst, hasErrors, type Diagnostic } from '../language/index.ts';
import { LINE_BREAK, lex } from '../language/lexer.ts';
import { policyFileArb } from './arbitraries/ast.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';

const VOCAB = [
  'rule', 'test', 'package', 'default', 'on', 'when', 'match', 'if', 'allow', 'block', 'approve', 'mask',
  'by', 'group', 'within', 'column', 'detect', 'with', 'tables', 'sql', 'shell', 'expect', 'rules',
  '{', '}', '(', ')', '[', ']', ',', ':', '.', '"s"', '"', '`x`', '`', '15m', '15x', '4', 'name', '/*', '//', "'", '#', '\n',
];

function checkDiagnostics(text: string, diags: Diagnostic[]): void {
  const lines = text.split(LINE_BREAK).length;
  for (const d of diags) {
    expect(Object.keys(DIAGNOSTIC_CODES)).toContain(d.code);
    expect(d.message.length).toBeGreaterThan(0);
    for (const s of [d.span, ...d.related.map((r) => r.span)]) {
      expect(Number.isInteger(s.startOffset) && Number.isInteger(s.endOffset)).toBe(true);
      expect(s.startOffset).toBeGreaterThanOrEqual(0);
      expect(s.endOffset).toBeGreaterThanOrEqual(s.startOffset);
      expect(s.startOffset).toBeLessThanOrEqual(text.length + 1);
      expect(s.startLine).toBeGreaterThanOrEqual(1);
      expect(s.startLine).toBeLessThanOrEqual(lines);
      expect(s.startColumn).toBeGreaterThanOrEqual(1);
    }
  }
}

function checkTotal(text: string): void {
  // format() parses first and hands back the parse diagnostics, so one call covers both.
  const f = format(text, 'x.hoop');
  checkDiagnostics(text, f.diagnostics);
  if (hasErrors(f.diagnostics)) {
    expect(f.text).toBeUndefined();
  } else {
    expect(f.diagnostics.filter((d) => d.code === 'HOOP1007')).toEqual([]);
    expect(format(f.text as string, 'x.hoop').text).toBe(f.text);
  }
}

const edit = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('delete', 'duplicate', 'insert'),
  token: fc.constantFrom(...VOCAB),
});

describe('parse is total', () => {
  it('on random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.array(fc.constantFrom(...VOCAB), { maxLength: 30 }).map((t) => t.join(' '))), checkTotal),
      { numRuns: propertyRuns() },
    );
  }, propertyTimeout());

  it('on valid files with tokens deleted, duplicated or inserted', () => {
    fc.assert(
      fc.property(policyFileArb(3), fc.array(edit, { minLength: 1, maxLength: 4 }), (ast, edits) => {
        const text = formatAst(ast);
        const pieces = lex(text, 'x.hoop').tokens.map((t) => t.image);
        for (const e of edits) {
          const i = pieces.length === 0 ? 0 : e.at % pieces.length;
          if (e.op === 'delete') pieces.splice(i, 1);
          else if (e.op === 'duplicate' && pieces.length > 0) pieces.splice(i, 0, pieces[i]);
          else pieces.splice(i, 0, e.token);
        }
        checkTotal(pieces.join(' '));
      }),
      { numRuns: propertyRuns() },
    );
  }, propertyTimeout());
});
