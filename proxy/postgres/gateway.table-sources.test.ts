// `on tables [...]` rules see indirect reads (issue 14 item 6): reading a view reads its base
// tables, reading a partition or an inheritance child reads data of its parent's table, and
// pg_stats / pg_stats_ext show sample values of every column the role may read. A mask rule scoped
// to public.customers then applies (and the masker masks or refuses), and a block rule scoped to
// hr.payroll blocks, whichever relation the statement names.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';

const POLICY = `package t
default block "not allowed"

rule work {
  match sql select, set, transaction, utility, explain, ddl, insert
  allow
}

rule mask_customer_pii {
  match sql select on tables ["public.customers", "public.events"]
  mask column "customers.email" with redact
  mask column "events.contact" with redact
}

rule no_payroll {
  match sql select, insert, ddl on tables ["hr.payroll"]
  block "payroll is off limits"
}
`;

let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;
let c: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `SET ROLE app;
     CREATE TABLE public.customers (id int, email text);
     INSERT INTO public.customers SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 50) i;
     INSERT INTO public.customers SELECT 0, 'common@example.com' FROM generate_series(1, 50);
     ANALYZE public.customers;
     CREATE VIEW public.customer_emails AS SELECT id, email FROM public.customers;
     CREATE VIEW public.customer_emails_2 AS SELECT email FROM public.customer_emails;
     CREATE TABLE public.events (id int, contact text) PARTITION BY RANGE (id);
     CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES FROM (0) TO (100);
     INSERT INTO public.events VALUES (1, 'partition@example.com');
     CREATE TABLE public.customers_child () INHERITS (public.customers);
     INSERT INTO public.customers_child VALUES (7, 'child@example.com');
     CREATE SCHEMA hr;
     CREATE TABLE hr.payroll (id int, salary int);
     INSERT INTO hr.payroll VALUES (1, 250000);
     CREATE VIEW public.pay AS SELECT salary FROM hr.payroll;`,
    'app',
  );
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker });
  c = new pg.Client(gw.pgConfig(await gw.token()));
  await c.connect();
});

afterAll(async () => {
  await c?.end();
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

async function first(sql: string): Promise<string> {
  return c.query(sql).then(
    (r) => String(Object.values(r.rows[0] ?? {})[0]),
    (e: { code?: string }) => `refused ${e.code}`,
  );
}

describe('on tables rules see through views, partitions, inheritance and statistics', () => {
  it('a view (and a view of a view) over the masked table is masked', async () => {
    expect(await first('SELECT email FROM customer_emails WHERE id = 1')).toBe('[REDACTED]');
    expect(await first('SELECT email FROM public.customer_emails_2 LIMIT 1')).toBe('[REDACTED]');
  });

  it('a partition of the masked table is masked, and so is an inheritance child', async () => {
    expect(await first('SELECT contact FROM events_1')).toBe('[REDACTED]');
    expect(await first('SELECT email FROM customers_child')).toBe('[REDACTED]');
  });

  it('a view over a blocked table is blocked', async () => {
    expect(await first('SELECT salary FROM pay')).toBe('refused 42501');
  });

  it('pg_stats and pg_stats_ext count as reads of the tables they describe', async () => {
    expect(await first("SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers' AND attname = 'email'")).toBe('refused 42501');
    expect(await first('SELECT count(*) FROM pg_catalog.pg_stats_ext')).toBe('refused 42501');
  });

  it('a temporary view over the masked table is masked; a view created in the open transaction reads what its CREATE read', async () => {
    await c.query('CREATE TEMP VIEW tv AS SELECT email FROM public.customers WHERE id = 1');
    expect(await first('SELECT email FROM tv')).toBe('[REDACTED]');
    await c.query('BEGIN');
    // Creating a view over pay (over hr.payroll) is itself blocked: it reads hr.payroll.
    await expect(c.query('CREATE VIEW public.fresh AS SELECT salary FROM pay')).rejects.toMatchObject({ code: '42501' });
    await c.query('ROLLBACK');
    await c.query('BEGIN');
    await c.query('CREATE VIEW public.fresh AS SELECT email FROM public.customers WHERE id = 1');
    // Not in the committed catalog yet, it reads public.customers: the mask applies, and the masker,
    // which cannot see the new view either, refuses rather than guess.
    await expect(c.query('SELECT email FROM fresh')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('schema change in the same transaction') });
    await c.query('ROLLBACK');
    // Committed, the catalog shows it (the session's DDL drops the gateway's cached answers).
    await c.query('CREATE VIEW public.fresh AS SELECT email FROM public.customers WHERE id = 1');
    expect(await first('SELECT email FROM fresh')).toBe('[REDACTED]');
  });

  it('the tables themselves read as before', async () => {
    expect(await first('SELECT email FROM customers WHERE id = 1')).toBe('[REDACTED]');
    expect(await first('SELECT count(*) FROM customers')).toBe('101');
  });
});
