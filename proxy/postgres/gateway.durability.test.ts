// audit.durability `commit` in the PostgreSQL front door: the answer to a state-changing statement
// (CommandComplete, ErrorResponse) goes out only once the audit log says its record is on disk
// (`AuditSink.beforeAnswer`), while the statement itself runs upstream meanwhile; a read's answer
// never waits. The sink here is the real audit log, with its `beforeAnswer` promise held open by
// the test (the fsync "still running"), so the order is shown without timing anything. The fsync
// failure and kill -9 cases through a real `hoop gateway` process are in
// cli/commands/gateway.durability.test.ts.

import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from './raw-client.ts';
import type { BackendMessage } from './wire/backend.ts';
import { encodeFrontend } from './wire/frontend.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;

/** Holds the answers the session asks about: each beforeAnswer waits until the test releases (or fails) it. */
interface Gate {
  /** Resolves at the first beforeAnswer call: an answer reached the session and is held. */
  held: Promise<'held'>;
  calls: number;
  /** The record sequence numbers the held answers waited for. */
  asked: number[];
  release(): void;
  fail(err: Error): void;
}
let gate: Gate | undefined;
const recorded: { text: string; seq: number }[] = [];

/** The sequence number of the last decision record written for a statement whose normalised text contains `text`. */
function seqOf(text: string): number {
  const r = recorded.filter((x) => x.text.includes(text)).pop();
  if (!r) throw new Error(`no decision record for ${text}`);
  return r.seq;
}

function closeGate(): Gate {
  let heldNow!: () => void;
  const waiting: { resolve(): void; reject(e: Error): void }[] = [];
  let opened: 'released' | Error | undefined;
  const g: Gate = {
    held: new Promise<'held'>((r) => (heldNow = () => r('held'))),
    calls: 0,
    asked: [],
    release: () => ((opened = 'released'), waiting.splice(0).forEach((w) => w.resolve())),
    fail: (e) => ((opened = e), waiting.splice(0).forEach((w) => w.reject(e))),
  };
  (g as Gate & { wait: (seq: number) => Promise<void> }).wait = (seq) =>
    new Promise<void>((resolve, reject) => {
      g.calls++;
      g.asked.push(seq);
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
  cluster.psql('CREATE TABLE dur_t (v int PRIMARY KEY); GRANT ALL ON dur_t TO app; CREATE SEQUENCE dur_s; GRANT ALL ON dur_s TO app', 'app');
  gw = await startTestGateway(cluster, ALLOW_ALL);
  token = await gw.token();
  const real = gw.audit.beforeAnswer.bind(gw.audit);
  gw.audit.beforeAnswer = (seq) => {
    const wait = real(seq);
    const g = gate as (Gate & { wait: (seq: number) => Promise<void> }) | undefined;
    if (!g) return wait;
    // The record is "not on disk yet" until the test opens the gate; then the real promise counts.
    return g.wait(seq).then(() => wait);
  };
  // The sequence number of each statement's decision record, by its normalised text.
  const forward = gw.audit.beforeForward.bind(gw.audit);
  gw.audit.beforeForward = (r, o) => {
    const p = forward(r, o);
    if (r.type === 'decision' && r.statement) void p.then((seq) => recorded.push({ text: r.statement!.normalized, seq }), () => undefined);
    return p;
  };
});

beforeEach(() => {
  gate = undefined;
  // A test that failed with its client's transaction open must not leave the next one waiting for its lock.
  cluster.psql("SET lock_timeout = '10s'; TRUNCATE dur_t", 'app');
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

/** Clients a test left connected (it failed midway): ended after it, so their transactions end. */
const open = new Set<pg.Client>();
afterEach(async () => {
  gate?.release();
  await Promise.all([...open].map((c) => c.end().catch(() => undefined)));
  open.clear();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(token));
  open.add(c);
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

/** The query's result, answered while the gate is closed; if its answer is held instead, the gate opens and the test fails. */
async function answeredWhileClosed<R>(g: Gate, q: Promise<R>): Promise<R | 'held'> {
  const first = await Promise.race([g.held, q]);
  if (first === 'held') {
    g.release();
    await q;
  }
  return first;
}

describe('audit.durability commit inside a transaction block: only the answer that may end the block waits', () => {
  it('simple protocol: an UPDATE in BEGIN is answered while no record is durable; COMMIT waits for the UPDATE\'s record', async () => {
    cluster.psql('INSERT INTO dur_t VALUES (10)', 'app');
    const c = await client();
    await c.query('BEGIN');
    const g = closeGate();
    // Answered with the gate closed, and without asking whether anything is durable.
    expect(await answeredWhileClosed(g, c.query('UPDATE dur_t SET v = 11 WHERE v = 10 /* in_block */'))).toMatchObject({ rowCount: 1 });
    expect(g.calls).toBe(0);
    let released = false;
    const commit = c.query('COMMIT').then(() => released);
    expect(await Promise.race([g.held, commit.then(() => 'answered')])).toBe('held');
    // COMMIT ran upstream (the row is committed) but its answer waits for the UPDATE's record.
    expect(cluster.psql('SELECT v FROM dur_t', 'app').trim()).toBe('11');
    expect(Math.max(...g.asked)).toBeGreaterThanOrEqual(seqOf('in_block'));
    released = true;
    g.release();
    expect(await commit).toBe(true);
    // Outside the block again: an UPDATE's answer waits for its own record, as before.
    expect(await heldUntilDurable(c, 'UPDATE dur_t SET v = 12 WHERE v = 11 /* autocommit */')).toMatchObject({ first: 'held', answeredAfterRelease: true });
    expect(gate!.asked).toContain(seqOf('autocommit'));
    await c.end();
  });

  it('extended protocol: a parameterised UPDATE in BEGIN is not held; END is', async () => {
    cluster.psql('INSERT INTO dur_t VALUES (20)', 'app');
    const c = await client();
    await c.query('BEGIN');
    const g = closeGate();
    expect(await answeredWhileClosed(g, c.query('UPDATE dur_t SET v = $1 WHERE v = $2 /* ext_in_block */', [21, 20]))).toMatchObject({ rowCount: 1 });
    expect(await answeredWhileClosed(g, c.query('SELECT v FROM dur_t WHERE v = $1', [21]))).toMatchObject({ rows: [{ v: 21 }] });
    expect(g.calls).toBe(0);
    expect(await heldUntilDurable(c, 'END')).toMatchObject({ first: 'held', answeredAfterRelease: true });
    expect(Math.max(...gate!.asked)).toBeGreaterThanOrEqual(seqOf('ext_in_block'));
    await c.end();
  });

  it('a pipeline in a block: the UPDATE\'s CommandComplete arrives while COMMIT\'s waits; ReadyForQuery shows the block ended', async () => {
    cluster.psql('INSERT INTO dur_t VALUES (30)', 'app');
    const rc = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      rc.query('BEGIN');
      await rc.until((m) => m.name === 'readyForQuery' && m.status === 'T');
      const g = closeGate();
      const tagged = (tag: string) => (m: BackendMessage) => m.name === 'commandComplete' && m.tag === tag;
      for (const text of ['UPDATE dur_t SET v = 31 WHERE v = 30 /* pipelined */', 'COMMIT']) {
        rc.send(encodeFrontend({ name: 'parse', statement: '', text, paramTypes: [] }));
        rc.send(encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }));
        rc.send(encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }));
      }
      rc.send(encodeFrontend({ name: 'sync' }));
      expect(await Promise.race([g.held, rc.until(tagged('COMMIT')).then(() => 'answered')])).toBe('held');
      // The UPDATE's answer went out with the gate still closed; COMMIT's has not.
      expect(await rc.until(tagged('UPDATE 1'))).toBeDefined();
      expect(rc.messages.some(tagged('COMMIT'))).toBe(false);
      expect(g.calls).toBe(1);
      expect(g.asked[0]).toBeGreaterThanOrEqual(seqOf('pipelined'));
      g.release();
      expect(await rc.until(tagged('COMMIT'))).toBeDefined();
      expect(await rc.until((m) => m.name === 'readyForQuery' && m.status === 'I')).toBeDefined();
    } finally {
      gate?.release();
      rc.destroy();
    }
  });

  it('a Sync after an error in a block: the ReadyForQuery that shows the failed block waits for the records before it', async () => {
    cluster.psql('INSERT INTO dur_t VALUES (40), (41)', 'app');
    const rc = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      rc.query('BEGIN');
      await rc.until((m) => m.name === 'readyForQuery' && m.status === 'T');
      const g = closeGate();
      for (const text of ['UPDATE dur_t SET v = 42 WHERE v = 40 /* before_error */', 'UPDATE dur_t SET v = 41 WHERE v = 42']) {
        rc.send(encodeFrontend({ name: 'parse', statement: '', text, paramTypes: [] }));
        rc.send(encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }));
        rc.send(encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }));
      }
      rc.send(encodeFrontend({ name: 'sync' }));
      const ready = (m: BackendMessage) => m.name === 'readyForQuery' && m.status === 'E';
      expect(await Promise.race([g.held, rc.until(ready).then(() => 'answered')])).toBe('held');
      // Both statements' answers went out (the second one's is the unique violation); the ReadyForQuery waits.
      expect(await rc.until((m) => m.name === 'error')).toMatchObject({ fields: expect.anything() });
      expect(rc.error()).toMatchObject({ C: '23505' });
      expect(rc.messages.some(ready)).toBe(false);
      expect(g.asked[0]).toBeGreaterThanOrEqual(seqOf('before_error'));
      g.release();
      expect(await rc.until(ready)).toBeDefined();
      rc.query('ROLLBACK');
      expect(await rc.until((m) => m.name === 'readyForQuery' && m.status === 'I')).toBeDefined();
    } finally {
      gate?.release();
      rc.destroy();
    }
  });

  it('a statement whose effect does not wait for COMMIT (nextval) keeps its own hold inside a block', async () => {
    const c = await client();
    await c.query('BEGIN');
    expect(await heldUntilDurable(c, "SELECT nextval('dur_s') AS n /* sequence */")).toMatchObject({ first: 'held', answeredAfterRelease: true });
    expect(gate!.asked).toContain(seqOf('sequence'));
    // And a DDL statement, which the gateway does not treat as plainly transactional.
    expect(await heldUntilDurable(c, 'CREATE TEMP TABLE dur_tmp (v int)')).toMatchObject({ first: 'held', answeredAfterRelease: true });
    await c.query('ROLLBACK');
    await c.end();
  });
});
