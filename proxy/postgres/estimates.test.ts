// Cost facts against a real PostgreSQL 15: what EXPLAIN says, that it never runs the statement, and
// that whatever cannot be planned safely has no estimate (so a rule reading one blocks).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../stdlib/sql/index.ts';
import type { Resource, SqlAction, SqlClassifier } from '../../stdlib/facts.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createEstimator, type Estimator } from './estimates.ts';

let cluster: Cluster;
let classifier: SqlClassifier;
let estimator: Estimator;
let t = 1_000_000;
const resource: Resource = { kind: 'postgres', name: 'app', labels: {} };
const one = (text: string): SqlAction => {
  const actions = classifier.classify(text);
  expect(actions).toHaveLength(1);
  return actions[0] as SqlAction;
};

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(`CREATE TABLE orders (id int PRIMARY KEY, status text);
    INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 50000) g;
    CREATE TABLE audit_trail (n int); CREATE SEQUENCE s;
    CREATE FUNCTION sneaky() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1';
    ANALYZE orders;`, 'postgres');
  classifier = await loadSqlClassifier();
  const u = new URL(cluster.url);
  estimator = createEstimator({ connectionFor: () => ({ host: u.hostname, port: Number(u.port), user: 'postgres', database: 'postgres' }), now: () => t, ttlMs: 10_000 });
});
afterAll(async () => {
  await estimator?.close();
  await cluster?.stop();
});

describe('cost facts from EXPLAIN', () => {
  it('an UPDATE: the rows its plan expects to touch, and the cost; the statement does not run', async () => {
    const all = await estimator.estimate(resource, one("UPDATE orders SET status = 'x' WHERE id > 0"));
    expect(all).toMatchObject({ rows: expect.any(Number), cost: expect.any(Number) });
    expect((all as { rows: number }).rows).toBeGreaterThan(40_000);
    const single = await estimator.estimate(resource, one("UPDATE orders SET status = 'x' WHERE id = 7"));
    expect(single).toMatchObject({ rows: 1 });
    const del = await estimator.estimate(resource, one('DELETE FROM orders WHERE id <= 25000'));
    expect((del as { rows: number }).rows).toBeGreaterThan(20_000);
    expect(cluster.psql(`SELECT count(*), count(*) FILTER (WHERE status = 'x') FROM orders`, 'postgres').trim()).toBe('50000|0');
  });

  it('a SELECT and a data-modifying CTE are planned, not run', async () => {
    expect(await estimator.estimate(resource, one('SELECT * FROM orders'))).toMatchObject({ rows: 50000 });
    const cte = await estimator.estimate(resource, one('WITH d AS (DELETE FROM orders RETURNING *) INSERT INTO audit_trail SELECT id FROM d'));
    expect(cte).toMatchObject({ rows: expect.any(Number) });
    expect(cluster.psql('SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM audit_trail)', 'postgres').trim()).toBe('50000|0');
  });

  it('no estimate for an unknown table, a kind EXPLAIN is not run for, or a statement calling a function', async () => {
    expect(await estimator.estimate(resource, one('UPDATE nope SET x = 1'))).toEqual({ error: expect.stringMatching(/EXPLAIN failed: relation "nope" does not exist/) });
    expect(await estimator.estimate(resource, one('DROP TABLE orders'))).toEqual({ error: 'EXPLAIN is not run for ddl statements' });
    expect(await estimator.estimate(resource, one('SELECT sneaky()'))).toEqual({ error: expect.stringMatching(/not run for call/) });
    expect(cluster.psql("SELECT count(*) FROM pg_class WHERE relname = 'orders'", 'postgres').trim()).toBe('1');
  });

  it('a volatile built-in (nextval, an update) is planned, never called', async () => {
    expect(await estimator.estimate(resource, one("SELECT nextval('s')"))).toMatchObject({ rows: 1 });
    expect(cluster.psql('SELECT is_called FROM s', 'postgres').trim()).toBe('f');
  });

  it('one statement only: text that smuggles a second one is an error and nothing runs', async () => {
    const action = { ...one('SELECT 1'), text: 'SELECT 1; DROP TABLE orders' } as SqlAction;
    expect(await estimator.estimate(resource, action)).toEqual({ error: expect.stringMatching(/cannot insert multiple commands/) });
    expect(cluster.psql("SELECT count(*) FROM pg_class WHERE relname = 'orders'", 'postgres').trim()).toBe('1');
  });

  it('under the session\'s search_path', async () => {
    cluster.psql('CREATE SCHEMA other; CREATE TABLE other.widgets (id int); INSERT INTO other.widgets SELECT generate_series(1, 10); ANALYZE other.widgets', 'postgres');
    expect(await estimator.estimate(resource, one('SELECT * FROM widgets'))).toEqual({ error: expect.stringMatching(/"widgets" does not exist/) });
    expect(await estimator.estimate(resource, one('SELECT * FROM widgets'), 'other, public')).toMatchObject({ rows: 10 });
  });

  it('answers are cached by text for the TTL, then asked again', async () => {
    cluster.psql('CREATE TABLE shortlived (id int)', 'postgres');
    const q = one('SELECT * FROM shortlived');
    expect(await estimator.estimate(resource, q)).toMatchObject({ rows: expect.any(Number) });
    cluster.psql('DROP TABLE shortlived', 'postgres');
    expect(await estimator.estimate(resource, q)).toMatchObject({ rows: expect.any(Number) });
    // Another constant is another text: asked anew (and the table is gone).
    expect(await estimator.estimate(resource, one('SELECT * FROM shortlived WHERE id = 2'))).toMatchObject({ error: expect.any(String) });
    t += 10_000;
    expect(await estimator.estimate(resource, q)).toMatchObject({ error: expect.stringMatching(/does not exist/) });
  });
});
