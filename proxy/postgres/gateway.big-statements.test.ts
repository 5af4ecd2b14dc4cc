// One agent must not stall the others (issue 14, item 11): a statement longer than
// `limits.max_statement_size` is refused before it is buffered or parsed (54000, with a decision
// record), and the session carries on.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, ALLOW_ALL);
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const LIMIT = DEFAULT_LIMITS.maxStatementSize;

/** `SELECT 'xxx…' AS v` of exactly `bytes` bytes. */
function statementOf(bytes: number, marker: string): string {
  const head = `SELECT '${marker}`;
  const tail = `' AS v`;
  return head + 'x'.repeat(bytes - head.length - tail.length) + tail;
}

async function connect(): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(token));
  await c.connect();
  return c;
}

describe('max_statement_size', () => {
  it('defaults to 1 MiB', () => {
    expect(LIMIT).toBe(1024 * 1024);
  });

  it('a simple Query over the limit is refused with 54000 and audited; the session carries on', async () => {
    const c = await connect();
    try {
      const err = await c.query(statementOf(LIMIT + 1, 'over-simple')).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: '54000', message: `hoop: statement of ${LIMIT + 1} bytes exceeds max_statement_size ${LIMIT}` });
      const rec = gw.audit.records.find((r) => r.type === 'decision' && r.reason === `statement of ${LIMIT + 1} bytes exceeds max_statement_size ${LIMIT}`);
      expect(rec).toMatchObject({ verdict: 'block', outcome: 'blocked' });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // At the limit, it runs.
      const atLimit = await c.query(statementOf(LIMIT, 'at-limit'));
      expect((atLimit.rows[0] as { v: string }).v.length).toBe(LIMIT - `SELECT '' AS v`.length);
    } finally {
      await c.end();
    }
  });

  it('a statement longer than the message cap is refused from its header, not as a protocol violation', async () => {
    const c = await connect();
    try {
      const size = 70 * 1000 * 1000;
      const err = await c.query(statementOf(size, 'over-cap')).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: '54000', message: `hoop: statement of ${size} bytes exceeds max_statement_size ${LIMIT}` });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('a Parse over the limit is refused the same way and discards to Sync', async () => {
    const c = await connect();
    try {
      await c.query('BEGIN');
      const text = statementOf(LIMIT + 100, 'over-parse').replace(`' AS v`, `' || $1 AS v`);
      const size = Buffer.byteLength(text) + 4; // one declared parameter type
      const err = await c.query({ text, values: ['y'] }).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: '54000' });
      expect(err!.message).toMatch(/^hoop: statement of \d+ bytes exceeds max_statement_size 1048576$/);
      expect(Number(/of (\d+) bytes/.exec(err!.message)![1])).toBeGreaterThanOrEqual(size - 4);
      // The refusal failed the transaction, as the server's own error would have.
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      expect((await c.query({ text: 'SELECT $1::int AS n', values: [7] })).rows).toEqual([{ n: 7 }]);
    } finally {
      await c.end();
    }
  });
});
