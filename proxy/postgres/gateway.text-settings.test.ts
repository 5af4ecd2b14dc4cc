// How the server reads statement text (issue 14 item 1, the standard_conforming_strings hole of
// docs/conformance.md): the gateway reads statements as UTF-8 with standard_conforming_strings on.
// With it off, `SELECT 'x\' AS a, '; DELETE FROM t; -- '` is one SELECT to the gateway but a SELECT
// and a DELETE to the server. Whatever the policy, the gateway refuses statements that would set
// an unreadable value, ends a session whose server reports one (ParameterStatus), refuses a
// connection that starts with one (ALTER ROLE ... SET), and holds a statement with a backslash
// until an earlier statement that may change settings is answered.

import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from './raw-client.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

// Any policy that allows `grant` and `call`: the refusals here are the gateway's own.
const POLICY = `package t
default allow

rule no_delete {
  match sql delete
  block "no deletes"
}

rule no_unknown {
  match sql unknown
  block "unknown statements are not allowed"
}
`;

const ATTACK = "SELECT 'x\\' AS a, '; DELETE FROM t; -- '";

let cluster: Cluster;
let gw: TestGateway;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `SET ROLE app;
     CREATE TABLE t (id int);
     CREATE FUNCTION scs_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$;
     CREATE FUNCTION to_sjis() RETURNS text LANGUAGE sql AS $$ SELECT set_config('client_encoding', 'SJIS', false) $$;`,
    'app',
  );
  gw = await startTestGateway(cluster, POLICY);
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

beforeEach(() => {
  cluster.psql('TRUNCATE t; INSERT INTO t VALUES (1), (2), (3)', 'app');
});

const rowsLeft = (): number => Number(cluster.psql('SELECT count(*) FROM t', 'app'));

async function connect(): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(await gw.token()));
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** What the statement got: `ok`, or the refusal's SQLSTATE and message. */
function outcome(c: pg.Client, sql: string): Promise<string> {
  return c.query(sql).then(
    () => 'ok',
    (e: { code?: string; message?: string }) => `${e.code} ${e.message}`,
  );
}

describe('statements that would make the server read text differently', () => {
  it('are refused whatever the policy (SET, SET LOCAL, SET NAMES, set_config), audited; the attack after them deletes nothing', async () => {
    const c = await connect();
    try {
      expect(await outcome(c, 'DELETE FROM t')).toMatch(/^42501 .*no deletes/);
      for (const sql of [
        'SET standard_conforming_strings = off',
        'SET SESSION standard_conforming_strings TO false',
        "SET client_encoding = 'SJIS'",
        "SET NAMES 'BIG5'",
        "SET client_encoding TO 'GBK'",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT pg_catalog.set_config('client_encoding', 'UHC', false)",
        "SELECT set_config('standard_conforming_strings', current_setting('application_name'), false)",
        'SET backslash_quote = on',
      ]) {
        const decided = gw.audit.records.length;
        expect(await outcome(c, sql), sql).toMatch(/^42501 hoop: blocked: the gateway cannot read statements as the server would after setting/);
        const rec = gw.audit.records.slice(decided).find((r) => r.type === 'decision');
        expect(rec, sql).toMatchObject({ verdict: 'block', outcome: 'blocked' });
        expect(await outcome(c, ATTACK), sql).toBe('ok');
        expect(rowsLeft(), sql).toBe(3);
      }
      expect(await outcome(c, 'BEGIN')).toBe('ok');
      expect(await outcome(c, 'SET LOCAL standard_conforming_strings = off')).toMatch(/^42501 /);
      expect(await outcome(c, 'ROLLBACK')).toBe('ok');
      // Readable values and RESET are still decided by the policy (allowed here).
      for (const sql of ['SET standard_conforming_strings = on', "SET client_encoding = 'UTF8'", "SET client_encoding = 'LATIN1'", "SET client_encoding = 'UTF8'", 'RESET standard_conforming_strings']) {
        expect(await outcome(c, sql), sql).toBe('ok');
      }
      expect(await outcome(c, ATTACK)).toBe('ok');
      expect(rowsLeft()).toBe(3);
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});

describe('code stored as text, parsed by the server when it runs', () => {
  // A function body or DO block is parsed when it runs, under the setting of that moment: in one
  // message, `SELECT scs_off(); SELECT g()` runs g's body with standard_conforming_strings off
  // before the server's ParameterStatus can end the session.
  const BODY = "SELECT 'x\\' AS a, '; DELETE FROM t; -- '";
  it('a function or DO body whose reading depends on standard_conforming_strings is refused whatever the policy; one without stays allowed', async () => {
    const c = await connect();
    try {
      for (const sql of [
        `CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $f$ ${BODY} $f$`,
        `CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM 'x\\' AS a, '; DELETE FROM t; -- '; END $f$`,
        `CREATE PROCEDURE pg() LANGUAGE sql AS $f$ ${BODY} $f$`,
        `DO $f$ BEGIN PERFORM 'x\\' AS a, '; DELETE FROM t; -- '; END $f$`,
      ]) {
        const decided = gw.audit.records.length;
        expect(await outcome(c, sql), sql).toMatch(/^42501 hoop: blocked: the gateway cannot read statements as the server would after standard_conforming_strings changes: .* has a backslash before a quote/);
        expect(gw.audit.records.slice(decided).find((r) => r.type === 'decision'), sql).toMatchObject({ verdict: 'block', outcome: 'blocked' });
      }
      // Nothing was created: the attack of the report (create g, then run it behind scs_off() in
      // one message) has no g to run.
      expect(await outcome(c, 'SELECT scs_off(); SELECT g()')).toMatch(/^(42883|42501) /);
      expect(rowsLeft()).toBe(3);
    } finally {
      await c.end().catch(() => undefined);
    }
    const c2 = await connect();
    try {
      expect(await outcome(c2, "CREATE FUNCTION plain_body() RETURNS text LANGUAGE sql AS $f$ SELECT 'x\\y' $f$")).toBe('ok');
      expect(await outcome(c2, 'DROP FUNCTION plain_body()')).toBe('ok');
    } finally {
      await c2.end().catch(() => undefined);
    }
  });
});

describe('the server reports a setting the gateway cannot read under', () => {
  it('a plain SQL function calling set_config (a call the policy allows) ends the session, audited; nothing after it runs', async () => {
    for (const fn of ['scs_off', 'to_sjis']) {
      const c = await connect();
      const ended = gw.audit.records.length;
      const got = await outcome(c, `SELECT ${fn}()`);
      expect(got, fn).toMatch(/^42501 hoop: the server reports (standard_conforming_strings|client_encoding) = .*the gateway can no longer read statements as the server does/);
      expect(await outcome(c, ATTACK), fn).not.toBe('ok');
      expect(rowsLeft(), fn).toBe(3);
      expect(gw.audit.records.slice(ended).find((r) => r.type === 'session_end' && r.outcome === 'refused')?.reason, fn).toMatch(/^unreadable_setting: /);
      await c.end().catch(() => undefined);
    }
  });

  it('a statement with a backslash pipelined right behind the call waits for its answer, and never runs', async () => {
    const raw = await RawClient.login(gw.gateway.postgresPort, await gw.token(), gw.resourceName);
    raw.send(Buffer.concat([encodeFrontend({ name: 'query', text: 'SELECT scs_off()' }), encodeFrontend({ name: 'query', text: ATTACK })]));
    expect(await raw.waitClosed()).toBe(true);
    expect(raw.messages.find((m) => m.name === 'error' && m.fields.some(([k, v]) => k === 'S' && v === 'FATAL'))).toBeDefined();
    expect(raw.messages.some((m) => m.name === 'commandComplete' && m.tag.startsWith('DELETE'))).toBe(false);
    expect(rowsLeft()).toBe(3);
  });

  it('in one extended-protocol batch (no Sync between), a Parse with a backslash behind a call is refused', async () => {
    const raw = await RawClient.login(gw.gateway.postgresPort, await gw.token(), gw.resourceName);
    const step = (text: string) => [
      encodeFrontend({ name: 'parse', statement: '', text, paramTypes: [] }),
      encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
    ];
    raw.send(Buffer.concat([...step('SELECT scs_off()'), ...step("SELECT 'x\\' AS a, ' || 1 -- '"), encodeFrontend({ name: 'sync' })]));
    // The refusal fails the batch's implicit transaction, so the set_config is rolled back too.
    await raw.until((m) => m.name === 'readyForQuery' && raw.messages.some((e) => e.name === 'error'));
    const errors = raw.messages.flatMap((m) => (m.name === 'error' ? [Object.fromEntries(m.fields)] : []));
    expect(errors[0]).toMatchObject({ S: 'ERROR', C: '42501', M: expect.stringContaining('may not follow, in the same pipeline before Sync') });
    expect(rowsLeft()).toBe(3);
    // Behind a plain SET (it cannot change how text is read) the same Parse goes through.
    const before = raw.messages.length;
    raw.send(Buffer.concat([...step("SET work_mem = '8MB'"), ...step("SELECT 'x\\' AS a"), encodeFrontend({ name: 'sync' })]));
    await raw.until((m) => m.name === 'readyForQuery' && raw.messages.indexOf(m) >= before);
    expect(raw.messages.slice(before).filter((m) => m.name === 'error')).toEqual([]);
    expect(raw.messages.slice(before).some((m) => m.name === 'dataRow')).toBe(true);
    raw.destroy();
  });

  it('ALTER ROLE ... SET standard_conforming_strings = off, done directly: a new connection through the gateway is refused, audited', async () => {
    cluster.psql('ALTER ROLE app SET standard_conforming_strings = off');
    try {
      const refusedBefore = gw.audit.records.filter((r) => r.type === 'connection_refused').length;
      const c = new pg.Client(gw.pgConfig(await gw.token()));
      c.on('error', () => undefined);
      const err = await c.connect().then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
      expect(err).toMatchObject({ code: '42501', message: expect.stringContaining('standard_conforming_strings') });
      await c.end().catch(() => undefined);
      expect(rowsLeft()).toBe(3);
      const refused = gw.audit.records.filter((r) => r.type === 'connection_refused');
      expect(refused.length).toBe(refusedBefore + 1);
      expect(refused.at(-1)?.reason).toMatch(/^forbidden_setting: the server reports standard_conforming_strings = "off"/);
    } finally {
      cluster.psql('ALTER ROLE app RESET standard_conforming_strings');
    }
  });
});
