import fc from 'fast-check';
import { fingerprintSync, loadModule, normalizeSync, parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { propertyRuns, propertyTimeout } from '../../conformance/runs.ts';
import { literalTemplateStats, loadSqlClassifier } from './index.ts';
import { literalTemplate } from './literal-template.ts';

beforeAll(async () => {
  await loadModule();
});

describe('literal templates', () => {
  it('replace each literal by its class, and number them as the normaliser does', () => {
    expect(literalTemplate("SELECT a FROM t WHERE id = 42 AND name = 'o''brien' AND x > 1.5e3")).toEqual({
      key: "SELECT a FROM t WHERE id = \u0000i AND name = \u0000s AND x > \u0000f",
      numbered: 'SELECT a FROM t WHERE id = $1 AND name = $2 AND x > $3',
    });
    // Digits inside identifiers and quoted identifiers are not literals; big integers are another class.
    expect(literalTemplate('SELECT t1.c2, "col 3" FROM t1 WHERE c2 = 99999999999')?.key).toBe('SELECT t1.c2, "col 3" FROM t1 WHERE c2 = \u0000f');
  });

  it('leave alone what they do not follow', () => {
    for (const text of [
      'SELECT 1 -- comment 2',
      'SELECT /* 1 */ 2',
      'SELECT $1',
      'SELECT $$x$$',
      "SELECT E'\\n'",
      "SELECT B'101'",
      "SELECT U&'d\\0061t'",
      'SELECT 0x1F',
      'SELECT 1_000',
      "SELECT 'a'\n  'b'",
      "SELECT 'unterminated",
      'SELECT a FROM t',
    ]) {
      expect(literalTemplate(text), text).toBeNull();
    }
  });
});

// Statement shapes with literal slots: {i} integer, {f} other number, {s} string.
const SHAPES = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = {i};',
  'UPDATE pgbench_accounts SET abalance = abalance + {i} WHERE aid = {i};',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({i}, {i}, {i}, {i}, CURRENT_TIMESTAMP);',
  'SELECT * FROM t WHERE name = {s} AND score > {f} LIMIT {i}',
  'SELECT {s}::varchar({i})',
  'SELECT x -{i}, -{i}, x - {f}, +{i} FROM t',
  'SELECT 1 IN ({i}, {i}, {i})',
  'SELECT "col1", t2.c3 FROM "tab""le" t2 WHERE c3 = {f}',
  'SET statement_timeout = {i}',
  'SELECT interval {s}, DATE {s}',
  'SELECT {i} + {f} * {i}',
  'EXPLAIN SELECT * FROM t WHERE a = {s}',
  'SELECT * FROM t ORDER BY {i} LIMIT {i} OFFSET {i}',
  'SELECT * FROM t FETCH FIRST {i} ROWS ONLY',
  'SELECT true, NULL, {i}',
  'VALUES ({i}, {s}), ({f}, {s})',
  'SELECT * FROM t WHERE a BETWEEN {i} AND {f}',
  'CREATE TABLE t (a varchar({i}) DEFAULT {s})',
  'SELECT set_config({s}, {s}, false)',
  'SELECT * FROM t WHERE a = ANY(ARRAY[{i}, {i}])',
];

const literal = {
  i: fc.oneof(fc.integer({ min: -5, max: 2147483647 }), fc.constantFrom(0, 2147483647, 2147483648, 99999999999)).map(String),
  f: fc.oneof(
    fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
    fc.constantFrom('1.5', '.5', '2.', '1e5', '1E-3', '3.25e+2', '99999999999'),
  ),
  s: fc.string({ maxLength: 12 }).map((s) => `'${s.replace(/\u0000/g, '').replace(/'/g, "''")}'`),
};

const statement = fc.constantFrom(...SHAPES).chain((shape) => {
  const slots = [...shape.matchAll(/\{([ifs])\}/g)].map((m) => m[1] as 'i' | 'f' | 's');
  return fc.tuple(...slots.map((k) => literal[k])).map((values) => {
    let k = 0;
    return shape.replace(/\{[ifs]\}/g, () => values[k++]!);
  });
});

describe('sharing normalised text and fingerprint by literal template', () => {
  it('gives exactly what libpg-query gives for every text', { timeout: propertyTimeout() }, async () => {
    const classifier = await loadSqlClassifier({ cacheSize: 0 });
    const before = { ...literalTemplateStats };
    fc.assert(
      fc.property(statement, (text) => {
        try {
          parseSync(text);
        } catch {
          return; // not SQL after all (e.g. a float where an integer is required)
        }
        const [action] = classifier.classify(text);
        // The action's text is the statement as split from the message (no trailing `;`).
        expect(action!.normalized).toBe(normalizeSync(action!.text));
        expect(action!.fingerprint).toBe(fingerprintSync(action!.text));
      }),
      { numRuns: propertyRuns() },
    );
    // Not vacuous: shapes were proved and later texts took the shared answers.
    expect(literalTemplateStats.proved - before.proved).toBeGreaterThan(5);
    expect(literalTemplateStats.shared - before.shared).toBeGreaterThan(propertyRuns() / 4);
  });
});
