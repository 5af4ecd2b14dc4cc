// Which statements `commit` answers at once inside an open transaction block (durability.ts
// `staysInBlock`): plainly transactional ones only; anything whose effect does not wait for COMMIT,
// or that may end the block, keeps its hold.

import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier } from '../../stdlib/sql/index.ts';
import type { SqlAction } from '../../stdlib/facts.ts';
import { staysInBlock } from './durability.ts';

let classify: (text: string) => SqlAction;

beforeAll(async () => {
  const c = await loadSqlClassifier();
  classify = (text) => c.classify(text)[0]!;
});

describe('staysInBlock', () => {
  it.each([
    'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)',
    'DELETE FROM t WHERE id = 1',
    'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    'UPDATE t SET at = now(), name = lower($1)',
    "SELECT pg_catalog.lower('A')",
    'SET LOCAL statement_timeout = 1000',
  ])('%s: answered at once inside a block', (text) => {
    expect(staysInBlock(classify(text))).toBe(true);
  });

  it.each([
    'COMMIT',
    'END',
    'ROLLBACK',
    'SAVEPOINT a',
    'COMMIT AND CHAIN',
    "PREPARE TRANSACTION 'x'",
    "SELECT nextval('s')",
    "UPDATE t SET id = nextval('s')",
    'SELECT pg_advisory_lock(1)',
    "SELECT dblink_exec('c', 'DELETE FROM x')",
    'SELECT my_function()',
    'UPDATE t SET v = public.f(v)',
    'NOTIFY ch',
    'CALL p()',
    'DO $$ BEGIN END $$',
    'CREATE TABLE x (a int)',
    'TRUNCATE t',
    'COPY t FROM STDIN',
    'this is not sql',
  ])('%s: keeps its hold', (text) => {
    expect(staysInBlock(classify(text))).toBe(false);
  });
});
