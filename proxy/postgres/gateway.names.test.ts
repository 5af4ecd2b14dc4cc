// Prepared statement and portal names as the server has them (issue 14 items 7, 8 and 3).
//
// A name is taken when PostgreSQL confirms it, never before: a re-Parse of an existing name is
// refused (42P05) and the first statement stays, a failed PREPARE takes no name, and the protocol
// and SQL namespaces are one (a Parse named s and `PREPARE s` are the same server object). SQL
// cursors carry their query: a FETCH is decided with the cursor's facts and its rows are masked
// with the cursor's lineage; an Execute of a portal the gateway never saw bound is refused.
//
// The mask rule is scoped `on tables ["public.customers"]` (the README's policy), so a statement
// the gateway believes reads nothing gets no mask: exactly what a diverged name would exploit.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { RawClient } from './raw-client.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';
import type { BackendMessage } from './wire/backend.ts';
import { encodeFrontend } from './wire/frontend.ts';

const SENTINEL = 'zq-sentinel-mail-7731@example.org';
const MASKED = 'z***@example.org';

const POLICY = `package t
default block "this resource is read-only"

rule reads {
  match sql select, set, transaction, explain, utility
  allow
}

rule claim_jobs {
  match sql update on tables ["public.jobs"]
  allow
}

rule mask_customer_pii {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with email
}
`;

const ALL_KINDS = 'unknown, do, call, grant, ddl, truncate, delete, merge, update, insert, copy_from, copy_to, select, set, transaction, explain, utility';
const MASK_EVERY_KIND = `package t
default block "not allowed"

rule everything {
  match sql ${ALL_KINDS}
  allow
}

rule mask_pii {
  match sql ${ALL_KINDS}
  mask column "customers.email" with email
}
`;

let cluster: Cluster;
let gw: TestGateway;
/** A second gateway whose mask rule applies to every statement kind (the masking corpus's policy). */
let gwAll: TestGateway;
let masker: GatewayResultMasker;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `CREATE TABLE customers (id int PRIMARY KEY, email text);
     INSERT INTO customers VALUES (1, '${SENTINEL}');
     CREATE TABLE jobs (id int PRIMARY KEY);
     INSERT INTO jobs VALUES (1);
     CREATE FUNCTION open_emails(name refcursor) RETURNS refcursor LANGUAGE plpgsql AS
       $$ BEGIN OPEN name FOR SELECT lower(email) AS e FROM customers; RETURN name; END $$;
     ALTER TABLE customers OWNER TO app;
     ALTER TABLE jobs OWNER TO app;`,
    'app',
  );
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker });
  gwAll = await startTestGateway(cluster, MASK_EVERY_KIND, { masker });
});

afterAll(async () => {
  await gw?.close();
  await gwAll?.close();
  await masker?.close();
  await cluster?.stop();
});

interface Answer {
  bytes: Buffer;
  messages: BackendMessage[];
  /** SQLSTATEs of the ErrorResponses, in order. */
  errors: string[];
  text: string;
}

/** A raw session: `send` writes messages and resolves at their ReadyForQuery (one per Sync or Query) with everything received for them. */
async function session(through: () => TestGateway = () => gw): Promise<{ send(...msgs: Buffer[]): Promise<Answer>; query(sql: string): Promise<Answer>; close(): void }> {
  const g = through();
  const c = await RawClient.login(g.gateway.postgresPort, await g.token(), g.resourceName);
  const send = async (...msgs: Buffer[]): Promise<Answer> => {
    const fromRaw = c.rawBytes.length;
    const fromMsg = c.messages.length;
    c.send(Buffer.concat(msgs));
    // One ReadyForQuery per Sync and per Query sent.
    const expected = msgs.filter((m) => m[0] === 0x53 || m[0] === 0x51).length;
    const ready = await c.until(() => c.messages.slice(fromMsg).filter((m) => m.name === 'readyForQuery').length >= expected);
    if (!ready) throw new Error('no ReadyForQuery');
    const messages = c.messages.slice(fromMsg);
    const bytes = Buffer.concat(c.rawBytes.slice(fromRaw));
    const errors = messages.flatMap((m) => (m.name === 'error' ? [Object.fromEntries(m.fields).C ?? ''] : []));
    return { bytes, messages, errors, text: bytes.toString('latin1') };
  };
  return { send, query: (sql) => send(encodeFrontend({ name: 'query', text: sql })), close: () => c.destroy() };
}

const parse = (statement: string, text: string): Buffer => encodeFrontend({ name: 'parse', statement, text, paramTypes: [] });
const bind = (portal: string, statement: string): Buffer => encodeFrontend({ name: 'bind', portal, statement, paramFormats: [], params: [], resultFormats: [] });
const execute = (portal = ''): Buffer => encodeFrontend({ name: 'execute', portal, maxRows: 0 });
const sync = (): Buffer => encodeFrontend({ name: 'sync' });

/** The rows came back, masked: the sentinel never, its masked form yes. */
function expectMasked(a: Answer): void {
  expect(a.text.includes(SENTINEL)).toBe(false);
  expect(a.errors).toEqual([]);
  expect(a.text.includes(MASKED)).toBe(true);
}

/** No byte carries the sentinel, whether the statement ran masked or was refused. */
function expectNoLeak(a: Answer): void {
  expect(a.text.includes(SENTINEL)).toBe(false);
}

describe('a re-Parse of an existing statement name (issue 14 item 7)', () => {
  it('keeps the first statement and its mask plan when the server refuses the second Parse (42P05)', async () => {
    const s = await session();
    try {
      expect((await s.send(parse('s7', 'SELECT email FROM customers ORDER BY id'), sync())).errors).toEqual([]);
      expect((await s.send(parse('s7', "SELECT 'plain'::text AS email"), sync())).errors).toEqual(['42P05']);
      expectMasked(await s.send(bind('', 's7'), execute(), sync()));
      // Within one batch too: the refused Parse discards the Bind after it, as the server does.
      const batch = await s.send(parse('s7', "SELECT 'plain'::text AS email"), bind('', 's7'), execute(), sync());
      expect(batch.errors).toEqual(['42P05']);
      expectNoLeak(batch);
      expectMasked(await s.send(bind('', 's7'), execute(), sync()));
    } finally {
      s.close();
    }
  });

  it('a Parse the server rejected does not hold the name a later SQL PREPARE takes', async () => {
    const s = await session();
    try {
      expect((await s.send(parse('s7b', "SELECT 'plain'::no_such_type AS email"), sync())).errors).toEqual(['42704']);
      expect((await s.query('PREPARE s7b AS SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      // The protocol cannot run it undecided: refused, not run with the rejected Parse's (absent) masks.
      const bound = await s.send(bind('', 's7b'), execute(), sync());
      expectNoLeak(bound);
      expect(bound.errors).toEqual(['42501']);
      expectMasked(await s.query('EXECUTE s7b'));
    } finally {
      s.close();
    }
  });

  it('a protocol Parse keeps its name against a failed SQL PREPARE, and EXECUTE runs it masked', async () => {
    const s = await session();
    try {
      expect((await s.send(parse('s7c', 'SELECT email FROM customers ORDER BY id'), sync())).errors).toEqual([]);
      expect((await s.query("PREPARE s7c AS SELECT 'plain'::text AS email")).errors).toEqual(['42P05']);
      expectMasked(await s.query('EXECUTE s7c'));
      // DEALLOCATE frees the protocol statement's name too; then the PREPARE takes it.
      expect((await s.query('DEALLOCATE s7c')).errors).toEqual([]);
      expect((await s.query("PREPARE s7c AS SELECT 'plain'::text AS email")).errors).toEqual([]);
      expect((await s.query('EXECUTE s7c')).text.includes('plain')).toBe(true);
    } finally {
      s.close();
    }
  });
});

describe('EXECUTE inside another statement (issue 14 item 8)', () => {
  it('refuses CREATE TABLE AS EXECUTE of a statement over masked columns: the copy would hold them unmasked', async () => {
    const s = await session(() => gwAll);
    try {
      expect((await s.query('PREPARE cp AS SELECT id, email FROM customers')).errors).toEqual([]);
      const a = await s.query('CREATE TEMP TABLE cp_copy AS EXECUTE cp');
      expect(a.errors).toEqual(['42501']);
      const b = await s.query('SELECT * FROM cp_copy');
      expectNoLeak(b);
    } finally {
      s.close();
    }
  });
});

describe('pipelined batches (issue 14 item 7)', () => {
  it('decides a Bind sent before the server answered the Parse of an earlier batch by what the server answers', async () => {
    const s = await session();
    try {
      // One write: the Bind's batch is decided only once the Parse's batch is answered.
      const a = await s.send(parse('pp', 'SELECT email FROM customers ORDER BY id'), sync(), bind('', 'pp'), execute(), sync());
      expect(a.errors).toEqual([]);
      expectMasked(a);
      // The Parse fails (the name is taken), a SQL PREPARE of another name follows, then Binds of
      // both names: each runs what the server has, masked.
      const b = await s.send(
        parse('pp', "SELECT 'plain'::text AS email"),
        sync(),
        encodeFrontend({ name: 'query', text: 'PREPARE pq AS SELECT email FROM customers ORDER BY id' }),
        bind('', 'pp'),
        execute(),
        sync(),
      );
      expect(b.errors).toEqual(['42P05']);
      expectNoLeak(b);
      expectMasked(await s.send(bind('', 'pp'), execute(), sync()));
      expectMasked(await s.query('EXECUTE pq'));
    } finally {
      s.close();
    }
  });
});

describe('portals across batches, as JDBC fetches with a fetch size (issue 14 items 7 and 3)', () => {
  it('runs a named portal again in a later batch of its transaction, masked; after its transaction it is gone', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      const first = await s.send(parse('S_1', 'SELECT email FROM customers, generate_series(1, 2) ORDER BY id'), bind('C_1', 'S_1'), encodeFrontend({ name: 'execute', portal: 'C_1', maxRows: 1 }), sync());
      expect(first.errors).toEqual([]);
      expect(first.messages.some((m) => m.name === 'portalSuspended')).toBe(true);
      expectMasked(first);
      const rest = await s.send(encodeFrontend({ name: 'execute', portal: 'C_1', maxRows: 1 }), sync());
      expect(rest.errors).toEqual([]);
      expect(rest.messages.filter((m) => m.name === 'dataRow')).toHaveLength(1);
      expectNoLeak(rest);
      await s.query('ROLLBACK');
      expect((await s.send(execute('C_1'), sync())).errors).toEqual(['42501']);
    } finally {
      s.close();
    }
  });
});

describe('a failed SQL PREPARE (issue 14 item 8)', () => {
  it('takes no name: the PREPARE that succeeds later is what EXECUTE is decided and masked by', async () => {
    const s = await session();
    try {
      expect((await s.query("PREPARE p8 AS SELECT 'plain'::no_such_type AS email")).errors).toEqual(['42704']);
      expect((await s.query('PREPARE p8 AS SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      expectMasked(await s.query('EXECUTE p8'));
      const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized === 'EXECUTE p8').at(-1);
      expect(rec?.masks).toEqual(['public.customers.email:email']);
    } finally {
      s.close();
    }
  });

  it('a PREPARE the server never reached (an earlier statement of the message failed) takes no name', async () => {
    const s = await session();
    try {
      const a = await s.query("SELECT 1/0; PREPARE p8b AS SELECT 'plain'::text AS email");
      expect(a.errors).toEqual(['22012']);
      expect((await s.query('PREPARE p8b AS SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      expectMasked(await s.query('EXECUTE p8b'));
    } finally {
      s.close();
    }
  });
});

describe('a Parse\'d EXECUTE or FETCH runs only what it was decided with (issue 14 items 8 and 3)', () => {
  it('refuses a Parse\'d EXECUTE once its prepared statement was re-prepared over a masked table', async () => {
    const s = await session();
    try {
      expect((await s.query("PREPARE pd AS SELECT 'plain'::text AS email")).errors).toEqual([]);
      expect((await s.send(parse('ex', 'EXECUTE pd'), sync())).errors).toEqual([]);
      expect((await s.send(bind('', 'ex'), execute(), sync())).text.includes('plain')).toBe(true);
      await s.query('DEALLOCATE pd');
      expect((await s.query('PREPARE pd AS SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      const a = await s.send(bind('', 'ex'), execute(), sync());
      expectNoLeak(a);
      expect(a.errors).toEqual(['42501']);
      expect(a.text).toContain('prepared statement "pd" changed since this statement was parsed');
      // Parsed again, it is decided with what pd holds now: masked.
      expect((await s.send(parse('ex2', 'EXECUTE pd'), sync())).errors).toEqual([]);
      expectMasked(await s.send(bind('', 'ex2'), execute(), sync()));
    } finally {
      s.close();
    }
  });

  it('refuses a Parse\'d FETCH once its cursor was declared again over a masked table', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      await s.query("DECLARE cf CURSOR FOR SELECT 'plain'::text AS email");
      expect((await s.send(parse('fe', 'FETCH ALL FROM cf'), sync())).errors).toEqual([]);
      await s.query('CLOSE cf');
      await s.query('DECLARE cf CURSOR FOR SELECT email FROM customers');
      const a = await s.send(bind('', 'fe'), execute(), sync());
      expectNoLeak(a);
      expect(a.errors).toEqual(['42501']);
      expect(a.text).toContain('cursor "cf" changed since this statement was parsed');
      await s.query('ROLLBACK');
    } finally {
      s.close();
    }
  });

  it("masks an EXECUTE's rows with its statement's lineage: a derived column is redacted, not refused", async () => {
    const s = await session();
    try {
      expect((await s.query('PREPARE pu AS SELECT upper(email) AS e FROM customers')).errors).toEqual([]);
      const a = await s.query('EXECUTE pu');
      expect(a.errors).toEqual([]);
      expect(a.text.includes(SENTINEL.toUpperCase())).toBe(false);
      expect(a.messages.filter((m) => m.name === 'dataRow')).toHaveLength(1);
    } finally {
      s.close();
    }
  });
});

describe('SQL-level cursors (issue 14 item 3)', () => {
  it("masks a FETCH's rows with its cursor's query, in separate messages and in one", async () => {
    const s = await session();
    try {
      expect((await s.query('BEGIN')).errors).toEqual([]);
      expect((await s.query('DECLARE c CURSOR FOR SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      expectMasked(await s.query('FETCH ALL FROM c'));
      expect((await s.query('DECLARE d CURSOR FOR SELECT upper(email) AS e, id FROM customers ORDER BY id')).errors).toEqual([]);
      const derived = await s.query('FETCH ALL IN d');
      expect(derived.errors).toEqual([]);
      expect(derived.text.includes(SENTINEL.toUpperCase())).toBe(false);
      expect(derived.messages.filter((m) => m.name === 'dataRow')).toHaveLength(1);
      expectMasked(await s.query('DECLARE e CURSOR FOR SELECT email FROM customers; FETCH ALL FROM e'));
      const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized === 'FETCH ALL FROM c').at(-1);
      expect(rec).toMatchObject({ verdict: 'mask', masks: ['public.customers.email:email'], statement: { kind: 'select' } });
      expect((await s.query('COMMIT')).errors).toEqual([]);
    } finally {
      s.close();
    }
  });

  it('a FETCH carries the effects of its cursor: FOR UPDATE is an update, an unknown cursor is refused', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      expect((await s.query('DECLARE j CURSOR FOR SELECT id FROM jobs FOR UPDATE')).errors).toEqual([]);
      expect((await s.query('FETCH NEXT FROM j')).errors).toEqual([]);
      const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.statement?.normalized === 'FETCH NEXT FROM j').at(-1);
      expect(rec).toMatchObject({ verdict: 'allow', statement: { kind: 'update' } });
      expect(rec?.rules).toContain('t.claim_jobs');
      // A cursor the gateway did not see opened (e.g. by a function) is unknown: refused.
      const unknown = await s.query('FETCH ALL FROM nowhere');
      expect(unknown.errors).toEqual(['42501']);
      await s.query('ROLLBACK');
    } finally {
      s.close();
    }
  });

  it('a cursor a function opens is not known to the gateway: the call is refused, and so is a FETCH of the name', async () => {
    for (const through of [() => gw, () => gwAll]) {
      const s = await session(through);
      try {
        await s.query('BEGIN');
        // A function of unknown effect (read-only policy), or one the masks cannot follow (masks on every statement).
        const call = await s.query("SELECT open_emails('fc')");
        expect(call.errors).toEqual(['42501']);
        await s.query('ROLLBACK');
        await s.query('BEGIN');
        const a = await s.query('FETCH ALL FROM fc');
        expectNoLeak(a);
        expect(a.errors.length).toBe(1);
        await s.query('ROLLBACK');
      } finally {
        s.close();
      }
    }
  });

  it('cursors end at CLOSE and at the end of their transaction; WITH HOLD survives the commit', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      await s.query('DECLARE k CURSOR FOR SELECT email FROM customers');
      await s.query('CLOSE k');
      expect((await s.query('FETCH ALL FROM k')).errors).toEqual(['42501']);
      await s.query('DECLARE k CURSOR FOR SELECT email FROM customers');
      await s.query('COMMIT');
      expect((await s.query('FETCH ALL FROM k')).errors).toEqual(['42501']);
      expect((await s.query('DECLARE h CURSOR WITH HOLD FOR SELECT email FROM customers ORDER BY id')).errors).toEqual([]);
      expectMasked(await s.query('FETCH ALL FROM h'));
      await s.query('BEGIN; DECLARE r CURSOR WITH HOLD FOR SELECT email FROM customers; ROLLBACK');
      expect((await s.query('FETCH ALL FROM r')).errors).toEqual(['42501']);
      await s.query('CLOSE ALL');
      expect((await s.query('FETCH ALL FROM h')).errors).toEqual(['42501']);
    } finally {
      s.close();
    }
  });

  it('ROLLBACK TO a savepoint closes the cursors opened after it, and only those', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      await s.query('DECLARE before_sp CURSOR FOR SELECT email FROM customers ORDER BY id');
      await s.query('SAVEPOINT a');
      await s.query('DECLARE after_sp CURSOR FOR SELECT email FROM customers');
      await s.query('SAVEPOINT b');
      await s.query('RELEASE b');
      expect((await s.query('ROLLBACK TO a')).errors).toEqual([]);
      expectMasked(await s.query('FETCH ALL FROM before_sp'));
      expect((await s.query('FETCH ALL FROM after_sp')).errors).toEqual(['42501']);
      // A savepoint the gateway did not see (none here: b was released) forgets the transaction's cursors.
      expect((await s.query('ROLLBACK TO b')).errors).toEqual(['3B001']);
      await s.query('ROLLBACK');
    } finally {
      s.close();
    }
  });

  it('refuses, with a decision record, an Execute of a portal the gateway never saw bound (a SQL cursor)', async () => {
    const s = await session();
    try {
      await s.query('BEGIN');
      expect((await s.query('DECLARE x CURSOR FOR SELECT email FROM customers')).errors).toEqual([]);
      const a = await s.send(execute('x'), sync());
      expectNoLeak(a);
      expect(a.errors).toEqual(['42501']);
      expect(a.text).toContain('portal "x" was not bound through the extended protocol');
      const rec = gw.audit.records.filter((r) => r.type === 'decision' && r.reason?.includes('portal "x"')).at(-1);
      expect(rec).toMatchObject({ verdict: 'block', outcome: 'blocked' });
      // Like a failed statement, the refusal aborts the transaction; the session carries on.
      expect((await s.query('ROLLBACK')).errors).toEqual([]);
      expectMasked(await s.query('SELECT email FROM customers'));
    } finally {
      s.close();
    }
  });
});
