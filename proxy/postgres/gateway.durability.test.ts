// audit.durability `commit` in the PostgreSQL front door: the answer to a state-changing statement
// (CommandComplete, ErrorResponse) goes out only once the audit log says its record is on disk
// (`AuditSink.beforeAnswer`), while the statement itself runs upstream meanwhile; a read's answer
// never waits. The sink here is the real audit log, with its `beforeAnswer` promise held open by
// the test (the fsync "still running"), so the order is shown without timing anything. The fsync
// failure and kill -9 cases through a real `hoop gateway` process are in
// cli/commands/gateway.durability.test.ts.

import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;

/** Holds the answers the session asks about: each beforeAnswer waits until the test releases (or fails) it. */
interface Gate {
  /** Resolves at the first beforeAnswer call: an answer reached the session and is held. */
  held: Promise<'held'>;
  calls: number;
  release(): void;
  fail(err: Error): void;
}
let gate: Gate | undefined;

function closeGate(): Gate {
  let heldNow!: () => void;
  const waiting: { resolve(): void; reject(e: Error): void }[] = [];
  let opened: 'released' | Error | undefined;
  const g: Gate = {
    held: new Promise<'held'>((r) => (heldNow = () => r('held'))),
    calls: 0,
    release: () => ((opened = 'released'), waiting.splice(0).forEach((w) => w.resolve())),
    fail: (e) => ((opened = e), waiting.splice(0).forEach((w) => w.reject(e))),
  };
  (g as Gate & { wait: () => Promise<void> }).wait = () =>
    new Promise<void>((resolve, reject) => {
      g.calls++;
      heldNow();
      if (opened === 'released') resolve();
      else if (opened) reject(opened);
      else waiting.push({ resolve, reject });
    });
  gate = g;
  return g;
}

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE dur_t (v int PRIMARY KEY); GRANT ALL ON dur_t TO app', 'app');
  gw = await startTestGateway(cluster, ALLOW_ALL);
  token = await gw.token();
  const real = gw.audit.beforeAnswer.bind(gw.audit);
  gw.audit.beforeAnswer = (seq) => {
    const wait = real(seq);
    const g = gate as (Gate & { wait: () => Promise<void> }) | undefined;
    if (!g) return wait;
    // The record is "not on disk yet" until the test opens the gate; then the real promise counts.
    return g.wait().then(() => wait);
  };
});

beforeEach(() => {
  gate = undefined;
  cluster.psql('TRUNCATE dur_t', 'app');
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(token));
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const rows = () => cluster.psql('SELECT count(*) FROM dur_t', 'app').trim();

/** Runs `sql`, and shows whether its answer came before the gate opened. */
async function heldUntilDurable(c: pg.Client, sql: string, params?: unknown[]): Promise<{ first: string; answeredAfterRelease: boolean | undefined; error?: Error }> {
  const g = closeGate();
  let released = false;
  let answeredAfterRelease: boolean | undefined;
  let error: Error | undefined;
  const q = c.query(sql, params).then(
    () => void (answeredAfterRelease = released),
    (e: Error) => void ((answeredAfterRelease = released), (error = e)),
  );
  const first = await Promise.race([g.held, q.then(() => 'answered')]);
  released = true;
  g.release();
  await q;
  return { first, answeredAfterRelease, ...(error ? { error } : {}) };
}

describe('audit.durability commit: a state-changing statement is answered only once its record is durable', () => {
  it('simple protocol: the INSERT runs upstream while its answer waits', async () => {
    const c = await client();
    const g = closeGate();
    let released = false;
    let answeredAfterRelease: boolean | undefined;
    const q = c.query('INSERT INTO dur_t VALUES (1)').then((r) => ((answeredAfterRelease = released), r));
    expect(await Promise.race([g.held, q.then(() => 'answered')])).toBe('held');
    // Held at its CommandComplete: the statement has run.
    expect(rows()).toBe('1');
    released = true;
    g.release();
    expect((await q).rowCount).toBe(1);
    expect(answeredAfterRelease).toBe(true);
    await c.end();
  });

  it('extended protocol and a failing write: the ErrorResponse waits too', async () => {
    const c = await client();
    expect(await heldUntilDurable(c, 'INSERT INTO dur_t VALUES ($1)', [2])).toMatchObject({ first: 'held', answeredAfterRelease: true });
    const dup = await heldUntilDurable(c, 'INSERT INTO dur_t VALUES (2)');
    expect(dup).toMatchObject({ first: 'held', answeredAfterRelease: true, error: expect.objectContaining({ code: '23505' }) });
    await c.end();
  });

  it('a read is answered without waiting for its record to be synced', async () => {
    const c = await client();
    const g = closeGate();
    expect((await c.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
    expect((await c.query('SELECT count(*)::int AS n FROM dur_t WHERE v = $1', [1])).rows).toEqual([{ n: 0 }]);
    expect(g.calls).toBe(0);
    await c.end();
  });

  it('when the record cannot be made durable, the answer never goes out and the session ends with 58030', async () => {
    const c = await client();
    const g = closeGate();
    const ended = new Promise<void>((r) => c.once('end', () => r()));
    const q = c.query('INSERT INTO dur_t VALUES (3)').then(
      () => 'answered',
      (e: Error & { code?: string }) => e,
    );
    expect(await Promise.race([g.held, q])).toBe('held');
    g.fail(new Error('fsync failed (EIO)'));
    expect(await q).toMatchObject({ code: '58030', message: expect.stringContaining('could not be made durable') });
    await ended;
  });
});
