// A refused statement that does not parse carries the HINT or DETAIL PostgreSQL's parser adds to
// that error (issue 14 item 18: "the parser's own message"), as on a direct connection. Found by
// `npm run conformance:pg-regress`: the strings, errors, rowsecurity and publication files of the
// regression suite differed only by the missing HINT/DETAIL.

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

interface Seen {
  code?: string;
  message: string;
  hint?: string;
  detail?: string;
}

async function errorOf(config: pg.ClientConfig, text: string, extended: boolean): Promise<Seen> {
  const c = new pg.Client(config);
  await c.connect();
  try {
    // A query with a parameter list goes through Parse/Bind/Execute.
    await (extended ? c.query({ text, values: [] }) : c.query(text));
    throw new Error(`expected ${JSON.stringify(text)} to fail`);
  } catch (e) {
    const err = e as Seen;
    return { code: err.code, message: err.message, hint: err.hint, detail: err.detail };
  } finally {
    await c.end();
  }
}

const direct = (): pg.ClientConfig => ({ host: '127.0.0.1', port: cluster.port, user: cluster.appUser.user, password: cluster.appUser.password, database: cluster.appUser.database });

const TEXTS = [
  "SELECT U&'wrong: \\061'",
  "SELECT E'wrong: \\u061'",
  'SELECT U&"d\\0xyz"',
  'DROP OPERATOR + (int4)',
  'CREATE POLICY p ON t AS foo',
  'SELECT 1 LIMIT 1,2',
  'CREATE PUBLICATION p FOR t',
  "CREATE USER u UNENCRYPTED PASSWORD 'x'",
];

describe('parser errors with a HINT or DETAIL', () => {
  for (const extended of [false, true]) {
    it.each(TEXTS)(`${extended ? 'extended' : 'simple'} protocol %j: the server's HINT and DETAIL, then the gateway's note`, async (text) => {
      const want = await errorOf(direct(), text, extended);
      const got = await errorOf(gw.pgConfig(token), text, extended);
      expect(want.hint ?? want.detail).toBeTruthy();
      expect(got.code).toBe(want.code);
      expect(got.message).toBe(`hoop: ${want.message}`);
      expect(got.hint).toBe(want.hint);
      const note = /^not forwarded: blocked/;
      if (want.detail) {
        const [first, second] = (got.detail ?? '').split('\n');
        expect(first).toBe(want.detail);
        expect(second).toMatch(note);
      } else expect(got.detail).toMatch(note);
    });
  }

  it('a plain syntax error still has no HINT', async () => {
    const got = await errorOf(gw.pgConfig(token), 'SELEC 1', false);
    expect(got.hint).toBeUndefined();
    expect(got.detail).toMatch(/^not forwarded: blocked/);
  });
});
