// The formatter keeps every comment wherever it sits between lines: comments are added at random
// line ends and on their own lines of a generated file, and formatting must keep all of them,
// leave the AST unchanged and be a fixed point.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { format, formatAst, parse, stripSpans } from '../language/index.ts';
import { lex } from '../language/lexer.ts';
import { policyFileArb } from './arbitraries/ast.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';

/** Lines where nothing may be inserted: those spanned by a multi-line token (a CEL expression). */
function blockedLines(text: string): Set<number> {
  const blocked = new Set<number>();
  for (const t of lex(text, 'x.hoop').tokens) {
    const start = t.startLine ?? 1;
    const end = t.endLine ?? start;
    if (end > start) for (let l = start; l <= end + 1; l++) blocked.add(l);
  }
  return blocked;
}

const insertion = fc.record({
  line: fc.nat(),
  where: fc.constantFrom('end', 'before'),
  style: fc.constantFrom('line', 'block', 'multiline-block'),
});

describe('formatter comment properties', () => {
  it('keeps every comment, the AST, and is idempotent', () => {
    fc.assert(
      fc.property(policyFileArb(3), fc.array(insertion, { minLength: 1, maxLength: 8 }), (ast, inserts) => {
        const base = formatAst(ast);
        const lines = base.split('\n');
        const blocked = blockedLines(base);
        const added: string[] = [];
        // Insert from the bottom up so earlier line numbers stay valid; on one line, the
        // end-of-line comments first (a line comment must stay last on its line).
        const chosen = inserts
          .map((ins, i) => ({ ...ins, line: lines.length > 1 ? ins.line % (lines.length - 1) : 0, id: i }))
          .filter((ins) => !blocked.has(ins.line + 1))
          .sort((a, b) => b.line - a.line || (a.where === b.where ? a.id - b.id : a.where === 'end' ? -1 : 1));
        const endsInLineComment = new Set<number>();
        for (const ins of chosen) {
          const text = ins.style === 'line' ? `// c${ins.id}` : ins.style === 'block' ? `/* c${ins.id} */` : `/* c${ins.id}\n   more */`;
          if (ins.where === 'end') {
            if (endsInLineComment.has(ins.line)) continue;
            lines[ins.line] = `${lines[ins.line]} ${text}`;
            if (ins.style === 'line') endsInLineComment.add(ins.line);
          } else {
            lines.splice(ins.line, 0, text);
          }
          added.push(text);
        }
        const mutated = lines.join('\n');
        const out = format(mutated, 'x.hoop');
        expect(out.diagnostics).toEqual([]);
        const text = out.text as string;
        const reparsed = parse(text, 'x.hoop');
        expect(stripSpans(reparsed.ast)).toEqual(stripSpans(ast));
        expect(reparsed.ast.comments.map((c) => c.text).sort()).toEqual([...added].sort());
        expect(formatAst(reparsed.ast)).toBe(text);
      }),
      { numRuns: propertyRuns() },
    );
  }, propertyTimeout());
});
