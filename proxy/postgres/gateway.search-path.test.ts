// search_path and temporary tables (issue 14 item 17): the gateway follows the session's
// search_path (the value it starts with — the database's default here, the client's startup
// parameter or options — SET, RESET, SET LOCAL, and their transaction scoping) and the temporary
// tables it creates, and resolves an unqualified table name to the table the server will read. An
// `on tables` mask rule masks exactly when public.customers is read, whatever the path, and an
// `on tables` block rule cannot be dodged by changing it.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { RawClient } from './raw-client.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend, encodePassword } from './wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from './wire/startup.ts';

const POLICY = `package t
default block "not allowed"

rule work {
  match sql select, set, transaction, utility, explain, ddl, insert, do
  allow
}

rule mask_customer_pii {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with redact
}

rule no_payroll {
  match sql select, insert, ddl on tables ["hr.payroll"]
  block "payroll is off limits"
}
`;

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
     CREATE TABLE other.payroll (id int, salary int);
     INSERT INTO other.payroll VALUES (1, 1);
     CREATE SCHEMA hr;
     CREATE TABLE hr.payroll (id int, salary int);
     INSERT INTO hr.payroll VALUES (1, 250000);
     CREATE SCHEMA empty;`,
    'app',
  );
  // Sessions of this database start with hr first: an unqualified payroll is hr.payroll.
  cluster.psql('ALTER DATABASE app SET search_path = hr, public');
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker });
});

afterAll(async () => {
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

async function connect(extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ ...gw.pgConfig(await gw.token()), ...extra });
  await c.connect();
  return c;
}

/** The e-mail the session sees, or the SQLSTATE of the refusal. */
async function email(c: pg.Client, sql = 'SELECT email FROM customers'): Promise<string> {
  return c.query<{ email: string }>(sql).then(
    (r) => r.rows[0]!.email,
    (e: { code?: string; message?: string }) => `refused ${e.code}${process.env.DBG ? e.message : ""}`,
  );
}

async function payroll(c: pg.Client, sql = 'SELECT salary FROM payroll'): Promise<string> {
  return c.query<{ salary: number }>(sql).then(
    (r) => `read ${r.rows[0]?.salary}`,
    (e: { code?: string; message?: string }) => `refused ${e.code}${process.env.DBG ? e.message : ""}`,
  );
}

describe('search_path decides which table an unqualified name is', () => {
  it('masks public.customers under the default path, and under SET search_path to a path ending in public', async () => {
    const c = await connect();
    expect(await email(c)).toBe('[REDACTED]');
    await c.query('SET search_path = empty, public');
    expect(await email(c)).toBe('[REDACTED]');
    await c.end();
  });

  it("reads another schema's customers in clear (it is not the masked table), public.customers still masked", async () => {
    const c = await connect();
    await c.query('SET search_path = other, public');
    expect(await email(c)).toBe('other@example.com');
    // The extended protocol resolves names at Parse, with the same path.
    expect((await c.query<{ email: string }>('SELECT email FROM customers WHERE id = $1', [1])).rows[0]!.email).toBe('other@example.com');
    expect(await email(c, 'SELECT email FROM public.customers')).toBe('[REDACTED]');
    // Both in one statement: the mask applies (public.customers is read), to public's column only.
    const both = await c.query('SELECT o.email AS mine, p.email AS masked FROM customers o JOIN public.customers p USING (id)');
    expect(both.rows).toEqual([{ mine: 'other@example.com', masked: '[REDACTED]' }]);
    await c.query('RESET search_path');
    expect(await email(c)).toBe('[REDACTED]');
    await c.end();
  });

  it('follows SET and a query in one message', async () => {
    const c = await connect();
    const r = (await c.query('SET search_path = other; SELECT email FROM customers')) as unknown as pg.QueryResult[];
    expect(r[1]!.rows[0].email).toBe('other@example.com');
    await c.end();
  });

  it('takes search_path from the startup packet: options (PGOPTIONS, JDBC currentSchema) and a plain parameter', async () => {
    const viaOptions = await connect({ options: '-c search_path=public' });
    expect(await email(viaOptions)).toBe('[REDACTED]');
    expect(await payroll(viaOptions)).toMatch(/^refused 42P01/); // no public.payroll: the server says so
    await viaOptions.end();
    const otherFirst = await connect({ options: '-c search_path=other,public' });
    expect(await email(otherFirst)).toBe('other@example.com');
    await otherFirst.end();

    const raw = await RawClient.open(gw.gateway.postgresPort);
    raw.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'agent-7', database: gw.resourceName, search_path: 'other, public' } }));
    await raw.until((m) => m.name === 'authenticationCleartextPassword');
    raw.send(encodePassword(await gw.token()));
    expect(await raw.until((m) => m.name === 'readyForQuery')).toBeDefined();
    raw.query('SELECT email FROM customers');
    const row = await raw.until((m) => m.name === 'dataRow' || m.name === 'error');
    expect(row?.name === 'dataRow' ? row.values.map((v) => v?.toString()) : row).toEqual(['other@example.com']);
    raw.destroy();
  });
});

/** Resolves once `cond` holds (checked on every turn of the event loop), or fails after 10 s. */
async function eventually(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

describe('pipelined messages', () => {
  it('a statement sent before an earlier SET is answered is decided on both outcomes; the session stays in step', async () => {
    const raw = await RawClient.login(gw.gateway.postgresPort, await gw.token(), gw.resourceName);
    const rows = (from: number) => raw.messages.slice(from).filter((m) => m.name === 'dataRow').map((m) => (m.name === 'dataRow' ? m.values.map((v) => v?.toString()) : []));
    const readyCount = () => raw.messages.filter((m) => m.name === 'readyForQuery').length;
    const waitReady = async (n: number) => {
      await raw.until(() => readyCount() >= n);
      expect(readyCount()).toBeGreaterThanOrEqual(n);
    };
    const base = readyCount();
    let from = raw.messages.length;
    // The first message stays unanswered (its second statement waits for a lock held directly),
    // so the SELECT sent after it is decided before the SET is confirmed: it may run under
    // `other, public` or, should the first message fail, under the old path.
    const holder = new pg.Client(cluster.appUser.url);
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE other.payroll IN ACCESS EXCLUSIVE MODE');
    const decided = gw.audit.records.length;
    raw.query('SET search_path = other, public; SELECT count(*) FROM other.payroll');
    raw.query('SELECT email FROM customers /* pipelined */');
    // The SELECT's decision record is written before it is forwarded: wait for it, then let the first message finish.
    await eventually(() => gw.audit.records.slice(decided).some((r) => r.type === 'decision' && r.statement?.normalized.includes('pipelined')));
    await holder.query('COMMIT');
    await holder.end();
    await waitReady(base + 2);
    // other.customers, masked on the chance it was public's: never public's e-mail in clear.
    expect(rows(from)).toEqual([['1'], ['[REDACTED]']]);
    // Once answered, the path is certain again.
    from = raw.messages.length;
    raw.query('SELECT email FROM customers');
    await waitReady(base + 3);
    expect(rows(from)).toEqual([['other@example.com']]);
    // The extended protocol: SET and SELECT in one pipeline, each with its Sync.
    from = raw.messages.length;
    raw.send(Buffer.concat([
      encodeFrontend({ name: 'parse', statement: '', text: 'SET search_path = hr, public', paramTypes: [] }),
      encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
      encodeFrontend({ name: 'sync' }),
      encodeFrontend({ name: 'parse', statement: '', text: 'SELECT salary FROM payroll', paramTypes: [] }),
      encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
      encodeFrontend({ name: 'sync' }),
    ]));
    await waitReady(base + 5);
    expect(rows(from)).toEqual([]);
    expect(raw.messages.slice(from).some((m) => m.name === 'error' && m.fields.some(([k, v]) => k === 'C' && v === '42501'))).toBe(true);
    raw.destroy();
  });
});

describe('a search_path that would shadow built-in functions is refused', () => {
  it('refuses SET and startup values that put a schema before pg_catalog; pg_catalog first or implicit is fine', async () => {
    // A function other.now() would run for now() under `other, pg_catalog`, and the classifier takes now() for the built-in.
    cluster.psql('SET ROLE app; CREATE FUNCTION other.now() RETURNS int LANGUAGE sql AS $$ SELECT 7 $$', 'app');
    const c = await connect();
    await expect(c.query('SET search_path = other, pg_catalog')).rejects.toMatchObject({ code: '42501' });
    await expect(c.query('SET search_path = "$user", pg_catalog, public')).rejects.toMatchObject({ code: '42501' });
    await c.query('SET search_path = pg_catalog, other');
    expect((await c.query('SELECT pg_typeof(now())::text AS t')).rows[0].t).toBe('timestamp with time zone');
    await c.end();
    const refused = new pg.Client({ ...gw.pgConfig(await gw.token()), options: '-c search_path=other,pg_catalog' });
    await expect(refused.connect()).rejects.toMatchObject({ message: expect.stringContaining('before pg_catalog') });
  });
});

describe('a block rule on hr.payroll cannot be dodged through search_path', () => {
  it('blocks payroll under the database default path (hr first), the case the gateway used to read as public.payroll', async () => {
    const c = await connect();
    expect(await payroll(c)).toBe('refused 42501');
    expect(await payroll(c, 'SELECT salary FROM hr.payroll')).toBe('refused 42501');
    await c.query('SET search_path = hr');
    expect(await payroll(c)).toBe('refused 42501');
    await c.end();
  });

  it('ROLLBACK, ROLLBACK TO SAVEPOINT and the end of SET LOCAL bring the path back, and so the block', async () => {
    const c = await connect();
    await c.query('BEGIN');
    await c.query('SET search_path = empty');
    await c.query('ROLLBACK');
    expect(await payroll(c)).toBe('refused 42501');

    await c.query('BEGIN');
    await c.query('SAVEPOINT s');
    await c.query('SET search_path = empty');
    await c.query('ROLLBACK TO SAVEPOINT s');
    expect(await payroll(c)).toBe('refused 42501');
    await c.query('COMMIT');

    await c.query('BEGIN');
    await c.query('SET LOCAL search_path = empty');
    await c.query('COMMIT');
    expect(await payroll(c)).toBe('refused 42501');

    // A failing statement rolls back the implicit transaction of its message, SET included.
    await expect(c.query('SET search_path = empty; SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    expect(await payroll(c)).toBe('refused 42501');

    // COMMIT of a failed transaction is a ROLLBACK.
    await c.query('BEGIN');
    await c.query('SET search_path = empty');
    await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await c.query('COMMIT');
    expect(await payroll(c)).toBe('refused 42501');
    await c.end();
  });

  it('a statement prepared under one path cannot run under another (PostgreSQL parses it again with the new path)', async () => {
    const c = await connect();
    await c.query('SET search_path = other, hr');
    // SQL-level PREPARE: other.payroll now, hr.payroll once EXECUTEd under `hr`.
    await c.query('PREPARE p AS SELECT salary FROM payroll');
    expect(await payroll(c, 'EXECUTE p')).toBe('read 1');
    // Extended protocol: a named statement, Parsed once, then only bound again by the driver.
    expect(await payroll(c, { name: 'q1', text: 'SELECT salary FROM payroll' } as unknown as string)).toBe('read 1');
    await c.query('SET search_path = hr');
    expect(await payroll(c, 'EXECUTE p')).toBe('refused 42501');
    expect(await payroll(c, { name: 'q1', text: 'SELECT salary FROM payroll' } as unknown as string)).toBe('refused 42501');
    await c.end();
  });

  it('keeps a SET that was committed, so a name under it resolves as the server does', async () => {
    const c = await connect();
    await c.query('BEGIN');
    await c.query('SET search_path = empty');
    await c.query('COMMIT');
    // empty has no payroll: the server fails the statement, no rule about hr.payroll is involved.
    expect(await payroll(c)).toMatch(/^refused 42P01/);
    await c.end();
  });

  it('follows the path across a built-in TABLESAMPLE method (not a function that could change it)', async () => {
    // Found by the write differential: the method (bernoulli, system) was listed among the called
    // functions, as an unknown one, so every later unqualified name was refused.
    const c = await connect();
    for (const sample of ['BERNOULLI (100)', 'SYSTEM (100) REPEATABLE (1)']) {
      expect((await c.query(`SELECT count(*)::int AS n FROM customers TABLESAMPLE ${sample}`)).rows[0]).toEqual({ n: 1 });
      expect(await email(c)).toBe('[REDACTED]');
    }
    // An extension's method is code the gateway does not know: refused as before.
    await expect(c.query('SELECT count(*) FROM customers TABLESAMPLE system_rows(1)')).rejects.toMatchObject({ code: '42501' });
    await c.end();
  });

  it('refuses what it cannot follow (a path set by code it cannot see) until the path is set again', async () => {
    const c = await connect();
    // Not even run: set_config inside a larger statement is an identity change (grant) the policy refuses.
    await expect(c.query("SELECT set_config('search_path', 'empty', false) FROM (VALUES (1)) v")).rejects.toMatchObject({ code: '42501' });
    expect(await payroll(c)).toBe('refused 42501');
    // A DO block may set search_path, and may read hr.payroll itself: code whose reads cannot be
    // known is decided as reading every table a rule's scope names (docs/masking.md), so the block
    // rule refuses it, and the path stays what the gateway knows.
    await expect(c.query("DO $$ BEGIN PERFORM set_config('search_path', 'other', false); END $$")).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('payroll is off limits') });
    await expect(c.query("DO $$ BEGIN RAISE NOTICE '%', (SELECT salary FROM hr.payroll LIMIT 1); END $$")).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('payroll is off limits') });
    expect(await payroll(c)).toBe('refused 42501');
    expect(await email(c)).toBe('[REDACTED]');
    expect((await c.query('SHOW search_path')).rows[0].search_path).not.toBe('other');
    await c.query('SET search_path = hr, public');
    await expect(c.query('SELECT salary FROM payroll')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('payroll is off limits') });
    await c.end();
  });
});

describe('temporary tables shadow the tables of the path', () => {
  it('a temp table named like the masked table is read in clear; dropped, the masked table is masked again', async () => {
    const c = await connect();
    await c.query('CREATE TEMP TABLE customers (id int, email text)');
    await c.query("INSERT INTO customers VALUES (1, 'temp@example.com')");
    expect(await email(c)).toBe('temp@example.com');
    expect(await email(c, 'SELECT email FROM public.customers')).toBe('[REDACTED]');
    const both = await c.query('SELECT t.email AS mine, p.email AS masked FROM customers t JOIN public.customers p USING (id)');
    expect(both.rows).toEqual([{ mine: 'temp@example.com', masked: '[REDACTED]' }]);
    await c.query('DROP TABLE customers');
    expect(await email(c)).toBe('[REDACTED]');
    await c.end();
  });

  it('a temp table that went away with its transaction (ROLLBACK, ON COMMIT DROP) no longer shadows anything', async () => {
    const c = await connect();
    await c.query('BEGIN');
    await c.query('CREATE TEMP TABLE customers (id int, email text)');
    await c.query('ROLLBACK');
    expect(await email(c)).toBe('[REDACTED]');
    await c.query('BEGIN');
    await c.query('CREATE TEMP TABLE customers (id int, email text) ON COMMIT DROP');
    await c.query('COMMIT');
    expect(await email(c)).toBe('[REDACTED]');
    await c.query('CREATE TEMP TABLE payroll (id int, salary int)');
    expect(await payroll(c)).toBe('read undefined');
    await c.query('DISCARD TEMP');
    expect(await payroll(c)).toBe('refused 42501');
    await c.end();
  });
});
