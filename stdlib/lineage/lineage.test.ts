// Lineage over an in-memory catalog: the cases that need no database (name resolution across
// schemas, `*` expansion order, spreads, fixed points). The corpus against a real PostgreSQL is in
// proxy/masking/masking.test.ts.

import { beforeAll, describe, expect, it } from 'vitest';
import { loadStatementParser, MemoryCatalog, statementLineage, type Flow, type StatementParser } from './index.ts';

let parse: StatementParser;
beforeAll(async () => {
  parse = await loadStatementParser();
});

const catalog = new MemoryCatalog({
  relations: [
    { name: 'customers', columns: ['id', 'name', 'email'] },
    { schema: 'hr', name: 'staff', columns: ['id', 'name', 'ssn'] },
    { schema: 'public', name: 'staff', columns: ['id', 'name', 'ssn'] },
    { name: 'orders', columns: ['id', 'customer_id', 'note'] },
    { name: 'v1', kind: 'v', columns: ['e'], viewDefinition: 'SELECT v2.e FROM v2' },
    { name: 'v2', kind: 'v', columns: ['e'], viewDefinition: 'SELECT v1.e FROM v1' },
    { name: 'v_bad', kind: 'v', columns: ['x'], viewDefinition: 'SELECT leak(email) AS x FROM customers' },
  ],
  userFunctions: { leak: 'public' },
  userOperators: { '===': 'public' },
});

const masked = new Set(['public.customers.email', 'hr.staff.ssn']);

const code = (f: Flow): string => (f.t === 'clear' ? 'c' : f.t === 'direct' ? `=${f.column.split('.').pop()}` : f.t === 'derived' ? 'd' : 'o');

async function lineage(sql: string) {
  const [stmt] = parse(sql);
  return statementLineage(stmt.ast, { catalog, masked, parse });
}

async function outputs(sql: string): Promise<string> {
  const l = await lineage(sql);
  expect(l.blocks, sql).toEqual([]);
  return l.outputs.map((o) => (o.spread ? `*${code(o.flow)}` : code(o.flow))).join(' ');
}

describe('lineage', () => {
  it('an unqualified name that exists in several schemas takes the masks of every candidate', async () => {
    // The session's search_path decides between hr.staff and public.staff; the gateway cannot know which.
    expect(await outputs('SELECT id, ssn FROM staff')).toBe('c =ssn');
    expect(await outputs('SELECT ssn FROM public.staff')).toBe('c');
    expect(await outputs('SELECT ssn FROM hr.staff')).toBe('=ssn');
  });

  it('expands * over JOIN ... USING with the merged column first, as PostgreSQL does', async () => {
    expect(await outputs('SELECT * FROM customers JOIN orders USING (id)')).toBe('c c =email c c');
    expect(await outputs('SELECT * FROM customers c NATURAL JOIN orders o')).toBe('c c =email c c');
  });

  it('maps a set-returning function of unknown shape to a spread', async () => {
    expect(await outputs('SELECT c.email, f.* FROM customers c, jsonb_each(jsonb_build_object(\'k\', c.name)) f')).toBe('=email c *c');
    expect(await outputs('SELECT f.* FROM customers c, jsonb_each(jsonb_build_object(\'k\', c.email)) f')).toBe('d *d');
  });

  it('keeps a direct copy direct through aliases of aliases and column renames', async () => {
    expect(await outputs('SELECT z FROM (SELECT y AS z FROM (SELECT email AS y FROM customers) a) b')).toBe('=email');
    expect(await outputs('SELECT b FROM customers AS c(a, x, b)')).toBe('=email');
  });

  it('a CTE shadows a table of the same name', async () => {
    expect(await outputs("WITH customers AS (SELECT 'x' AS email) SELECT email FROM customers")).toBe('c');
  });

  it('correlated subqueries see the outer masked column', async () => {
    expect(await outputs('SELECT (SELECT c.email) FROM customers c')).toBe('=email');
    expect(await outputs('SELECT (SELECT upper(c.email)) FROM customers c')).toBe('d');
  });

  it('blocks cyclic or over-deep views instead of looping', async () => {
    const l = await lineage('SELECT e FROM v1');
    expect(l.blocks.join(' ')).toMatch(/nested deeper/);
  });

  it('a view that calls a user-defined function blocks the statements that read it', async () => {
    const l = await lineage('SELECT x FROM v_bad');
    expect(l.blocks.join(' ')).toMatch(/view public\.v_bad: function leak resolves to public\.leak, which is user-defined/);
  });

  it('a user-defined operator over masked data blocks', async () => {
    const l = await lineage("SELECT email === 'x' FROM customers");
    expect(l.blocks.join(' ')).toMatch(/operator === has a user-defined version/);
  });

  it('unresolvable columns are opaque, never clear', async () => {
    const l = await lineage('SELECT nosuch FROM customers');
    expect(l.blocks.join(' ')).toMatch(/column nosuch cannot be resolved/);
    expect(await outputs('SELECT ctid, xmin, email FROM customers')).toBe('c c =email');
  });

  it('names the column and the reason in every block', async () => {
    const l = await lineage('SELECT email::int FROM customers');
    expect(l.blocks).toEqual(['cast of masked column public.customers.email to int4: an invalid value would be quoted in the error message']);
  });

  it('ORDER BY and GROUP BY may name output columns, also of a UNION', async () => {
    expect(await outputs('SELECT name AS n FROM customers ORDER BY n')).toBe('c');
    expect(await outputs('SELECT id AS a FROM customers UNION SELECT id FROM orders ORDER BY a')).toBe('c');
    expect(await outputs('SELECT upper(name) AS u, count(*) FROM customers GROUP BY u')).toBe('c c');
    expect((await lineage('SELECT email AS e FROM customers ORDER BY e::int')).blocks.join(' ')).toMatch(/cast of masked column public\.customers\.email/);
  });

  it('describes FETCH and EXECUTE as unknown so the masker must account for every field', async () => {
    expect((await lineage('FETCH ALL FROM c')).result).toBe('unknown');
    expect((await lineage('EXECUTE p')).result).toBe('unknown');
    expect((await lineage('SET search_path = hr')).result).toBe('none');
  });
});

describe('robustness', () => {
  it('analyses every statement of the classifier corpora without throwing', async () => {
    const { DISGUISED, GENUINE_READS } = await import('../sql/corpus/disguised.ts');
    const texts = [...DISGUISED.map(([t]) => t), ...GENUINE_READS];
    expect(texts.length).toBeGreaterThan(80);
    for (const text of texts) {
      for (const s of parse(text)) {
        if (s.ast === null) continue;
        const l = await statementLineage(s.ast, { catalog, masked, parse });
        expect(['rows', 'none', 'unknown']).toContain(l.result);
      }
    }
  });
});
