// Transparency: with an allow-all policy, real clients (psql, pgbench, the pg driver) behave
// through the gateway exactly as they do against PostgreSQL directly.

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { encodeStartup } from './wire/startup.ts';
import { ALLOW_ALL, run, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;
let tmp: string;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, ALLOW_ALL);
  token = await gw.token();
  tmp = mkdtempSync(join(tmpdir(), 'hoop-tr-'));
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const directConninfo = (): string => `host=127.0.0.1 port=${cluster.port} dbname=app user=app password=${cluster.appUser.password} sslmode=disable`;

function psql(conninfo: string, args: string[], input?: string): ReturnType<typeof run> {
  return run(join(cluster.binDir, 'psql'), ['-X', '-v', 'VERBOSITY=default', ...args, conninfo], { cwd: tmp, ...(input !== undefined ? { input } : {}), env: { ...process.env, PGAPPNAME: 'hoop-test' } });
}

/** Runs the same psql invocation directly and through the gateway. */
async function both(args: string[], input?: string): Promise<[Awaited<ReturnType<typeof run>>, Awaited<ReturnType<typeof run>>]> {
  const direct = await psql(directConninfo(), args, input);
  const via = await psql(gw.conninfo(token), args, input);
  return [direct, via];
}

describe('psql through the gateway', () => {
  it('-c statements give the same output as direct', async () => {
    const args = ['-c', "SELECT 1 AS one, 'x'::text AS two, NULL AS three", '-c', 'SELECT current_user, current_database()', '-c', 'SHOW application_name'];
    const [direct, via] = await both(args);
    expect(via).toEqual(direct);
    expect(via.stdout).toContain('hoop-test');
  });

  it('-f with transactions, savepoints and an error inside a transaction', async () => {
    const script = `
CREATE TEMP TABLE tr_accounts (id int PRIMARY KEY, balance int);
BEGIN;
INSERT INTO tr_accounts VALUES (1, 100), (2, 50);
SAVEPOINT a;
UPDATE tr_accounts SET balance = balance - 500 WHERE id = 2;
ROLLBACK TO SAVEPOINT a;
COMMIT;
BEGIN;
INSERT INTO tr_accounts VALUES (3, 1);
SELECT 1/0;
SELECT 'after error';
COMMIT;
SELECT * FROM tr_accounts ORDER BY id;
`;
    writeFileSync(join(tmp, 'tx.sql'), script);
    const [direct, via] = await both(['-f', 'tx.sql']);
    expect(via).toEqual(direct);
    expect(via.stderr).toContain('division by zero');
    expect(via.stderr).toContain('current transaction is aborted');
    expect(via.stdout).toContain('ROLLBACK');
    expect(via.stdout).not.toMatch(/^\s+3 \|/m);
  });

  it('\\copy in both directions', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `${i}\tname ${i}\t${i % 7 === 0 ? '\\N' : `note "${i}"`}`).join('\n') + '\n';
    writeFileSync(join(tmp, 'in.tsv'), rows);
    const setup = await psql(gw.conninfo(token), ['-c', 'DROP TABLE IF EXISTS tr_copy', '-c', 'CREATE TABLE tr_copy (id int, name text, note text)']);
    expect(setup.code).toBe(0);
    const copyIn = await psql(gw.conninfo(token), ['-c', "\\copy tr_copy FROM 'in.tsv'"]);
    expect(copyIn).toMatchObject({ code: 0, stdout: 'COPY 5000\n' });
    const copyOut = await psql(gw.conninfo(token), ['-c', "\\copy (SELECT * FROM tr_copy ORDER BY id) TO 'out.tsv'"]);
    expect(copyOut).toMatchObject({ code: 0, stdout: 'COPY 5000\n' });
    expect(readFileSync(join(tmp, 'out.tsv'), 'utf8')).toBe(rows);
    // A COPY FROM STDIN the client aborts leaves the table as it was, and the session usable.
    const failed = await psql(gw.conninfo(token), ['-v', 'ON_ERROR_STOP=0', '-f', '-'], 'COPY tr_copy FROM STDIN;\n1\tonly two columns\n\\.\nSELECT count(*) FROM tr_copy;\n');
    expect(failed.stderr).toContain('missing data for column');
    expect(failed.stdout).toContain('5000');
  });

  it('\\lo_import and \\lo_export (large objects over the function-call protocol) round-trip a file', async () => {
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 256));
    writeFileSync(joinPath(tmp, 'lo-in.bin'), payload);
    const imported = await psql(gw.conninfo(token), ['-At', '-c', '\\lo_import lo-in.bin']);
    expect(imported.stderr).toBe('');
    const oid = /lo_import (\d+)/.exec(imported.stdout)?.[1];
    expect(oid).toBeDefined();
    const exported = await psql(gw.conninfo(token), ['-At', '-c', `\\lo_export ${oid} lo-out.bin`, '-c', `SELECT lo_unlink(${oid})`]);
    expect(exported.stderr).toBe('');
    expect(readFileSync(joinPath(tmp, 'lo-out.bin')).equals(payload)).toBe(true);
    // Each call was decided and audited as the function it names.
    const calls = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized.startsWith('SELECT pg_catalog.lo'));
    expect(calls.map((r) => r.statement!.normalized)).toEqual(expect.arrayContaining(['SELECT pg_catalog.lo_creat($1)', 'SELECT pg_catalog.lowrite($1, $2)', 'SELECT pg_catalog.loread($1, $2)']));
  });

  it('a 1,000,000-row result arrives complete', async () => {
    const args = ['-At', '-c', 'SELECT g, md5(g::text) FROM generate_series(1, 1000000) g'];
    const via = await psql(gw.conninfo(token), args);
    expect(via.code).toBe(0);
    const lines = via.stdout.split('\n');
    expect(lines.length).toBe(1_000_001);
    expect(lines[999_999]).toBe(`1000000|${createHash('md5').update('1000000').digest('hex')}`);
  });

  it('notices and errors are relayed with their fields', async () => {
    const sql = "DO $$ BEGIN RAISE NOTICE 'hello % from plpgsql', 42; END $$; SELECT * FROM no_such_table;";
    const [direct, via] = await both(['-c', sql]);
    expect(via).toEqual(direct);
    expect(via.stderr).toContain('NOTICE:  hello 42 from plpgsql');
    expect(via.stderr).toContain('relation "no_such_table" does not exist');
  });
});

describe('the pg driver through the gateway', () => {
  it('parameters, named prepared statements and binary results', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      const r = await c.query('SELECT $1::int + $2::int AS sum, $3::text AS t, $4::bytea AS b', [40, 2, 'héllo', Buffer.from([0, 1, 255])]);
      expect(r.rows).toEqual([{ sum: 42, t: 'héllo', b: Buffer.from([0, 1, 255]) }]);
      for (let i = 0; i < 3; i++) {
        const n = await c.query({ name: 'double', text: 'SELECT $1::int * 2 AS d', values: [i] });
        expect(n.rows).toEqual([{ d: i * 2 }]);
      }
      // Raw values: binary results must arrive exactly as PostgreSQL encoded them.
      const raw = { getTypeParser: (() => (v: unknown) => v) as never };
      const bin = await c.query({ text: 'SELECT $1::int4 AS i, 1.5::float8 AS f, true AS b', values: [123], binary: true, types: raw } as pg.QueryConfig);
      expect(bin.rows[0].i).toEqual(Buffer.from([0, 0, 0, 123]));
      expect(bin.rows[0].b).toEqual(Buffer.from([1]));
      // An error in the extended protocol, then the session goes on.
      await expect(c.query('SELECT $1::int', ['not a number'])).rejects.toThrow(/invalid input syntax/);
      expect((await c.query('SELECT 7 AS seven')).rows).toEqual([{ seven: 7 }]);
    } finally {
      await c.end();
    }
  });

  it('a pool of 20 runs concurrent queries', async () => {
    const pool = new pg.Pool({ ...gw.pgConfig(token), max: 20 });
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => pool.query('SELECT $1::int AS i, pg_backend_pid() AS pid', [i])),
      );
      expect(results.map((r) => r.rows[0].i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(new Set(results.map((r) => r.rows[0].pid)).size).toBeGreaterThan(1);
      expect(pool.totalCount).toBe(20);
    } finally {
      await pool.end();
    }
  });

  it('LISTEN/NOTIFY is relayed', async () => {
    const listener = new pg.Client(gw.pgConfig(token));
    const sender = new pg.Client(gw.pgConfig(token));
    await listener.connect();
    await sender.connect();
    try {
      await listener.query('LISTEN jobs');
      const got = new Promise<{ channel: string; payload?: string }>((resolve) => listener.on('notification', resolve));
      await sender.query("NOTIFY jobs, 'done 1'");
      expect(await got).toMatchObject({ channel: 'jobs', payload: 'done 1' });
    } finally {
      await listener.end();
      await sender.end();
    }
  });

  it('CancelRequest with the gateway-made key cancels the right upstream query', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    const bystander = new pg.Client(gw.pgConfig(token));
    await c.connect();
    await bystander.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      // Its outcome is taken at once: the server may cancel it before the cancel connection closes.
      const slow = c.query('SELECT pg_sleep(30)').then(
        () => undefined,
        (e: unknown) => e,
      );
      const other = bystander.query('SELECT pg_sleep(1), 1 AS ok');
      await new Promise((r) => setTimeout(r, 300));
      const pids = cluster.psql("SELECT pid FROM pg_stat_activity WHERE usename = 'app'");
      expect(pids.trim().split('\n')).not.toContain(String(key.processID));
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: gw.gateway.postgresPort }, () => s.end(encodeStartup({ name: 'cancelRequest', pid: key.processID, secret: key.secretKey })));
        s.on('close', () => resolve());
      });
      const started = Date.now();
      expect(String(await slow)).toMatch(/canceling statement due to user request/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await other).rows[0].ok).toBe(1);
      expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    } finally {
      await c.end();
      await bystander.end();
    }
  });
});

describe('upstream authentication methods', () => {
  it.each([
    ['md5', 'md5user'],
    ['password', 'pwuser'],
    ['scram-sha-256', 'app'],
  ])('the gateway authenticates upstream with %s', async (method, user) => {
    if (user !== 'app') {
      cluster.psql(`SET password_encryption = '${method === 'md5' ? 'md5' : 'scram-sha-256'}'; CREATE ROLE ${user} LOGIN PASSWORD 'pw-${user}'; GRANT CONNECT ON DATABASE app TO ${user}`);
      const hba = joinPath(cluster.dataDir, 'pg_hba.conf');
      writeFileSync(hba, `host all ${user} 127.0.0.1/32 ${method}\n` + readFileSync(hba, 'utf8'));
      cluster.psql('SELECT pg_reload_conf()');
    }
    const via = await startTestGateway(cluster, ALLOW_ALL, {}, `auth-${method}`, (c) => {
      c.resources[0]!.user = user;
      c.resources[0]!.password = user === 'app' ? cluster.appUser.password : `pw-${user}`;
    });
    try {
      const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', 'SELECT current_user', via.conninfo(await via.token())]);
      expect(r).toMatchObject({ code: 0, stdout: `${user}\n` });
      const auth = cluster.psql(`SELECT count(*) FROM pg_hba_file_rules WHERE '${user}' = ANY(user_name) AND auth_method = '${method}'`);
      if (user !== 'app') expect(auth.trim()).toBe('1');
    } finally {
      await via.close();
    }
  });

  it('a wrong upstream password is a clear refusal, not a hang', async () => {
    const via = await startTestGateway(cluster, ALLOW_ALL, {}, 'badpw', (c) => {
      c.resources[0]!.password = 'wrong';
    });
    try {
      const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', 'SELECT 1', via.conninfo(await via.token())]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('resource "badpw" is unavailable');
      expect(r.stderr).not.toContain('wrong');
    } finally {
      await via.close();
    }
  });
});

describe('pgbench through the gateway', () => {
  const pgbench = (): string => join(cluster.binDir, 'pgbench');
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' });
  const common = (): string[] => ['-h', '127.0.0.1', '-p', String(gw.gateway.postgresPort), '-U', 'agent-7', gw.resourceName];

  beforeAll(async () => {
    const init = await run(pgbench(), ['-i', '-s', '1', '-q', ...common()], { env: env() });
    expect(init.stderr).toContain('done');
    expect(init.code).toBe(0);
  }, 120_000);

  it.each([
    ['simple', '-S'],
    ['extended', '-S'],
    ['prepared', '-S'],
    ['simple', 'tpcb-like'],
    ['extended', 'tpcb-like'],
    ['prepared', 'tpcb-like'],
  ])('-M %s %s: zero errors', async (mode, script) => {
    const args = ['-M', mode, '-c', '4', '-j', '2', '-T', '2', ...(script === '-S' ? ['-S'] : ['-b', 'tpcb-like']), ...common()];
    const r = await run(pgbench(), args, { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/number of failed transactions: 0 /);
    const done = /number of transactions actually processed: (\d+)/.exec(r.stdout);
    // Throughput is the bench's business (bench/gateway.bench.ts); here: transactions ran, none failed.
    expect(Number(done?.[1])).toBeGreaterThan(0);
  });
});
