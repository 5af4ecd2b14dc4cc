import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { SQL_KINDS } from '../../language/ast.ts';
import { loadSqlClassifier } from './index.ts';

let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;
beforeAll(async () => {
  sql = await loadSqlClassifier({ cacheSize: 16 });
});

const KEYWORDS = [
  'SELECT', 'FROM', 'WHERE', 'WITH', 'AS', 'DELETE', 'UPDATE', 'INSERT', 'INTO', 'VALUES', 'SET', 'RETURNING',
  'EXPLAIN', 'ANALYZE', 'COPY', 'TO', 'PROGRAM', 'STDOUT', 'DO', 'CALL', 'CREATE', 'FUNCTION', 'TABLE',
  'LANGUAGE', 'plpgsql', 'sql', 'BEGIN', 'END', 'EXECUTE', 'PREPARE', 'GRANT', 'ROLE', 'LOCK', 'FOR',
  'UNION', 'ALL', 'JOIN', 'ON', 'LIMIT', 'ORDER', 'BY', '(', ')', ',', ';', '*', '=', "'x'", '$$', '1', 't', 'u.c',
  'pg_read_file(', 'nextval(', 'set_config(', 'U&"\\0061"', '"Q"', '--', '/*', '*/', 'NOTIFY', 'LISTEN',
];

/** The properties every action must have, whatever the input. */
function wellFormed(text: string): void {
  const actions = sql.classify(text);
  for (const a of actions) {
    expect(SQL_KINDS).toContain(a.kind);
    expect(a.effects[0]).toBe(a.kind);
    expect(typeof a.normalized).toBe('string');
    expect(typeof a.fingerprint).toBe('string');
    if (a.kind === 'select') expect(a.writes).toEqual([]);
  }
}

describe('the SQL classifier is total', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => wellFormed(s)), { numRuns: 300 });
  });

  it('never throws on token soups of SQL keywords', () => {
    const soup = fc.array(fc.constantFrom(...KEYWORDS), { maxLength: 25 }).map((t) => t.join(' '));
    fc.assert(fc.property(soup, (s) => wellFormed(s)), { numRuns: 400 });
  });

  it('is unknown whenever the text does not parse', () => {
    const soup = fc.array(fc.constantFrom(...KEYWORDS), { minLength: 1, maxLength: 12 }).map((t) => t.join(' '));
    fc.assert(fc.property(soup, (s) => {
      const actions = sql.classify(s);
      const parses = !actions.some((a) => a.reason?.startsWith('does not parse'));
      if (!parses) expect(actions.map((a) => a.kind)).toEqual(['unknown']);
    }), { numRuns: 200 });
  });

  it('gives the same facts from the cache as from a fresh parse', async () => {
    const fresh = await loadSqlClassifier({ cacheSize: 0 });
    const soup = fc.array(fc.constantFrom(...KEYWORDS), { maxLength: 15 }).map((t) => t.join(' '));
    fc.assert(fc.property(soup, (s) => {
      sql.classify(s);
      expect(JSON.stringify(sql.classify(s))).toBe(JSON.stringify(fresh.classify(s)));
    }), { numRuns: 150 });
  });
});
