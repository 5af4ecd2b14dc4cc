// Differential check: the tables the classifier says a statement reads and writes are the tables
// a real PostgreSQL 15 plans to scan and modify (EXPLAIN (VERBOSE, FORMAT JSON): every plan node's
// "Schema"/"Relation Name"; ModifyTable nodes are the writes). Statements are chosen so the
// planner cannot prune a relation (no unused CTEs, no removable joins, no views).

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { loadSqlClassifier } from './index.ts';

const SCHEMA = `
  CREATE SCHEMA sales; CREATE SCHEMA "S";
  CREATE TABLE users (id int PRIMARY KEY, email text, name text, team text);
  CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric, created_at timestamptz);
  CREATE TABLE sales.orders (id int, customer_id int, total numeric);
  CREATE TABLE "MyTable" ("Id" int, v text);
  CREATE TABLE "S"."T" ("Col" int, b int, id int);
  CREATE TABLE abc (x int);
  CREATE TABLE t (id int, v int);
  CREATE TABLE u (id int, v int);
`;

const STATEMENTS = [
  'SELECT * FROM users',
  'select id from USERS where id = 1',
  'SELECT * FROM Public.Users',
  'SELECT * FROM "MyTable" WHERE "Id" > 0',
  'SELECT * FROM U&"\\0061bc"',
  'SELECT * FROM "S"."T"',
  'SELECT * FROM sales.orders o JOIN users u ON u.id = o.customer_id',
  'SELECT * FROM public.orders, sales.orders',
  'SELECT relname FROM pg_class',
  'SELECT * FROM pg_catalog.pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid',
  'SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)',
  'SELECT (SELECT count(*) FROM orders), name FROM users',
  'WITH x AS (SELECT * FROM orders) SELECT * FROM x JOIN users ON true',
  'WITH users AS (SELECT 1 AS id) SELECT * FROM users',
  'WITH t AS (SELECT * FROM t) SELECT * FROM t',
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r',
  'SELECT id FROM users UNION SELECT id FROM orders',
  'SELECT * FROM users LEFT JOIN LATERAL (SELECT * FROM orders WHERE orders.user_id = users.id LIMIT 1) o ON true',
  'SELECT count(*) FROM abc WHERE EXISTS (SELECT 1 FROM t WHERE t.id = abc.x)',
  'TABLE u',
  'SELECT 1',
  'VALUES (1), (2)',
  'INSERT INTO orders (id, user_id) VALUES (1, 2)',
  'INSERT INTO orders SELECT * FROM orders',
  'INSERT INTO t VALUES (1, 1) ON CONFLICT DO NOTHING',
  "UPDATE users SET email = 'x' WHERE id = 1",
  'UPDATE orders o SET total = 0 FROM users u WHERE u.id = o.user_id',
  'UPDATE "S"."T" SET "Col" = 1 WHERE id = 3',
  'DELETE FROM orders WHERE user_id IN (SELECT id FROM users)',
  'DELETE FROM t USING u WHERE t.id = u.id',
  'WITH d AS (DELETE FROM t RETURNING *) INSERT INTO u SELECT * FROM d',
  'WITH n AS (INSERT INTO abc VALUES (1) RETURNING x) SELECT * FROM n JOIN users ON users.id = n.x',
  'MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET v = u.v WHEN NOT MATCHED THEN INSERT VALUES (u.id, u.v)',
  'DELETE FROM sales.orders WHERE total < 0 RETURNING id',
];

interface Relations {
  all: string[];
  writes: string[];
}

function planRelations(plan: unknown, out = { all: new Set<string>(), writes: new Set<string>() }): typeof out {
  if (Array.isArray(plan)) for (const p of plan) planRelations(p, out);
  else if (plan && typeof plan === 'object') {
    const o = plan as Record<string, unknown>;
    if (typeof o['Relation Name'] === 'string') {
      const name = `${String(o.Schema)}.${o['Relation Name']}`;
      out.all.add(name);
      if (o['Node Type'] === 'ModifyTable') out.writes.add(name);
    }
    for (const v of Object.values(o)) planRelations(v, out);
  }
  return out;
}

const sorted = (s: Iterable<string>): string[] => [...new Set(s)].sort();

let cluster: Cluster;
let client: pg.Client;
let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;

beforeAll(async () => {
  [cluster, sql] = await Promise.all([startCluster(), loadSqlClassifier()]);
  client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  await client.query(SCHEMA);
}, 120_000);

afterAll(async () => {
  await client?.end();
  await cluster?.stop();
});

async function postgresSays(statement: string): Promise<Relations> {
  const res = await client.query(`EXPLAIN (VERBOSE, FORMAT JSON) ${statement}`);
  const found = planRelations(res.rows[0]['QUERY PLAN']);
  return { all: sorted(found.all), writes: sorted(found.writes) };
}

describe('reads and writes agree with PostgreSQL 15', () => {
  it.each(STATEMENTS)('%s', async (statement) => {
    const [action] = sql.classify(statement);
    const expected = await postgresSays(statement);
    expect({ all: sorted([...action!.reads, ...action!.writes]), writes: sorted(action!.writes) }).toEqual(expected);
  });
});
