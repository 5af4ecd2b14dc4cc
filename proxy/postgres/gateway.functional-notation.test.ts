// Functional notation (issue 14 item 2): PostgreSQL runs `(expr).f` as `f(expr)` when expr is not
// a composite value with a field f, so `SELECT ('s'::regclass).nextval` advances a sequence and
// `SELECT (pid).pg_terminate_backend` ends another session. Under a read-only policy these are
// refused like the calls they are, while a field of a ROW(...) or of a composite column, and a cast
// written in functional notation, still run.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let client: pg.Client;
/** A session of the same role straight to PostgreSQL: the target of pg_terminate_backend. */
let victim: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `CREATE SEQUENCE counter_seq; ALTER SEQUENCE counter_seq OWNER TO app;
     CREATE TYPE address AS (city text, zip text);
     CREATE TABLE people (id int PRIMARY KEY, home address);
     INSERT INTO people VALUES (1, ROW('Lyon', '69001'));
     ALTER TABLE people OWNER TO app;`,
    'app',
  );
  gw = await startTestGateway(cluster, READ_ONLY);
  client = new pg.Client(gw.pgConfig(await gw.token()));
  await client.connect();
  victim = new pg.Client(cluster.appUser.url);
  await victim.connect();
});

afterAll(async () => {
  await client?.end();
  await victim?.end();
  await gw?.close();
  await cluster?.stop();
});

async function refusal(text: string): Promise<string> {
  return client.query(text).then(
    () => 'ran',
    (e: { code?: string }) => e.code ?? 'no code',
  );
}

describe('a read-only policy and functional notation', () => {
  it('refuses a sequence advanced as (regclass).nextval, and audits it as the update it is', async () => {
    expect(await refusal("SELECT ('counter_seq'::regclass).nextval")).toBe('42501');
    expect(cluster.psql('SELECT is_called FROM counter_seq', 'app').trim()).toBe('f');
    const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized.includes(').nextval')).at(-1);
    expect(rec).toMatchObject({ verdict: 'block', outcome: 'blocked', statement: { kind: 'update' } });
  });

  it('refuses advisory locks, large-object creation and ending another session in that notation', async () => {
    const objects = cluster.psql('SELECT count(*) FROM pg_largeobject_metadata', 'app').trim();
    const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    expect(await refusal('SELECT (1).pg_advisory_lock')).toBe('42501');
    expect(await refusal('SELECT (-1).lo_creat')).toBe('42501');
    expect(await refusal(`SELECT (${pid}).pg_terminate_backend`)).toBe('42501');
    expect(await refusal(`SELECT (a.pid).pg_terminate_backend FROM pg_stat_activity a WHERE a.pid = ${pid}`)).toBe('42501');
    expect(cluster.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", 'app').trim()).toBe('0');
    expect(cluster.psql('SELECT count(*) FROM pg_largeobject_metadata', 'app').trim()).toBe(objects);
    expect((await victim.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
  });

  it('still runs field selection on a ROW or a composite column, and casts in functional notation', async () => {
    expect((await client.query('SELECT (row(1, 2)).f1 AS f1')).rows).toEqual([{ f1: 1 }]);
    expect((await client.query('SELECT (p.home).city AS city FROM people p')).rows).toEqual([{ city: 'Lyon' }]);
    expect((await client.query("SELECT ('42').int4 AS n, (id).text AS t FROM people")).rows).toEqual([{ n: 42, t: '1' }]);
  });
});
