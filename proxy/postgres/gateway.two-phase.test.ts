// Two-phase commit under a read-only policy (found by the write differential,
// conformance/write-differential.property.test.ts): on a server with max_prepared_transactions > 0,
// `PREPARE TRANSACTION` of a read-only transaction was decided as `transaction` and ran, leaving a
// prepared transaction that keeps its locks (an ALTER TABLE of a table it read waits for it) and
// holds back vacuum after the session ends; and `COMMIT PREPARED` / `ROLLBACK PREPARED` would end a transaction another session of the
// gateway's role prepared. They are `call` now: refused, and nothing is left behind.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;

beforeAll(async () => {
  cluster = await startCluster({ config: ['max_prepared_transactions = 4'] });
  cluster.psql(`SET ROLE app; CREATE TABLE t (id int); INSERT INTO t VALUES (1);`, 'app');
  gw = await startTestGateway(cluster, READ_ONLY);
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const prepared = (): string => cluster.psql('SELECT coalesce(string_agg(gid, \',\' ORDER BY gid), \'none\') FROM pg_prepared_xacts', 'app').trim();

describe('two-phase commit under a read-only policy', () => {
  it('refuses PREPARE TRANSACTION (no prepared transaction is left holding locks) and COMMIT/ROLLBACK PREPARED', async () => {
    const c = new pg.Client(gw.pgConfig(await gw.token()));
    await c.connect();
    try {
      await c.query('BEGIN');
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 1 }]);
      await expect(c.query("PREPARE TRANSACTION 'held'")).rejects.toMatchObject({ code: '42501' });
      await c.query('ROLLBACK');
      expect(prepared()).toBe('none');
      // A transaction prepared by someone else (directly, as the same role) is not this session's to end.
      cluster.psql("SET ROLE app; BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'theirs';", 'app');
      await expect(c.query("COMMIT PREPARED 'theirs'")).rejects.toMatchObject({ code: '42501' });
      await expect(c.query("ROLLBACK PREPARED 'theirs'")).rejects.toMatchObject({ code: '42501' });
      expect(prepared()).toBe('theirs');
      // The session carries on.
      expect((await c.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 1 }]);
    } finally {
      await c.end();
      cluster.psql("ROLLBACK PREPARED 'theirs'", 'app');
    }
  });
});
