// When PostgreSQL ends a session itself (pg_terminate_backend, idle_in_transaction_session_timeout)
// it sends one FATAL and closes. Through the gateway a node-postgres client must see exactly what it
// sees directly: the server's FATAL once, no second FATAL from the gateway ("the connection to the
// upstream server was lost"), hence the same `error` events and the same errors for queued queries
// (issue 14 item 16; node-postgres' connection-pool/error-tests.js and
// query-error-handling-prepared-statement-tests.js failed only through the gateway).
//
// Each scenario runs against PostgreSQL directly and through the gateway, and the two event lists
// must be equal (and equal to the expected list, so a change on both sides is noticed too).

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { ALLOW_ALL, READ_ONLY, startTestGateway, type TestGateway } from './test-support.ts';

const MASKING = `package t
default allow

rule mask_customer_pii {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with email
}
`;

let cluster: Cluster;
let gw: TestGateway;
let masking: TestGateway;
let readOnly: TestGateway;
let masker: GatewayResultMasker;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(`CREATE TABLE customers (id int PRIMARY KEY, email text); INSERT INTO customers VALUES (1, 'ann@example.org'); ALTER TABLE customers OWNER TO app;`, 'app');
  gw = await startTestGateway(cluster, ALLOW_ALL);
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  masking = await startTestGateway(cluster, MASKING, { masker }, 'masked');
  readOnly = await startTestGateway(cluster, READ_ONLY, {}, 'read-only');
});

afterAll(async () => {
  await gw?.close();
  await masking?.close();
  await readOnly?.close();
  await masker?.close();
  await cluster?.stop();
});

type Via = 'direct' | 'gateway' | 'masking gateway';

async function config(via: Via): Promise<pg.ClientConfig> {
  if (via === 'gateway') return gw.pgConfig(await gw.token());
  if (via === 'masking gateway') return masking.pgConfig(await masking.token());
  const u = cluster.appUser;
  return { host: '127.0.0.1', port: cluster.port, user: u.user, password: u.password, database: u.database };
}

/** What the application sees: every `error` event and query outcome, in order, until `end`. */
interface Observed {
  events: string[];
  ended: Promise<void>;
}

function observe(c: pg.Client): Observed {
  const events: string[] = [];
  c.on('error', (e: Error & { code?: string }) => events.push(`error event: ${e.code ?? '-'} ${e.message}`));
  const ended = new Promise<void>((r) => c.once('end', () => r()));
  return { events, ended };
}

function outcome(events: string[], label: string, q: Promise<unknown>): Promise<void> {
  return q.then(
    () => void events.push(`${label}: ok`),
    (e: Error & { code?: string }) => void events.push(`${label}: ${e.code ?? '-'} ${e.message}`),
  );
}

/** The session terminates itself with a query queued behind (connection-pool/error-tests.js). */
async function terminateSelfWithQueued(via: Via): Promise<string[]> {
  const c = new pg.Client(await config(via));
  await c.connect();
  const o = observe(c);
  const kill = outcome(o.events, 'terminating query', c.query('SELECT pg_terminate_backend(pg_backend_pid())'));
  const queued = outcome(o.events, 'queued query', c.query('SELECT 1'));
  await Promise.all([kill, queued, o.ended]);
  return o.events;
}

/** Another session terminates this one while a prepared statement runs (query-error-handling-prepared-statement-tests.js). */
async function terminatedDuringPreparedStatement(via: Via): Promise<string[]> {
  const c = new pg.Client(await config(via));
  await c.connect();
  const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  const o = observe(c);
  const sleeping = outcome(o.events, 'prepared statement', c.query({ name: 'sleep query', text: 'SELECT pg_sleep($1)', values: [30] }));
  // Terminate once the statement is running (an event, not a sleep).
  for (;;) {
    const state = cluster.psql(`SELECT state FROM pg_stat_activity WHERE pid = ${pid}`).trim();
    if (state === 'active') break;
    await new Promise((r) => setImmediate(r));
  }
  cluster.psql(`SELECT pg_terminate_backend(${pid})`);
  await Promise.all([sleeping, o.ended]);
  return o.events;
}

/** The server's idle_in_transaction_session_timeout ends an idle session in a transaction. */
async function idleInTransactionTimeout(via: Via): Promise<string[]> {
  const c = new pg.Client(await config(via));
  await c.connect();
  const o = observe(c);
  await c.query("SET idle_in_transaction_session_timeout = '50ms'");
  await c.query('BEGIN');
  await o.ended;
  return o.events;
}

/**
 * A masked result, then the session terminates itself in the same message: the server's FATAL
 * arrives (and the upstream closes) while the gateway still plans the first result's masks.
 */
async function terminatedAfterMaskedResult(via: Via): Promise<string[]> {
  masker.invalidate(); // the plan needs the catalog: the gateway is busy when the upstream closes
  const c = new pg.Client(await config(via));
  await c.connect();
  const o = observe(c);
  await Promise.all([outcome(o.events, 'query', c.query('SELECT email FROM customers; SELECT pg_terminate_backend(pg_backend_pid())')), o.ended]);
  return o.events;
}

describe('the server ends the session: its FATAL reaches a node-postgres client once, as directly', () => {
  it('pg_terminate_backend of its own session with a query queued', async () => {
    const direct = await terminateSelfWithQueued('direct');
    const through = await terminateSelfWithQueued('gateway');
    expect(direct).toEqual([
      'terminating query: 57P01 terminating connection due to administrator command',
      'error event: - Connection terminated unexpectedly',
      'queued query: - Connection terminated unexpectedly',
    ]);
    expect(through).toEqual(direct);
  });

  it('pg_terminate_backend from another session during a prepared statement', async () => {
    const direct = await terminatedDuringPreparedStatement('direct');
    const through = await terminatedDuringPreparedStatement('gateway');
    expect(direct).toEqual([
      'prepared statement: 57P01 terminating connection due to administrator command',
      'error event: - Connection terminated unexpectedly',
    ]);
    expect(through).toEqual(direct);
  });

  it('idle_in_transaction_session_timeout', async () => {
    const direct = await idleInTransactionTimeout('direct');
    const through = await idleInTransactionTimeout('gateway');
    expect(direct).toEqual([
      'error event: 25P03 terminating connection due to idle-in-transaction timeout',
      'error event: - Connection terminated unexpectedly',
    ]);
    expect(through).toEqual(direct);
  });

  it('right after a masked result, while its mask plan is still being made', async () => {
    const direct = await terminatedAfterMaskedResult('direct');
    expect(direct).toEqual(['query: 57P01 terminating connection due to administrator command', 'error event: - Connection terminated unexpectedly']);
    for (let i = 0; i < 3; i++) expect(await terminatedAfterMaskedResult('masking gateway')).toEqual(direct);
  });
});

/** `connect()` then `end()` at once: node-postgres queues a Terminate before its StartupMessage (client/quick-disconnect-tests.js). */
async function endedWhileConnecting(via: Via): Promise<string[]> {
  const c = new pg.Client(await config(via));
  const o = observe(c);
  // Directly, connect() never settles: the events before `end` are what the application sees
  // (a FATAL would have rejected connect() before the socket's end).
  void outcome(o.events, 'connect', c.connect());
  const ending = outcome(o.events, 'end', c.end());
  await Promise.all([ending, o.ended]);
  await new Promise((r) => setImmediate(r));
  return o.events;
}

describe('a client ended while it connects', () => {
  it('sees what it sees directly: no error event, no protocol-violation FATAL', async () => {
    const direct = await endedWhileConnecting('direct');
    expect(direct).toEqual(['end: ok']);
    for (let i = 0; i < 3; i++) expect(await endedWhileConnecting('gateway')).toEqual(direct);
  });
});

describe('a refused statement the server answers with FATAL', () => {
  // With exit_on_error the server turns the error of the refused statement's stand-in into a
  // FATAL and closes: the client must learn the gateway's reason, as a FATAL (the session is
  // over), never the stand-in's own syntax error.
  for (const [protocol, run] of [
    ['simple', (c: pg.Client) => c.query('CREATE TABLE t_refused (a int)')],
    ['extended', (c: pg.Client) => c.query('CREATE TABLE t_refused (a int) -- $1', [1])],
  ] as const) {
    it(`${protocol} protocol: the refusal, as FATAL, then the end`, async () => {
      const c = new pg.Client(readOnly.pgConfig(await readOnly.token()));
      await c.connect();
      const o = observe(c);
      await c.query('SET exit_on_error = on');
      let err: (Error & { code?: string; severity?: string }) | undefined;
      await run(c).catch((e: Error) => (err = e));
      await o.ended;
      expect(err).toMatchObject({ code: '42501', severity: 'FATAL', message: expect.stringMatching(/^hoop: blocked: this resource is read-only/) });
      expect(o.events).toEqual(['error event: - Connection terminated unexpectedly']);
      expect(JSON.stringify(o.events) + String(err?.message)).not.toContain('hoop_blocked_');
      expect(cluster.psql("SELECT count(*) FROM pg_class WHERE relname = 't_refused'", 'app').trim()).toBe('0');
    });
  }
});
