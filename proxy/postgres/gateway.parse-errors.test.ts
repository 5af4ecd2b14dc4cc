// Statements PostgreSQL's grammar refuses (issue 14 item 18): the gateway does not forward them,
// audits the refusal, and answers with what the server itself would have said — the parser's
// message after "hoop:", SQLSTATE 42601 and the cursor position (P) — so a client sees the same
// error code and position as on a direct connection.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, READ_ONLY);
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

interface PgErrorSeen {
  code?: string;
  message: string;
  position?: string;
}

async function errorOf(config: pg.ClientConfig, text: string, values?: unknown[]): Promise<PgErrorSeen> {
  const c = new pg.Client(config);
  await c.connect();
  try {
    await (values ? c.query(text, values) : c.query(text));
    throw new Error(`expected ${JSON.stringify(text)} to fail`);
  } catch (e) {
    const err = e as PgErrorSeen;
    return { code: err.code, message: err.message, position: err.position };
  } finally {
    await c.end();
  }
}

const direct = (): pg.ClientConfig => ({ host: '127.0.0.1', port: cluster.port, user: cluster.appUser.user, password: cluster.appUser.password, database: cluster.appUser.database });

// Positions count characters, not bytes, and are relative to the whole message's text.
const TEXTS = [
  'SELEC 1',
  'SELECT 1; SELEC 2',
  "SELECT 'é€' AS a fro x",
  "SELECT '😀' AS a,, 1",
  'SELECT (1',
  '  \n  SELECT * FROM WHERE',
  "DELETE FROM t WHERE v = 'unterminated",
];

describe('statements that do not parse', () => {
  it.each(TEXTS)('simple query %j: the parser\'s message, 42601 and the position PostgreSQL reports', async (text) => {
    const want = await errorOf(direct(), text);
    const got = await errorOf(gw.pgConfig(token), text);
    expect(want.code).toBe('42601');
    expect(got.code).toBe('42601');
    expect(got.message).toBe(`hoop: ${want.message}`);
    expect(got.position).toBe(want.position);
  });

  it('extended protocol (Parse with parameters): the same', async () => {
    const text = 'SELECT $1::int FORM t';
    const want = await errorOf(direct(), text, [1]);
    const got = await errorOf(gw.pgConfig(token), text, [1]);
    expect(want.code).toBe('42601');
    expect(got).toEqual({ code: '42601', message: `hoop: ${want.message}`, position: want.position });
    expect(got.message).toContain('syntax error at or near');
  });

  it('is refused by the gateway, audited, and never forwarded', async () => {
    const n = gw.audit.records.length;
    const got = await errorOf(gw.pgConfig(token), 'SELEC 1');
    expect(got.message).toBe('hoop: syntax error at or near "SELEC"');
    const recs = gw.audit.records.slice(n);
    const decision = recs.find((r) => r.type === 'decision');
    expect(decision).toMatchObject({ verdict: 'block', outcome: 'blocked', statement: { kind: 'unknown' } });
    expect(recs.some((r) => r.type === 'statement_result')).toBe(false);
    // The session is usable afterwards.
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});
