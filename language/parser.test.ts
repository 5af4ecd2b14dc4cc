import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from './index.ts';
import { HoopParser, hoopParser } from './parser.ts';

describe('parser', () => {
  it('builds the grammar without definition errors (performSelfAnalysis throws on any)', () => {
    expect(() => new HoopParser()).not.toThrow();
    expect(hoopParser.input).toBeDefined();
  });

  it('parses the DESIGN.md example without diagnostics', () => {
    const text = readFileSync(new URL('./fixtures/design/design_example.hoop', import.meta.url), 'utf8');
    const { ast, diagnostics } = parse(text, 'design_example.hoop');
    expect(diagnostics).toEqual([]);
    expect(ast.package?.value).toBe('prod.db');
    expect(ast.rules.map((r) => r.name.value)).toEqual([
      'readers_select', 'mask_customer_pii', 'writes_need_dba', 'no_unbounded_writes', 'bastion_read_only',
    ]);
    expect(ast.tests.map((t) => t.name.value)).toEqual(['readers see masked emails', 'unbounded delete is blocked even for dba']);
  });
});
