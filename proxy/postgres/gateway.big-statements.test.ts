// One agent must not stall the others (issue 14, item 11): a statement longer than
// `limits.max_statement_size` is refused before it is buffered or parsed (54000, with a decision
// record), and the session carries on; a long statement within the limit is classified off the
// event loop, so other sessions are answered meanwhile (shown by order, not by time: the issue's
// p99 <= 50 ms target is a figure for the bench, not a test), and a classification that cannot finish
// is a refusal.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openDevIssuer } from '../identity/index.ts';
import { RawClient } from './raw-client.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { ALLOW_ALL, READ_ONLY, run, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
/** max_statement_size raised to 16 MiB, for the 10 MB statement. */
let bigGw: TestGateway;
/** Every classification in the pool times out. */
let slowGw: TestGateway;
/** Read-only policy. */
let roGw: TestGateway;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, ALLOW_ALL);
  bigGw = await startTestGateway(cluster, ALLOW_ALL, {}, 'prod-main', (c) => {
    c.limits = { ...DEFAULT_LIMITS, maxStatementSize: 16 * 1024 * 1024, classificationTimeoutMs: 120_000 };
  });
  slowGw = await startTestGateway(cluster, ALLOW_ALL, {}, 'prod-main', (c) => {
    c.limits = { ...DEFAULT_LIMITS, classificationTimeoutMs: 1 };
  });
  roGw = await startTestGateway(cluster, READ_ONLY);
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await bigGw?.close();
  await slowGw?.close();
  await roGw?.close();
  await cluster?.stop();
});

const LIMIT = DEFAULT_LIMITS.maxStatementSize;

/** `SELECT 'xxx…' AS v` of exactly `bytes` bytes. */
function statementOf(bytes: number, marker: string): string {
  const head = `SELECT '${marker}`;
  const tail = `' AS v`;
  return head + 'x'.repeat(bytes - head.length - tail.length) + tail;
}

async function connect(via: TestGateway = gw): Promise<pg.Client> {
  const c = new pg.Client(via.pgConfig(via === gw ? token : await via.token()));
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

describe('long statements are classified off the event loop', () => {
  it("while a 10 MB statement is classified, other sessions' statements are answered; the gateway holds the statement once, not a multiple", async () => {
    const others = await Promise.all([0, 1].map(() => connect(bigGw)));
    try {
      for (const c of others) await c.query('SELECT 1');
      // 10 MB: a thousand 10 kB literals in a VALUES list.
      const literal = `'${'v'.repeat(10_000)}'`;
      const big = `SELECT count(*)::int AS n, sum(length(v))::int AS total FROM (VALUES ${Array.from({ length: 1000 }, () => `(${literal})`).join(', ')}) AS t(v)`;
      expect(big.length).toBeGreaterThan(10_000_000);
      // Another agent: psql in its own process, so that building and sending the statement is not
      // this process's work.
      const file = join(bigGw.stateDir, 'big.sql');
      writeFileSync(file, big);
      const conninfo = bigGw.conninfo(await bigGw.token());
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
      let finished = false;
      const result = run(join(cluster.binDir, 'psql'), ['-X', '-At', '-f', file, conninfo]).finally(() => (finished = true));
      // Order, not time: a round trip on another session that starts and ends while the long
      // statement's classification is in flight shows the event loop was not held by it. Classified
      // inline (the behaviour this replaces: every session stalled for seconds), nothing is ever in
      // flight and this loop ends with psql's answer instead.
      let servedDuring = 0;
      while (!finished && servedDuring < 3) {
        const before = bigGw.gateway.classificationsInFlight;
        const answers = await Promise.all(others.map((c) => c.query('SELECT 1 AS one')));
        for (const a of answers) expect(a.rows).toEqual([{ one: 1 }]);
        if (before > 0 && bigGw.gateway.classificationsInFlight > 0) servedDuring += others.length;
        else await new Promise((r) => setImmediate(r));
      }
      clearInterval(sampler);
      expect(await result).toMatchObject({ code: 0, stdout: '1000|10000000\n', stderr: '' });
      expect(servedDuring, 'statements answered on other sessions while the 10 MB statement was classified').toBeGreaterThanOrEqual(2);
      expect(bigGw.gateway.classificationsInFlight).toBe(0);
      // Memory: the gateway held the statement, not a multiple of it (the issue saw +1.2 GB for 6 MiB).
      expect(rssPeak - rssBefore, `rss +${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB at peak`).toBeLessThan(512 * 2 ** 20);
    } finally {
      await Promise.all(others.map((c) => c.end()));
    }
  });

  it('a long statement classified in the pool changes the session as inline: PREPARE then EXECUTE under a read-only policy', async () => {
    const c = await connect(roGw);
    try {
      const pad = 'q'.repeat(40 * 1024);
      await c.query(`PREPARE long_read AS SELECT length('${pad}') AS n`);
      expect((await c.query('EXECUTE long_read')).rows).toEqual([{ n: pad.length }]);
      // And the facts are the same: a long write is still a write.
      const err = await c.query(`DELETE FROM pg_temp.nothing WHERE '${pad}' = ''`).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: '42501', message: 'hoop: blocked: this resource is read-only' });
    } finally {
      await c.end();
    }
  });

  it('a classification that does not finish in time is refused, audited, and the session carries on', async () => {
    const c = await connect(slowGw);
    try {
      const long = `SELECT 1 WHERE 1 IN (${Array.from({ length: 5000 }, (_, i) => i).join(',')})`;
      const err = await c.query(long).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: '42501', message: 'hoop: blocked: the gateway could not classify this statement: classification took longer than 0.001s' });
      const rec = slowGw.audit.records.find((r) => r.type === 'decision' && r.verdict === 'block' && r.reason?.includes('classification took longer'));
      expect(rec).toMatchObject({ outcome: 'blocked' });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('shutdown during a long classification', () => {
  it('the gateway process exits 0 on SIGTERM while it classifies a long statement, which is never decided', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-big-'));
    try {
      const issuer = await openDevIssuer(dir);
      mkdirSync(join(dir, 'policies'));
      writeFileSync(join(dir, 'policies', 'main.hoop'), ALLOW_ALL);
      const port = await freePort();
      writeFileSync(
        join(dir, 'hoop.yaml'),
        `listen:
  postgres: 127.0.0.1:${port}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
resources:
  - name: prod-main
    kind: postgres
    upstream: postgres://127.0.0.1:${cluster.port}/app
    user_env: TEST_PG_USER
    password_env: TEST_PG_PASSWORD
policy: ./policies
state: ./state
limits:
  max_statement_size: 16MiB
  classification_timeout: 10m
`,
      );
      let stderr = '';
      const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), 'gateway', '--config', join(dir, 'hoop.yaml')], {
        env: { ...process.env, TEST_PG_USER: cluster.appUser.user, TEST_PG_PASSWORD: cluster.appUser.password },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await new Promise<void>((resolve, reject) => {
        const check = (): void => (stderr.includes('postgres on') ? resolve() : undefined);
        child.stderr!.on('data', check);
        void exited.then(() => reject(new Error(`the gateway exited: ${stderr}`)));
      });
      const tok = await issuer.mint({ sub: 'agent-7', groups: ['data-reader'] });
      const c = await RawClient.login(port, tok, 'prod-main');
      const other = new pg.Client({ host: '127.0.0.1', port, user: 'agent-7', password: tok, database: 'prod-main' });
      await other.connect();
      other.on('error', () => undefined);
      // Minutes of classification: a dense list of several MB.
      const marker = 'hoop_sigterm_marker';
      const text = `SELECT 1 AS ${marker} WHERE 1 IN (${Array.from({ length: 800_000 }, (_, i) => i).join(',')})`;
      await new Promise<void>((r) => c.socket.write(Buffer.concat([Buffer.from([0x51]), int32(Buffer.byteLength(text) + 5), Buffer.from(text), Buffer.from([0])]), () => r()));
      // Another session is answered meanwhile: the event loop is free (and, by the time the
      // upstream's answer is read, the long statement has been too).
      expect((await other.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await c.waitClosed()).toBe(true);
      const audit = readFileSync(join(dir, 'state', 'audit.jsonl'), 'utf8');
      expect(audit).toContain('"session_start"');
      expect(audit).not.toContain(marker);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
