import { beforeAll, describe, expect, it } from 'vitest';
import type { SqlAction } from '../facts.ts';
import { loadSqlClassifier } from './index.ts';

let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;
beforeAll(async () => {
  sql = await loadSqlClassifier();
});

const one = (text: string, prepared?: ReadonlyMap<string, SqlAction>): SqlAction => {
  const actions = sql.classify(text, prepared ? { prepared } : undefined);
  expect(actions).toHaveLength(1);
  return actions[0]!;
};

describe('statements', () => {
  it('splits a message into one action per statement, each with its own text', () => {
    const actions = sql.classify("SELECT 'é' FROM a; DELETE FROM b WHERE id = 1 ;  UPDATE c SET x = 1");
    expect(actions.map((a) => [a.kind, a.text])).toEqual([
      ['select', "SELECT 'é' FROM a"],
      ['delete', 'DELETE FROM b WHERE id = 1'],
      ['update', 'UPDATE c SET x = 1'],
    ]);
    expect(actions.map((a) => a.has_where)).toEqual([true, true, false]);
  });

  it('gives a single unknown action with a reason when the text does not parse', () => {
    const [a, ...rest] = sql.classify('SELECT 1; DELETE FRM t');
    expect(rest).toHaveLength(0);
    expect(a!.kind).toBe('unknown');
    expect(a!.reason).toMatch(/does not parse/);
    expect(a!.fingerprint).toMatch(/^raw:/);
  });

  it("keeps the parser's message and PostgreSQL's 1-based character position of a parse error", () => {
    // 'é' is two bytes in UTF-8: the position counts characters, like the server's P field.
    const [s] = sql.analyze("SELECT 'é'; DELETE FRM t");
    expect(s!.parseError).toEqual({ message: 'syntax error at or near "FRM"', position: 20, file: 'scan.l' });
    expect(sql.analyze('SELECT 1')[0]!.parseError).toBeUndefined();
  });

  it('reports qualified reads, writes and columns', () => {
    const a = one('SELECT c.email, o.total FROM customers c JOIN sales.orders o ON o.customer_id = c.id LIMIT 10');
    expect(a.kind).toBe('select');
    expect(a.reads).toEqual(['public.customers', 'sales.orders']);
    expect(a.writes).toEqual([]);
    expect(a.columns).toEqual(['public.customers.email', 'public.customers.id', 'sales.orders.customer_id', 'sales.orders.total']);
    expect(a.limit).toBe(10);
    expect(a.normalized).toBe('SELECT c.email, o.total FROM customers c JOIN sales.orders o ON o.customer_id = c.id LIMIT $1');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('takes the worst effect of a data-modifying CTE', () => {
    const a = one('WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone');
    expect(a.kind).toBe('delete');
    expect(a.effects).toEqual(['delete', 'select']);
    expect(a.writes).toEqual(['public.t']);
    // RETURNING reads back the rows written (a mask rule scoped to reads must see them).
    expect(a.reads).toEqual(['public.t']);
    expect(a.has_where).toBe(false);
  });

  it('resolves EXECUTE through the session prepared statements only', () => {
    expect(one('EXECUTE p(1)').kind).toBe('unknown');
    const prepared = new Map([['p', one('PREPARE p AS DELETE FROM t WHERE id = $1')]]);
    expect(prepared.get('p')!.kind).toBe('delete');
    const a = one('EXECUTE p(1)', prepared);
    expect(a.kind).toBe('delete');
    expect(a.writes).toEqual(['public.t']);
  });

  it('serves a repeated statement from the cache', () => {
    const text = 'SELECT id FROM cached_table WHERE id = 42';
    expect(sql.analyze(text)[0]).toBe(sql.analyze(text)[0]);
    expect(sql.analyze(text)[0]!.ast).toHaveProperty('SelectStmt');
  });
});
