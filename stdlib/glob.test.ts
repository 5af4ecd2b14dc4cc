import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, globMatch } from './glob.ts';

/** The obvious definition, as an anchored regular expression. */
function oracle(pattern: string, text: string): boolean {
  const source = [...pattern].map((c) => (c === '*' ? '[\\s\\S]*' : c === '?' ? '[\\s\\S]' : c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`).test(text);
}

const alphabet = fc.constantFrom('a', 'b', '.', '-', '*', '?');
const patternArb = fc.array(alphabet, { maxLength: 8 }).map((cs) => cs.join(''));
const textArb = fc.array(fc.constantFrom('a', 'b', '.', '-', '*', '?'), { maxLength: 10 }).map((cs) => cs.join(''));

describe('glob', () => {
  it('matches like the regular-expression definition, compiled or not', () => {
    fc.assert(fc.property(patternArb, textArb, (p, t) => {
      expect(globMatch(p, t)).toBe(oracle(p, t));
      expect(compileGlob(p)(t)).toBe(oracle(p, t));
    }), { numRuns: 5000 });
  });

  it('is case-sensitive and anchored', () => {
    expect(globMatch('prod-*', 'prod-main')).toBe(true);
    expect(globMatch('prod-*', 'PROD-main')).toBe(false);
    expect(globMatch('prod', 'prod-main')).toBe(false);
    expect(globMatch('*.customers', 'crm.customers')).toBe(true);
    expect(globMatch('?', '')).toBe(false);
  });

  it('stays fast on adversarial input', () => {
    const start = performance.now();
    expect(globMatch('*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    expect(performance.now() - start).toBeLessThan(500);
  });
});
