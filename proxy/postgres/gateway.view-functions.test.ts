// Reading a view runs the functions its query calls, and reading a table with row security runs
// the functions its policies call: under a read-only policy `SELECT * FROM v_bump` (a view over
// `nextval('s')`) must be refused as the direct call is, and the sequence must not move. The
// gateway reads what a relation runs from the catalog (pg_depend of the view's rewrite rule and
// of the table's policies, through nested views) and judges each function as a direct call.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { PgCatalog } from '../masking/pg-catalog.ts';
import type { NameCatalogs } from './name-catalog.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let c: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `SET ROLE app;
     CREATE SEQUENCE public.s;
     CREATE VIEW public.v_bump AS SELECT nextval('public.s') AS n;
     CREATE VIEW public.v_bump_2 AS SELECT n FROM public.v_bump;
     CREATE VIEW public.v_lock AS SELECT pg_try_advisory_lock(42) AS l;
     CREATE TABLE public.items (id int, name text);
     INSERT INTO public.items VALUES (1, 'Apple'), (2, 'Pear');
     CREATE VIEW public.v_items AS SELECT id, lower(name) AS name FROM public.items;
     CREATE TABLE public.log (at int);
     CREATE FUNCTION public.note() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.log VALUES (1); RETURN true; END $$;
     CREATE VIEW public.v_note AS SELECT public.note() AS ok;
     CREATE TABLE public.guarded (id int);
     INSERT INTO public.guarded VALUES (1), (2);
     ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
     ALTER TABLE public.guarded FORCE ROW LEVEL SECURITY;
     CREATE POLICY noted ON public.guarded USING (public.note());
     CREATE VIEW public.v_guarded AS SELECT id FROM public.guarded;
     CREATE TABLE public.dormant (id int);
     INSERT INTO public.dormant VALUES (1);
     CREATE POLICY noted ON public.dormant USING (public.note());
     CREATE OPERATOR public.@@@ (RIGHTARG = regclass, FUNCTION = nextval);
     CREATE VIEW public.v_op AS SELECT @@@ 'public.s'::regclass AS n;
     CREATE DOMAIN public.noted_int AS int CHECK (public.note());
     CREATE VIEW public.v_domain AS SELECT 1::public.noted_int AS x;
     CREATE VIEW public.v_items_2 AS SELECT id::text AS id, name || '!' AS name, count(*) OVER () AS n FROM public.items WHERE id > 0 AND name LIKE '%' ORDER BY name;`,
    'app',
  );
  gw = await startTestGateway(cluster, READ_ONLY);
  c = new pg.Client(gw.pgConfig(await gw.token()));
  await c.connect();
});

afterAll(async () => {
  await c?.end();
  await gw?.close();
  await cluster?.stop();
});

async function outcome(sql: string): Promise<string> {
  return c.query(sql).then(
    (r) => JSON.stringify(r.rows),
    (e: { code?: string; message?: string }) => `refused ${e.code}: ${e.message}`,
  );
}

const sequence = (): string => cluster.psql('SELECT last_value, is_called FROM public.s', 'app').trim();
const logged = (): string => cluster.psql('SELECT count(*) FROM public.log', 'app').trim();

describe('reading a view or a row-secured table runs its functions (read-only policy)', () => {
  it('a view over nextval() is refused, by SELECT and by TABLE, and the sequence does not move', async () => {
    const before = sequence();
    for (const sql of ['SELECT * FROM v_bump', 'SELECT * FROM public.v_bump', 'TABLE v_bump', 'SELECT n + 1 FROM (SELECT * FROM v_bump) x']) {
      expect(await outcome(sql), sql).toMatch(/^refused 42501/);
    }
    expect(sequence()).toBe(before);
  });

  it('a view over that view is refused too', async () => {
    const before = sequence();
    expect(await outcome('SELECT * FROM v_bump_2')).toMatch(/^refused 42501/);
    expect(await outcome('TABLE public.v_bump_2')).toMatch(/^refused 42501/);
    expect(sequence()).toBe(before);
  });

  it('a view taking an advisory lock, and a view calling a user function that writes, are refused', async () => {
    expect(await outcome('SELECT * FROM v_lock')).toMatch(/^refused 42501/);
    expect(await outcome('SELECT * FROM v_note')).toMatch(/^refused 42501/);
    expect(cluster.psql('SELECT count(*) FROM pg_locks WHERE locktype = $$advisory$$', 'app').trim()).toBe('0');
    expect(logged()).toBe('0');
  });

  it('a view using a user operator over nextval(), or casting to a domain whose check writes, is refused', async () => {
    const before = sequence();
    expect(await outcome('SELECT * FROM v_op')).toMatch(/^refused 42501/);
    expect(await outcome('SELECT * FROM v_domain')).toMatch(/^refused 42501/);
    expect(sequence()).toBe(before);
    expect(logged()).toBe('0');
  });

  it('reading a table whose row security policy calls a writing function is refused (directly and through a view)', async () => {
    expect(await outcome('SELECT * FROM guarded')).toMatch(/^refused 42501/);
    expect(await outcome('SELECT count(*) FROM public.guarded')).toMatch(/^refused 42501/);
    expect(await outcome('SELECT * FROM v_guarded')).toMatch(/^refused 42501/);
    expect(logged()).toBe('0');
  });

  it('a plain view over a table (calling only safe built-ins) still reads, and so do the system views', async () => {
    expect(await outcome('SELECT * FROM v_items ORDER BY id')).toBe(JSON.stringify([{ id: 1, name: 'apple' }, { id: 2, name: 'pear' }]));
    expect(await outcome('TABLE v_items')).toMatch(/^\[/);
    expect(await outcome('SELECT id, n FROM v_items_2 ORDER BY id')).toBe(JSON.stringify([{ id: '1', n: '2' }, { id: '2', n: '2' }]));
    expect(await outcome('SELECT * FROM items ORDER BY id')).toMatch(/^\[/);
    expect(await outcome(`SELECT count(*) > 0 AS ok FROM information_schema.columns WHERE table_name = 'items'`)).toBe('[{"ok":true}]');
    expect(await outcome(`SELECT count(*) > 0 AS ok FROM pg_settings`)).toBe('[{"ok":true}]');
  });
});

describe('when the catalog cannot say what reading a relation runs', () => {
  it('a read of a table is refused (fail closed), a statement reading no table still runs', async () => {
    const catalog = new PgCatalog({ connection: { connectionString: cluster.appUser.url }, ttlMs: 0 });
    const names: NameCatalogs = {
      catalogFor: () => ({
        relationSchemas: (n) => catalog.relationSchemas(n),
        usableSchemas: () => catalog.usableSchemas(),
        relationSources: (q) => catalog.relationSources(q),
        relationFunctions: () => Promise.reject(new Error('catalog connection lost')),
        statisticsTables: () => catalog.statisticsTables(),
        functionsOutsideCatalog: () => catalog.routineNamesOutsideCatalog('function'),
        operatorsOutsideCatalog: () => catalog.routineNamesOutsideCatalog('operator'),
        invalidate: () => catalog.invalidate(),
      }),
      close: () => catalog.close(),
    };
    const gw2 = await startTestGateway(cluster, READ_ONLY, { names });
    const c2 = new pg.Client(gw2.pgConfig(await gw2.token()));
    await c2.connect();
    try {
      const before = sequence();
      await expect(c2.query('SELECT * FROM public.v_bump')).rejects.toMatchObject({ code: '42501' });
      await expect(c2.query('SELECT * FROM public.items')).rejects.toMatchObject({ code: '42501' });
      expect((await c2.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(sequence()).toBe(before);
    } finally {
      await c2.end();
      await gw2.close();
      await names.close();
    }
  });
});

describe('row security enabled in the open transaction (a policy that allows DDL)', () => {
  it('reading the table after ENABLE ROW LEVEL SECURITY in the same transaction is refused', async () => {
    const gw3 = await startTestGateway(cluster, READ_ONLY.replace('match sql read, set, transaction, explain, utility', 'match sql read, set, transaction, explain, utility, ddl, grant'));
    const c3 = new pg.Client(gw3.pgConfig(await gw3.token()));
    await c3.connect();
    try {
      await c3.query('BEGIN');
      await c3.query('ALTER TABLE public.dormant ENABLE ROW LEVEL SECURITY');
      await c3.query('ALTER TABLE public.dormant FORCE ROW LEVEL SECURITY');
      await expect(c3.query('SELECT * FROM public.dormant')).rejects.toMatchObject({ code: '42501' });
      await c3.query('ROLLBACK');
      expect(logged()).toBe('0');
    } finally {
      await c3.end();
      await gw3.close();
    }
  });
});
