// A built-in's name is not the built-in when a user's function of that name answers better
// (issue 14, write differential): PostgreSQL resolves `lower(1)` to a `public.lower(integer)` over
// `pg_catalog.lower(text)`, which would need a cast. Under a read-only policy every spelling of such
// a call is refused and the function's insert never happens; with no shadowing function the
// built-in still runs. The same for operators: a user's `public.||(int, int)` answers `1 || 2`.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

/** Reads and DDL, no calls: a migration role that must not run functions of unknown effect. */
const READ_AND_DDL = `package t
default block "not allowed"

rule reads_and_migrations {
  match sql read, ddl, set, transaction, utility
  allow
}
`;

let cluster: Cluster;
let direct: pg.Client;

const SHADOWS = `
CREATE TABLE log (id serial PRIMARY KEY, msg text);
CREATE FUNCTION public.lower(x integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO log (msg) VALUES ('lower ' || x) RETURNING msg $$;
CREATE FUNCTION public.upper(x integer) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log (msg) VALUES ('upper ' || x); RETURN 'x'; END $$;
-- Operators: for (int, int) no built-in || exists, for (int, text) no built-in +, so these win.
CREATE FUNCTION w_ii(a int, b int) RETURNS int LANGUAGE sql AS $$ INSERT INTO log (msg) VALUES ('||') RETURNING 1 $$;
CREATE FUNCTION w_it(a int, b text) RETURNS int LANGUAGE sql AS $$ INSERT INTO log (msg) VALUES ('+') RETURNING 1 $$;
CREATE OPERATOR public.|| (LEFTARG = int, RIGHTARG = int, FUNCTION = w_ii);
CREATE OPERATOR public.+ (LEFTARG = int, RIGHTARG = text, FUNCTION = w_it);`;

beforeAll(async () => {
  cluster = await startCluster();
  direct = new pg.Client(cluster.appUser.url);
  await direct.connect();
  // Directly, as the application's role: the gateway never saw this DDL.
  await direct.query(SHADOWS);
});

afterAll(async () => {
  await direct?.end();
  await cluster?.stop();
});

async function outcome(client: pg.Client, text: string, values?: unknown[]): Promise<string> {
  return client.query(text, values).then(
    () => 'ran',
    (e: { code?: string }) => e.code ?? 'no code',
  );
}

const logged = async (): Promise<number> => Number((await direct.query<{ n: string }>('SELECT count(*) AS n FROM log')).rows[0]!.n);

describe('a read-only policy and a user function with a built-in name', () => {
  let gw: TestGateway;
  let client: pg.Client;

  beforeAll(async () => {
    gw = await startTestGateway(cluster, READ_ONLY);
    client = new pg.Client(gw.pgConfig(await gw.token()));
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await gw?.close();
  });

  it.each([
    'SELECT lower(1)',
    'SELECT (1).lower',
    'SELECT "lower"(1)',
    'SELECT U&"\\006c\\006f\\0077\\0065\\0072"(1)',
    'SELECT upper(1)',
    'SELECT id FROM log WHERE lower(id) IS NOT NULL UNION ALL SELECT length(lower(2))',
    'SELECT 1 || 2',
    "SELECT 1 + 'a'::text",
    "SELECT 1 OPERATOR(public.+) 'a'::text",
    'SELECT count(*) FROM (VALUES (1)) v(x) WHERE x || 2 = 1',
  ])('refuses %s and nothing is inserted', async (text) => {
    expect(await outcome(client, text)).toBe('42501');
    expect(await logged()).toBe(0);
  });

  it('refuses it through the extended protocol and through PREPARE/EXECUTE', async () => {
    expect(await outcome(client, 'SELECT lower($1::int)', [1])).toBe('42501');
    const prepared = await outcome(client, 'PREPARE shadow AS SELECT lower(1)');
    const executed = await outcome(client, 'EXECUTE shadow');
    expect([prepared, executed]).toContain('42501');
    expect(executed).not.toBe('ran');
    expect(await logged()).toBe(0);
  });

  it('says why in the audit record: a call of unknown effect', async () => {
    await outcome(client, 'SELECT lower(7)');
    const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized.includes('lower(')).at(-1);
    expect(rec).toMatchObject({ verdict: 'block', outcome: 'blocked', statement: { kind: 'call' } });
  });
});

describe('with no function shadowing the built-in', () => {
  it('runs the built-in', async () => {
    await direct.query('DROP FUNCTION public.lower(integer); DROP FUNCTION public.upper(integer); DROP OPERATOR public.|| (int, int); DROP OPERATOR public.+ (int, text)');
    // A gateway started after the DROP: its catalog has never seen the shadowing functions.
    const gw = await startTestGateway(cluster, READ_ONLY);
    const client = new pg.Client(gw.pgConfig(await gw.token()));
    await client.connect();
    try {
      expect((await client.query<{ l: string }>("SELECT lower('ABC') AS l")).rows[0]!.l).toBe('abc');
      expect((await client.query<{ u: string }>("SELECT ('abc').upper AS u")).rows[0]!.u).toBe('ABC');
      expect((await client.query<{ s: string }>("SELECT (1 + 1)::text || 'b' AS s")).rows[0]!.s).toBe('2b');
    } finally {
      await client.end();
      await gw.close();
    }
  });
});

describe('a shadowing function created through the gateway', () => {
  it('is seen by the next statement: the DDL drops the cached names when it commits, and inside its transaction nothing is trusted', async () => {
    const gw = await startTestGateway(cluster, READ_AND_DDL, {}, 'prod-ddl');
    const client = new pg.Client(gw.pgConfig(await gw.token()));
    await client.connect();
    try {
      // The catalog's answer (no lower outside pg_catalog) is read and cached here.
      expect((await client.query<{ l: string }>("SELECT lower('ABC') AS l")).rows[0]!.l).toBe('abc');
      await client.query('BEGIN');
      await client.query("CREATE FUNCTION public.lower(x integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO log (msg) VALUES ('lower ' || x) RETURNING msg $$");
      expect(await outcome(client, 'SELECT lower(1)')).toBe('42501');
      await client.query('ROLLBACK');
      await client.query("CREATE FUNCTION public.lower(x integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO log (msg) VALUES ('lower ' || x) RETURNING msg $$");
      expect(await outcome(client, 'SELECT lower(1)')).toBe('42501');
      expect(await outcome(client, 'SELECT (2).lower')).toBe('42501');
      expect(await logged()).toBe(0);
    } finally {
      await client.end();
      await gw.close();
      await direct.query('DROP FUNCTION IF EXISTS public.lower(integer)');
    }
  });
});
