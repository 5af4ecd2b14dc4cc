// The formatter is sound and canonical on generated ASTs: printing then parsing gives back the
// same AST (spans aside) with no diagnostics, and printing is a fixed point.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAst, parse, stripSpans } from '../language/index.ts';
import { policyFileArb } from './arbitraries/ast.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';

describe('formatter properties', () => {
  it('parse(fmt(ast)) equals ast and fmt is idempotent', () => {
    fc.assert(
      fc.property(policyFileArb(), (ast) => {
        const text = formatAst(ast);
        const parsed = parse(text, 'gen.hoop');
        expect(parsed.diagnostics).toEqual([]);
        expect(stripSpans(parsed.ast)).toEqual(stripSpans(ast));
        expect(formatAst(parsed.ast)).toBe(text);
      }),
      { numRuns: propertyRuns() },
    );
  }, propertyTimeout());
});
