// A session reuses what it worked out for a statement text (its tables, the catalog's answers
// about them) while nothing that answer depends on has changed: the same text repeated costs a map
// lookup. These tests repeat one text (so the reused answer is there to be served) and then change
// one thing it depends on — the search_path, a temporary table, the catalog through the gateway or
// behind its back, a function shadowing a built-in — and check that the very next run of the same
// text (and of a new text of the same shape: a statement differing only in literal values) is
// decided on the new state, in both protocols.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';

const POLICY = `package t
default block "not allowed"

rule work {
  match sql select, set, transaction, utility, ddl, insert
  allow
}

rule mask_customer_pii {
  match sql select on tables ["public.customers", "public.ghost"]
  mask column "customers.email" with redact
  mask column "ghost.email" with redact
}
`;

const TEXT = 'SELECT email FROM customers';

let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `SET ROLE app;
     CREATE TABLE public.customers (id int, email text);
     INSERT INTO public.customers VALUES (1, 'pub@example.com');
     CREATE SCHEMA other;
     CREATE TABLE other.customers (id int, email text);
     INSERT INTO other.customers VALUES (1, 'other@example.com');
     CREATE SCHEMA fresh;
     CREATE SCHEMA later;`,
    'app',
  );
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker });
});

afterAll(async () => {
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

async function connect(): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(await gw.token()));
  await c.connect();
  return c;
}

let variant = 0;

/** What the session sees of a text three times over in each protocol, and of three texts differing only in a comment (all alike, or the list). */
async function seen(c: pg.Client, text = TEXT): Promise<string> {
  const one = (p: Promise<pg.QueryResult<{ email: string }>>): Promise<string> =>
    p.then(
      (r) => String(r.rows[0]?.email),
      (e: { code?: string }) => `refused ${e.code}`,
    );
  const out: string[] = [];
  for (let i = 0; i < 3; i++) out.push(await one(c.query(text)));
  // The extended protocol (Parse/Bind/Execute) for a text without parameters (@types/pg lacks queryMode).
  const extended = { text, queryMode: 'extended' } as pg.QueryConfig;
  for (let i = 0; i < 3; i++) out.push(await one(c.query<{ email: string }>(extended)));
  // New texts of the same shape (what a text with other literal values shares).
  for (let i = 0; i < 3; i++) out.push(await one(c.query(`${text} /* ${++variant} */`)));
  return out.every((x) => x === out[0]) ? out[0]! : out.join(' | ');
}

describe('a repeated statement is decided on the state it runs in, not the one it was first decided on', () => {
  it('SET search_path back and forth: each run reads (and masks) the table the path names', async () => {
    const c = await connect();
    try {
      expect(await seen(c)).toBe('[REDACTED]');
      await c.query('SET search_path = other, public');
      expect(await seen(c)).toBe('other@example.com');
      await c.query('RESET search_path');
      expect(await seen(c)).toBe('[REDACTED]');
      // A state seen before: what was worked out under it is still right.
      await c.query('SET search_path = other, public');
      expect(await seen(c)).toBe('other@example.com');
      // SET LOCAL ends with its transaction.
      await c.query('RESET search_path');
      await c.query('BEGIN');
      await c.query('SET LOCAL search_path = other, public');
      expect(await seen(c)).toBe('other@example.com');
      await c.query('COMMIT');
      expect(await seen(c)).toBe('[REDACTED]');
    } finally {
      await c.end();
    }
  });

  it('CREATE TEMP TABLE shadows the masked table at once, DROP, DISCARD TEMP or the end of its transaction brings the mask back', async () => {
    const c = await connect();
    try {
      expect(await seen(c)).toBe('[REDACTED]');
      await c.query('CREATE TEMP TABLE customers (id int, email text)');
      await c.query(`INSERT INTO pg_temp.customers VALUES (1, 'temp@example.com')`);
      expect(await seen(c)).toBe('temp@example.com');
      await c.query('DROP TABLE customers');
      expect(await seen(c)).toBe('[REDACTED]');
      await c.query('BEGIN');
      await c.query(`CREATE TEMP TABLE customers ON COMMIT DROP AS SELECT 1 AS id, 'temp2@example.com'::text AS email`);
      expect(await seen(c)).toBe('temp2@example.com');
      await c.query('COMMIT');
      expect(await seen(c)).toBe('[REDACTED]');
      await c.query('BEGIN');
      await c.query(`CREATE TEMP TABLE customers AS SELECT 1 AS id, 'temp3@example.com'::text AS email`);
      expect(await seen(c)).toBe('temp3@example.com');
      await c.query('ROLLBACK');
      expect(await seen(c)).toBe('[REDACTED]');
      // DISCARD TEMP drops them without DDL (no catalog change to notice): the temp tables alone say so.
      await c.query(`CREATE TEMP TABLE customers AS SELECT 1 AS id, 'temp4@example.com'::text AS email`);
      expect(await seen(c)).toBe('temp4@example.com');
      await c.query('DISCARD TEMP');
      expect(await seen(c)).toBe('[REDACTED]');
    } finally {
      await c.end();
    }
  });

  it('a table created and dropped through the gateway earlier on the path is seen by the next run', async () => {
    const c = await connect();
    try {
      await c.query('SET search_path = fresh, public');
      expect(await seen(c)).toBe('[REDACTED]');
      await c.query(`CREATE TABLE fresh.customers AS SELECT 1 AS id, 'fresh@example.com'::text AS email`);
      expect(await seen(c)).toBe('fresh@example.com');
      await c.query('DROP TABLE fresh.customers');
      expect(await seen(c)).toBe('[REDACTED]');
    } finally {
      await c.end();
    }
  });

  it('a table of a name no schema had, created behind the gateway, is resolved to where it now is (an empty answer is not kept)', async () => {
    const c = await connect();
    try {
      await c.query('SET search_path = later, public');
      // No ghost anywhere: the server refuses the read, the gateway lets it through (later.ghost, unmasked).
      expect(await seen(c, 'SELECT email FROM ghost')).toBe('refused 42P01');
      cluster.psql(`SET ROLE app; CREATE TABLE public.ghost (id int, email text); INSERT INTO public.ghost VALUES (1, 'ghost@example.com');`, 'app');
      expect(await seen(c, 'SELECT email FROM ghost')).toBe('[REDACTED]');
    } finally {
      cluster.psql('DROP TABLE IF EXISTS public.ghost', 'app');
      await c.end();
    }
  });

  it('a function created through the gateway that shadows a built-in makes the same call a call of unknown effect at once; dropped, the built-in again', async () => {
    const c = await connect();
    const lower = `SELECT lower('ABC') AS email`;
    try {
      await c.query('SET search_path = other, public');
      expect(await seen(c, lower)).toBe('abc');
      await c.query(`CREATE FUNCTION other.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'shadow' $$`);
      expect(await seen(c, lower)).toBe('refused 42501');
      await c.query('DROP FUNCTION other.lower(text)');
      expect(await seen(c, lower)).toBe('abc');
    } finally {
      await c.end();
    }
  });
});

describe('a long statement (classified off the event loop) is resolved on the session state too', () => {
  it('reads the table the search_path names, masked or not', async () => {
    const c = await connect();
    // Past CLASSIFY_INLINE_BELOW (16 KiB): classified in the classifier pool.
    const long = `${TEXT} /* ${'x'.repeat(20_000)} */`;
    try {
      expect(await seen(c, long)).toBe('[REDACTED]');
      await c.query('SET search_path = other, public');
      expect(await seen(c, long)).toBe('other@example.com');
      await c.query('CREATE TEMP TABLE customers AS SELECT 1 AS id, $$temp@example.com$$::text AS email');
      expect(await seen(c, long)).toBe('temp@example.com');
    } finally {
      await c.end();
    }
  });
});
