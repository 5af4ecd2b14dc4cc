// Blocking: with a read-only policy, no write in an adversarial corpus changes a canary table,
// in either protocol; the session keeps working; a block inside a transaction leaves the client
// in the failed-transaction state PostgreSQL itself would give; every decision is audited before
// anything is forwarded, and a failed audit write means the statement does not run.

import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, READ_ONLY, run, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend, type FrontendMessage } from './wire/frontend.ts';

const POLICY = `${READ_ONLY}
rule no_truncate {
  match sql truncate
  block "TRUNCATE is never allowed here"
}
`;

let cluster: Cluster;
let gw: TestGateway;
let token: string;

const CANARY_DIGEST = "SELECT count(*) || ':' || md5(string_agg(c::text, ',' ORDER BY id)) FROM canary c";

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `CREATE TABLE canary (id int PRIMARY KEY, v text);
     INSERT INTO canary SELECT g, 'row ' || g FROM generate_series(1, 100) g;
     ALTER TABLE canary OWNER TO app;
     CREATE SEQUENCE canary_seq; ALTER SEQUENCE canary_seq OWNER TO app;`,
    'app',
  );
  gw = await startTestGateway(cluster, POLICY);
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

function psql(args: string[], input?: string): ReturnType<typeof run> {
  return run(join(cluster.binDir, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=0', ...args, gw.conninfo(token)], input !== undefined ? { input } : {});
}

/** A FunctionCall message (no arguments, text result) for the function with this OID. */
function functionCall(oid: number): Buffer {
  const call = Buffer.alloc(15);
  call.write('F', 0);
  call.writeInt32BE(14, 1);
  call.writeUInt32BE(oid, 5);
  call.writeInt16BE(0, 9); // argument formats
  call.writeInt16BE(0, 11); // arguments
  call.writeInt16BE(0, 13); // result format
  return call;
}

const WRITES = [
  'INSERT INTO canary VALUES (1000, \'x\')',
  "UPDATE canary SET v = 'pwned' WHERE id = 1",
  'UPDATE canary SET v = NULL',
  'DELETE FROM canary WHERE id < 50',
  'DELETE FROM canary',
  'dElEtE /* sneaky */ FROM public.canary',
  'TRUNCATE canary',
  'DROP TABLE canary',
  'ALTER TABLE canary ADD COLUMN pwned int',
  'WITH d AS (DELETE FROM canary RETURNING *) SELECT count(*) FROM d',
  'WITH u AS (UPDATE canary SET v = v || \'!\' RETURNING 1) SELECT 1',
  'SELECT 1; DELETE FROM canary',
  'DELETE FROM canary; SELECT 1',
  'EXPLAIN ANALYZE DELETE FROM canary',
  "DO $$ BEGIN DELETE FROM canary; END $$",
  'CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS $$ DELETE FROM canary $$',
  'SELECT * INTO canary_copy FROM canary',
  'CREATE TABLE canary_copy AS SELECT * FROM canary',
  'MERGE INTO canary c USING (SELECT 1 AS id) s ON c.id = s.id WHEN MATCHED THEN DELETE',
  'COPY canary FROM PROGRAM \'echo 1\'',
  "SET ROLE postgres",
  "SET SESSION AUTHORIZATION postgres",
  'GRANT ALL ON canary TO PUBLIC',
  'PREPARE w AS DELETE FROM canary',
  'EXECUTE w',
  'SELECT nextval(\'canary_seq\')',
  "SELECT setval('canary_seq', 99)",
  'LOCK TABLE canary IN ACCESS EXCLUSIVE MODE',
  'INSERT INTO canary SELECT g, \'x\' FROM generate_series(2000, 2010) g RETURNING *',
  'VACUUM FULL canary',
];

describe('a read-only policy', () => {
  it('every write in the corpus (simple protocol) leaves the canary unchanged and the session usable', async () => {
    const before = cluster.psql(CANARY_DIGEST, 'app');
    const script = WRITES.map((w) => `${w};\nSELECT 'alive' AS probe;\n`).join('');
    const r = await psql(['-At', '-f', '-'], script);
    const blocked = r.stderr.split('\n').filter((l) => l.includes('hoop: blocked')).length;
    expect(blocked).toBe(WRITES.length);
    expect(r.stdout.split('\n').filter((l) => l === 'alive').length).toBe(WRITES.length);
    expect(cluster.psql(CANARY_DIGEST, 'app')).toBe(before);
    expect(cluster.psql('SELECT is_called FROM canary_seq', 'app').trim()).toBe('f');
  });

  it('every write in the corpus (extended protocol) is refused with 42501 and the canary is unchanged', async () => {
    const before = cluster.psql(CANARY_DIGEST, 'app');
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      for (const w of WRITES.filter((x) => !x.includes(';'))) {
        // queryMode 'extended' forces Parse/Bind/Describe/Execute/Sync.
        const err = await c.query({ text: w, queryMode: 'extended' } as pg.QueryConfig).then(
          () => null,
          (e: { code?: string }) => e,
        );
        expect(err?.code ?? 'ran', w).toMatch(/^(42501|26000)$/);
        expect((await c.query({ text: 'SELECT $1::text AS alive', values: ['yes'] })).rows).toEqual([{ alive: 'yes' }]);
      }
      const byParam = await c.query('DELETE FROM canary WHERE id = $1', [1]).catch((e: { code: string; message: string }) => e);
      expect(byParam).toMatchObject({ code: '42501' });
      expect((byParam as { message: string }).message).toContain('read-only');
    } finally {
      await c.end();
    }
    expect(cluster.psql(CANARY_DIGEST, 'app')).toBe(before);
  });

  it('names the rule and its message', async () => {
    const r = await psql(['-c', 'TRUNCATE canary']);
    expect(r.stderr).toContain('ERROR:  hoop: blocked by t.no_truncate: TRUNCATE is never allowed here');
    expect(r.stderr).toContain('rule: t.no_truncate');
  });

  it('function calls are decided by the function they name: large-object writes are refused, the session goes on', async () => {
    const before = Number(cluster.psql('SELECT count(*) FROM pg_largeobject_metadata', 'app').trim());
    // psql's \\lo_import creates and writes a large object through FunctionCall messages (lo_creat, lowrite).
    const r = await psql(['-c', '\\lo_import /etc/hostname', '-c', 'SELECT 42 AS still_here']);
    expect(r.stderr).toContain('hoop: blocked');
    expect(r.stdout).toContain('42');
    expect(Number(cluster.psql('SELECT count(*) FROM pg_largeobject_metadata', 'app').trim())).toBe(before);
    // Audited as the function it names, with the rule that refused it.
    const refused = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized === 'SELECT pg_catalog.lo_creat($1)');
    expect(refused.at(-1)).toMatchObject({ verdict: 'block', outcome: 'blocked' });
  });

  it('a function call whose OID names no function is refused (fail closed)', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      const from = c.messages.length;
      c.send(functionCall(4_000_000_000));
      await c.until(() => c.messages.slice(from).some((m) => m.name === 'readyForQuery'));
      expect(c.error()).toMatchObject({ C: '42501', M: expect.stringContaining('no function has oid 4000000000') });
      c.query('SELECT 1');
      expect(await c.until((m) => m.name === 'commandComplete')).toBeDefined();
    } finally {
      c.destroy();
    }
  });

  it('after an extended-protocol block, a function call is ignored until Sync (as PostgreSQL does) and the session stays in step', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    /** Sends `bytes` and returns the messages up to the next ReadyForQuery. */
    const exchange = async (bytes: Buffer) => {
      const from = c.messages.length;
      c.send(bytes);
      await c.until(() => c.messages.slice(from).some((m) => m.name === 'readyForQuery'));
      return c.messages.slice(from);
    };
    const refusedParse = encodeFrontend({ name: 'parse', statement: '', text: 'DELETE FROM canary', paramTypes: [] });
    const sync = encodeFrontend({ name: 'sync' });
    try {
      // A call the policy allows (now() is a read), sent after a refused Parse and before Sync.
      const oid = Number(cluster.psql("SELECT 'pg_catalog.now'::regproc::oid", 'app').trim());
      const first = await exchange(Buffer.concat([refusedParse, functionCall(oid), sync]));
      expect(first.map((m) => m.name)).toEqual(['error', 'readyForQuery']);
      // In step: the next refusal is still the gateway's own, with the rule that made it.
      const second = await exchange(Buffer.concat([refusedParse, sync]));
      const err = second.find((m) => m.name === 'error');
      expect(err && err.name === 'error' ? Object.fromEntries(err.fields) : undefined).toMatchObject({ C: '42501', M: expect.stringContaining('hoop: blocked') });
      expect((await exchange(encodeFrontend({ name: 'query', text: 'SELECT 7' }))).map((m) => m.name)).toEqual(['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    } finally {
      c.destroy();
    }
  });

  it('a multi-statement message with one blocked statement runs none of them', async () => {
    const r = await psql(['-At', '-c', 'LISTEN side_effect; DELETE FROM canary WHERE id = 1', '-c', 'SELECT count(*) FROM pg_listening_channels()']);
    expect(r.stderr).toContain('hoop: blocked');
    expect(r.stdout.trim()).toBe('0');
  });

  it('a block inside a transaction leaves the client in the failed-transaction state (psql)', async () => {
    const r = await psql(['-f', '-'], "BEGIN;\nSELECT 1 AS first;\nDELETE FROM canary;\nSELECT 2 AS second;\nCOMMIT;\nSELECT 3 AS third;\n");
    expect(r.stderr).toContain('hoop: blocked');
    expect(r.stderr).toContain('current transaction is aborted, commands ignored until end of transaction block');
    expect(r.stdout).toContain('ROLLBACK');
    expect(r.stdout).not.toContain(' second');
    expect(r.stdout).toContain('third');
  });

  it('a block inside a transaction gives the same states as PostgreSQL (extended protocol)', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      await c.query('BEGIN');
      await expect(c.query('DELETE FROM canary WHERE id = $1', [1])).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('SELECT $1::int', [1])).rejects.toMatchObject({ code: '25P02' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      // Blocked again while already failed: still refused, still failed.
      await expect(c.query('DELETE FROM canary')).rejects.toMatchObject({ code: '42501' });
      await c.query('ROLLBACK');
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('EXECUTE of a SQL-level prepared statement is decided by the statement it names', async () => {
    const r = await psql(['-At', '-f', '-'], 'PREPARE r(int) AS SELECT v FROM canary WHERE id = $1;\nEXECUTE r(7);\nPREPARE w2 AS DELETE FROM canary;\nEXECUTE w2;\nDEALLOCATE r;\nEXECUTE r(7);\n');
    expect(r.stdout.split('\n')).toContain('row 7');
    // PREPARE w2, EXECUTE w2, and EXECUTE r after DEALLOCATE: a name the session does not hold is unknown (fail closed).
    expect(r.stderr.match(/hoop: blocked/g)?.length).toBe(3);
  });

  it('protocol-level Bind of a statement the gateway did not decide (SQL PREPARE shares the namespace) is refused', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    const batch = (...ms: FrontendMessage[]): void => c.send(Buffer.concat(ms.map(encodeFrontend)));
    c.messages.length = 0;
    try {
      c.query('PREPARE sqlp AS SELECT v FROM canary WHERE id = 1');
      await c.until((m) => m.name === 'readyForQuery');
      c.messages.length = 0;
      batch(
        { name: 'bind', portal: '', statement: 'sqlp', paramFormats: [], params: [], resultFormats: [] },
        { name: 'execute', portal: '', maxRows: 0 },
        { name: 'sync' },
      );
      await c.until((m) => m.name === 'readyForQuery');
      expect(c.error()).toMatchObject({ C: '42501' });
      expect(c.messages.some((m) => m.name === 'dataRow')).toBe(false);

      // A named statement survives a refused re-Parse of the same name, with its own decision.
      c.messages.length = 0;
      batch({ name: 'parse', statement: 's1', text: 'SELECT v FROM canary WHERE id = 2', paramTypes: [] }, { name: 'sync' });
      await c.until((m) => m.name === 'readyForQuery');
      c.messages.length = 0;
      batch({ name: 'parse', statement: 's1', text: 'DELETE FROM canary', paramTypes: [] }, { name: 'sync' });
      await c.until((m) => m.name === 'readyForQuery');
      expect(c.error()).toMatchObject({ C: '42501' });
      c.messages.length = 0;
      batch(
        { name: 'bind', portal: '', statement: 's1', paramFormats: [], params: [], resultFormats: [] },
        { name: 'execute', portal: '', maxRows: 0 },
        { name: 'sync' },
      );
      await c.until((m) => m.name === 'readyForQuery');
      expect(c.error()).toBeUndefined();
      const row = c.messages.find((m) => m.name === 'dataRow');
      expect(row?.name === 'dataRow' && row.values[0]?.toString()).toBe('row 2');
    } finally {
      c.destroy();
    }
  });

  it('pipelined messages keep their order around a block (simple and extended)', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    c.messages.length = 0;
    try {
      const seq = (...ms: FrontendMessage[]): Buffer => Buffer.concat(ms.map(encodeFrontend));
      const run = (text: string): Buffer =>
        seq(
          { name: 'parse', statement: '', text, paramTypes: [] },
          { name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] },
          { name: 'execute', portal: '', maxRows: 0 },
          { name: 'sync' },
        );
      c.send(
        Buffer.concat([
          seq({ name: 'query', text: "SELECT 'one'" }, { name: 'query', text: 'DELETE FROM canary' }, { name: 'query', text: "SELECT 'two'" }),
          run("SELECT 'three'"),
          run('DELETE FROM canary'),
          run("SELECT 'four'"),
        ]),
      );
      await c.until(() => c.messages.filter((x) => x.name === 'readyForQuery').length >= 6);
      const trace = c.messages
        .map((m) => (m.name === 'dataRow' ? m.values[0]!.toString() : m.name === 'error' ? `error ${Object.fromEntries(m.fields).C}` : m.name === 'readyForQuery' ? 'Z' : ''))
        .filter((x) => x !== '');
      expect(trace).toEqual(['one', 'Z', 'error 42501', 'Z', 'two', 'Z', 'three', 'Z', 'error 42501', 'Z', 'four', 'Z']);
    } finally {
      c.destroy();
    }
  });

  it('audits each decision with identity, statement and verdict', async () => {
    const n = gw.audit.records.length;
    await psql(['-c', 'DELETE FROM canary WHERE id = 3']);
    const rec = gw.audit.records.slice(n).find((r) => r.type === 'decision' && r.verdict === 'block');
    expect(rec).toMatchObject({
      identity: { sub: 'agent-7', groups: ['data-reader'] },
      resource: { kind: 'postgres', name: 'prod-main' },
      statement: { kind: 'delete' },
      outcome: 'blocked',
    });
    expect(rec?.statement?.fingerprint).toBeTruthy();

    const m = gw.audit.records.length;
    await psql(['-c', 'SELECT id FROM canary WHERE id <= 3']);
    await new Promise((r) => setTimeout(r, 100));
    const recs = gw.audit.records.slice(m);
    const decision = recs.findIndex((r) => r.type === 'decision' && r.verdict === 'allow');
    const result = recs.find((r) => r.type === 'statement_result');
    expect(decision).toBeGreaterThanOrEqual(0);
    expect(result).toMatchObject({ outcome: 'executed', rows: 3, statement: { kind: 'select' } });
    expect(result?.decision_seq).toBeGreaterThan(0);
  });
});

describe('audit before forward', () => {
  it('a statement whose audit write fails does not run', async () => {
    const open = await startTestGateway(cluster, ALLOW_ALL, {}, 'scratch');
    try {
      const t = await open.token();
      const psqlOpen = (sql: string) => run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', sql, open.conninfo(t)]);
      expect((await psqlOpen('CREATE TABLE IF NOT EXISTS audited (x int)')).code).toBe(0);
      const c = new pg.Client(open.pgConfig(t));
      await c.connect();
      try {
        open.audit.failing = true;
        await expect(c.query('INSERT INTO audited VALUES (1)')).rejects.toMatchObject({ code: '58000' });
        await expect(c.query('INSERT INTO audited VALUES ($1)', [2])).rejects.toMatchObject({ code: '58000' });
        open.audit.failing = false;
        expect((await c.query('SELECT count(*)::int AS n FROM audited')).rows).toEqual([{ n: 0 }]);
      } finally {
        await c.end();
      }
    } finally {
      await open.close();
    }
  });
});
