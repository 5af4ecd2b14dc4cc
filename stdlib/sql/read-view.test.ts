import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier, type SqlAnalyzer } from './index.ts';
import { readViewWith, type ReadView } from './read-view.ts';
import type { SqlAction } from '../facts.ts';

let view: (a: SqlAction) => ReadView | undefined;
let analyzer: SqlAnalyzer;
beforeAll(async () => {
  const c = await loadSqlClassifier();
  analyzer = c;
  view = readViewWith(c);
});
const of = (sql: string) => view(analyzer.analyze(sql)[0]!.action);

describe('readView: the read a statement contains', () => {
  it('a write reads the tables it writes and the tables it reads', () => {
    // What comes back (RETURNING) or is copied (INSERT ... SELECT) is read: every read mask applies.
    expect(of('UPDATE customers SET name = name RETURNING email')).toEqual({ action: expect.objectContaining({ kind: 'select', effects: ['select'], reads: ['public.customers'], writes: [] }) });
    expect(of('INSERT INTO archive SELECT * FROM customers')).toEqual({ action: expect.objectContaining({ reads: ['public.customers'] }) });
    // A write that returns nothing reads the rows it writes (errors quote them): their column masks only.
    expect(of('UPDATE customers SET name = NULL')).toEqual({ action: expect.objectContaining({ reads: ['public.customers'] }), onlyColumnsOf: ['public.customers'] });
    expect(of('DELETE FROM orders USING customers WHERE orders.customer_id = customers.id')?.onlyColumnsOf).toEqual(['public.orders']);
    // DDL that converts or indexes rows quotes them in its errors.
    expect(of('CREATE INDEX ON customers (email)')?.onlyColumnsOf).toEqual(['public.customers']);
  });
  it('calls and copies read what they read; a view definition copies nothing', () => {
    expect(of('SELECT f(1), email FROM customers')?.action.reads).toEqual(['public.customers']);
    expect(of('CREATE TABLE t AS SELECT email FROM customers')?.action.reads).toEqual(['public.customers']);
    expect(of('COPY (SELECT email FROM customers) TO STDOUT')?.action.reads).toEqual(['public.customers']);
    expect(of('CREATE VIEW v AS SELECT email FROM customers')).toBeUndefined();
  });
  it('reads, settings and statements that read nothing have none', () => {
    // pg_sleep and NOTIFY are calls of known built-ins: they read nothing unnamed.
    for (const sql of ['SELECT email FROM customers', 'SET search_path = public', 'BEGIN', 'EXPLAIN UPDATE customers SET name = 1', 'SELECT pg_sleep(0)', 'NOTIFY x']) {
      expect(of(sql), sql).toBeUndefined();
    }
  });

  it('code whose reads cannot be known (a function call, DO, SQL from a string) is an opaque read of what it names', () => {
    for (const sql of ['SELECT f(1)', 'SELECT * FROM f()', "DO $$ BEGIN PERFORM 1; END $$", "SELECT query_to_xml('select 1', true, true, '')", 'SELECT f(1), email FROM customers',
      // Logical decoding returns rows of every table written since the slot began.
      "SELECT data FROM pg_logical_slot_peek_changes('s', NULL, NULL)", "SELECT * FROM pg_catalog.pg_logical_slot_get_binary_changes('s', NULL, NULL)"]) {
      const r = of(sql);
      expect(r, sql).toMatchObject({ opaque: true, action: { kind: 'select', effects: ['select'] } });
      expect(r!.onlyColumnsOf, sql).toBeUndefined();
    }
    expect(of('SELECT f(1), email FROM customers')!.action.reads).toEqual(['public.customers']);
  });
});
