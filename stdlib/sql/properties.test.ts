import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { SQL_KINDS, type SqlKind } from '../../language/ast.ts';
import { kindRank } from '../facts.ts';
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

describe('disguises composed with genuine reads', () => {
  const WRITES = [
    'DELETE FROM t', 'UPDATE t SET a = 1', 'INSERT INTO t VALUES (1)', 'DELETE FROM "T" WHERE id = 1',
    'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
  ];
  const CALLS = [
    "pg_read_file('x')", 'nextval(\'s\')', 'evil()', 'public.lower(\'x\')', "set_config('role', 'x', false)",
    "query_to_xml('select 1', true, true, '')", 'pg_sleep(1)', "dblink_exec('x', 'y')", 'lo_unlink(1)',
  ];
  const READS = [
    'SELECT * FROM users', 'SELECT id FROM users WHERE id = 1', 'SELECT count(*) FROM orders GROUP BY user_id',
    'SELECT a FROM t1 UNION SELECT b FROM t2', 'VALUES (1)', 'TABLE users', 'SELECT * FROM users u JOIN orders o ON o.user_id = u.id',
  ];

  it('a data-modifying CTE in front of any read is never a select', () => {
    fc.assert(fc.property(fc.constantFrom(...WRITES), fc.constantFrom(...READS), (w, r) => {
      const [a] = sql.classify(`WITH hoop_w AS (${w} RETURNING 1) ${r}`);
      expect(a!.kind).not.toBe('select');
    }));
  });

  it('a side-effecting call anywhere in a read is never a select', () => {
    const where = fc.constantFrom('target', 'where', 'from', 'subquery', 'order');
    fc.assert(fc.property(fc.constantFrom(...CALLS), fc.constantFrom(...READS), where, (call, r, at) => {
      const text = {
        target: `SELECT ${call}, s.* FROM (${r}) s`,
        where: `SELECT * FROM (${r}) s WHERE ${call} IS NOT NULL`,
        from: `SELECT * FROM (${r}) s, LATERAL (SELECT ${call}) f`,
        subquery: `SELECT * FROM (${r}) s WHERE EXISTS (SELECT ${call})`,
        order: `SELECT * FROM (${r}) s ORDER BY ${call}`,
      }[at];
      const [a] = sql.classify(text);
      expect(a!.kind).not.toBe('select');
    }));
  });
});

describe('an effect nested anywhere is never lost', () => {
  const HIDDEN: [string, SqlKind][] = [
    ["pg_read_file('x')", 'do'], ['evil(1)', 'call'], ["nextval('s')", 'update'], ["set_config('role', 'r', false)", 'grant'],
    ["query_to_xml('x', true, true, '')", 'unknown'], ['lo_unlink(1)', 'delete'], ["lo_from_bytea(0, 'x')", 'insert'],
  ];
  // Expression contexts: each wraps an expression `e` in a bigger expression or query.
  const EXPR: ((e: string) => string)[] = [
    (e) => `(SELECT ${e})`,
    (e) => `(SELECT max(x) FROM t WHERE y = ${e})`,
    (e) => `CASE WHEN a > 0 THEN ${e} ELSE 0 END`,
    (e) => `coalesce(${e}, 1)`,
    (e) => `ARRAY(SELECT ${e} FROM t)`,
    (e) => `(${e})::text`,
    (e) => `lower((${e})::text)`,
    (e) => `EXISTS (SELECT 1 FROM t WHERE ${e} IS NULL)`,
    (e) => `(SELECT count(*) FILTER (WHERE ${e} IS NULL) FROM t)`,
    (e) => `(SELECT sum(x) OVER (ORDER BY ${e}) FROM t LIMIT 1)`,
    (e) => `ROW(1, ${e})`,
    (e) => `a IN (SELECT ${e})`,
  ];
  // Statement contexts: each turns an expression into a whole statement.
  const STMT: ((e: string) => string)[] = [
    (e) => `SELECT ${e}`,
    (e) => `SELECT * FROM users WHERE id = ${e}`,
    (e) => `SELECT * FROM users u JOIN orders o ON o.id = ${e}`,
    (e) => `SELECT * FROM users, LATERAL (SELECT ${e}) l`,
    (e) => `SELECT id FROM users GROUP BY id HAVING count(*) > ${e}`,
    (e) => `SELECT * FROM users ORDER BY ${e}`,
    (e) => `WITH c AS (SELECT ${e}) SELECT * FROM c`,
    (e) => `SELECT 1 UNION ALL SELECT ${e}`,
    (e) => `VALUES (${e})`,
    (e) => `SELECT * FROM (SELECT ${e}) s`,
    (e) => `EXPLAIN ANALYZE SELECT ${e}`,
    (e) => `PREPARE p AS SELECT ${e}`,
    (e) => `DECLARE c CURSOR FOR SELECT ${e}`,
    (e) => `COPY (SELECT ${e}) TO STDOUT`,
    (e) => `SELECT * FROM users LIMIT ${e}`,
  ];

  it('the kind is at least as bad as the hidden effect', () => {
    fc.assert(fc.property(
      fc.constantFrom(...HIDDEN), fc.array(fc.nat({ max: EXPR.length - 1 }), { maxLength: 3 }), fc.nat({ max: STMT.length - 1 }),
      ([call, effect], exprs, stmt) => {
        let e = call;
        for (const i of exprs) e = EXPR[i]!(e);
        const text = STMT[stmt]!(e);
        const [a] = sql.classify(text);
        expect(kindRank(a!.kind), `${text} → ${a!.kind}`).toBeLessThanOrEqual(kindRank(effect));
      },
    ), { numRuns: 300 });
  });
});
