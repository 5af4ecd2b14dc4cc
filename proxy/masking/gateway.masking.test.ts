// End to end through the real gateway, in ONE long session per protocol (simple/text and
// extended/binary): column masks and content detectors together, every corpus statement inside a
// transaction that is rolled back, and no byte the gateway sends contains a sentinel. Statements
// the corpus says must be blocked get 42501 and the session keeps working afterwards.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from '../postgres/raw-client.ts';
import { startTestGateway, type TestGateway } from '../postgres/test-support.ts';
import { encodeFrontend } from '../postgres/wire/frontend.ts';
import { CORPUS, SENTINEL, SETUP_SQL } from './corpus.ts';
import { createResultMasker, type GatewayResultMasker } from './index.ts';
import { CATALOG_TRIGGER_SQL } from './pg-catalog.ts';

// Every statement kind is listed: a rule without \`match\` never applies to \`unknown\` statements
// (DESIGN.md), and a mask rule that does not apply masks nothing.
const ALL_KINDS = 'unknown, do, call, grant, ddl, truncate, delete, merge, update, insert, copy_from, copy_to, select, set, transaction, explain, utility';
const ALLOW_EVERYTHING = `package t
default block "not allowed"

rule everything {
  match sql ${ALL_KINDS}
  allow
}
`;
const POLICY = `${ALLOW_EVERYTHING}

rule mask_pii {
  match sql ${ALL_KINDS}
  mask column "customers.email" with email
  mask column "customers.card_number" with last4
  mask column "customers.ssn" with redact
  mask column "events.contact" with redact
  mask column "v_contacts.contact_name" with redact
  mask detect credit_card, us_ssn with redact
}
`;

const SENTINELS = Object.values(SENTINEL).map((s) => Buffer.from(s, 'utf8'));

let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;

beforeAll(async () => {
  cluster = await startCluster();
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }), hashKey: 'gateway-test-key' });
  gw = await startTestGateway(cluster, POLICY, { masker });
});

afterAll(async () => {
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

/** A logged-in raw client; `run` sends one statement and resolves at its ReadyForQuery with every byte received for it. */
async function session(binary: boolean): Promise<{ run(sql: string): Promise<{ bytes: Buffer; errorCode?: string }>; close(): void }> {
  const c = await RawClient.login(gw.gateway.postgresPort, await gw.token(), gw.resourceName);
  return {
    async run(sql) {
      const fromRaw = c.rawBytes.length;
      const fromMsg = c.messages.length;
      if (binary) {
        c.send(
          Buffer.concat([
            encodeFrontend({ name: 'parse', statement: '', text: sql, paramTypes: [] }),
            encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [1] }),
            encodeFrontend({ name: 'describe', target: 'P', objectName: '' }),
            encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
            encodeFrontend({ name: 'sync' }),
          ]),
        );
      } else c.query(sql);
      let seen = fromMsg;
      const ready = await c.until(() => c.messages.slice(seen++).some((m) => m.name === 'readyForQuery') || c.messages.slice(fromMsg).some((m) => m.name === 'readyForQuery'), 20_000);
      if (!ready) throw new Error(`no ReadyForQuery for ${sql}`);
      const err = c.messages.slice(fromMsg).find((m) => m.name === 'error');
      const errorCode = err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined;
      return { bytes: Buffer.concat(c.rawBytes.slice(fromRaw)), ...(errorCode ? { errorCode } : {}) };
    },
    close: () => c.destroy(),
  };
}

for (const binary of [false, true]) {
  describe(`sentinels never leave the gateway (${binary ? 'extended protocol, binary results' : 'simple protocol, text results'})`, () => {
    it(`across the ${CORPUS.length}-statement corpus`, async () => {
      const s = await session(binary);
      try {
        const failures: string[] = [];
        for (const c of CORPUS) {
          // Writes are undone so every case sees the same data.
          await s.run('BEGIN');
          const { bytes, errorCode } = await s.run(c.sql);
          await s.run('ROLLBACK');
          for (const sentinel of SENTINELS) {
            if (bytes.includes(sentinel)) failures.push(`${c.sql}: sentinel ${sentinel.toString()} was sent`);
          }
          if (c.expect === 'block' && errorCode !== '42501') failures.push(`${c.sql}: expected a 42501 block, got ${errorCode ?? 'no error'}`);
          if (c.expect !== 'block' && errorCode === '42501') failures.push(`${c.sql}: blocked but should run`);
        }
        expect(failures).toEqual([]);
        // The session still works after all of that.
        const after = await s.run('SELECT email FROM customers ORDER BY id');
        expect(after.errorCode).toBeUndefined();
        expect(after.bytes.includes(Buffer.from('z***@example.org'))).toBe(true);
      } finally {
        s.close();
      }
    });
  });
}

describe('aggregate and window inputs (issue 14 item 4)', () => {
  // The README-like policy: customers.email masked, the content detectors as the backstop.
  const EMAIL_ONLY = `${ALLOW_EVERYTHING}
rule mask_email {
  match sql read
  mask column "customers.email" with email
  mask detect credit_card, us_ssn with redact
}
`;
  // Both customers' e-mails (mode() and the median pick the other one) and the forms the
  // character-transforming functions below give them.
  const leaks = [SENTINEL.email, 'ann@example.com']
    .flatMap((e) => [e, e.toUpperCase(), e.replaceAll('.', 'X')])
    .map((s) => Buffer.from(s, 'utf8'));
  const FORMS = [
    'SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers',
    'SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY email) FROM customers',
    'SELECT percentile_disc(ARRAY[0, 1]) WITHIN GROUP (ORDER BY email DESC) FROM customers',
    "SELECT mode() WITHIN GROUP (ORDER BY translate(email, '.', 'X')) FROM customers",
    'SELECT mode() WITHIN GROUP (ORDER BY upper(email)) FROM customers',
    'SELECT (SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers) AS m',
    "SELECT string_agg(name, ',' ORDER BY email), json_agg(email ORDER BY email) FROM customers",
    "SELECT max(name) FILTER (WHERE email = 'zq-sentinel-mail-7731@example.org') FROM customers",
    'SELECT id, first_value(email) OVER (ORDER BY id) FROM customers',
    'SELECT id, lag(email) OVER (ORDER BY id DESC) FROM customers',
    'SELECT id, nth_value(email, 1) OVER w FROM customers WINDOW w AS (ORDER BY id)',
    // Window functions over transformed values (a transformed value is still derived).
    "SELECT id, first_value(translate(email, '.', 'X')) OVER (ORDER BY id) FROM customers",
    "SELECT id, last_value(upper(email)) OVER w FROM customers WINDOW w AS (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
    "SELECT id, lag(id, 1, length(email)) OVER (ORDER BY id), lead(translate(email, '.', 'X'), 1, 'none') OVER (ORDER BY id) FROM customers",
    "SELECT id, (array_agg(translate(email, '.', 'X')) OVER ())[1] FROM customers",
    "SELECT id, string_agg(upper(email), ',') OVER (ORDER BY id) FROM customers",
    "SELECT id, max(translate(email, '.', 'X')) OVER (PARTITION BY name) FROM customers",
    'SELECT id, first_value(c) OVER (ORDER BY id) FROM customers c',
    "SELECT x.v FROM (SELECT nth_value(translate(email, '.', 'X'), 2) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS v FROM customers) x",
    "SELECT id, (email).text, (translate(email, '.', 'X')).text FROM customers",
  ];
  let gw4: TestGateway;
  let masker4: GatewayResultMasker;
  beforeAll(async () => {
    masker4 = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    gw4 = await startTestGateway(cluster, EMAIL_ONLY, { masker: masker4 }, 'prod-aggregates');
  });
  afterAll(async () => {
    await gw4?.close();
    await masker4?.close();
  });

  it('ORDER BY ... USING a user-defined ordering operator is refused: its comparison function sees every value', async () => {
    // An operator class needs a superuser; its comparison function copies what it compares.
    cluster.psql(
      `CREATE TABLE stash (v text); GRANT ALL ON stash TO ${cluster.appUser.user};
       CREATE FUNCTION leaky_cmp(text, text) RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.stash VALUES ($1), ($2); RETURN bttextcmp($1, $2); END $$;
       CREATE OPERATOR <<< (LEFTARG = text, RIGHTARG = text, FUNCTION = text_lt);
       CREATE OPERATOR CLASS leaky_ops FOR TYPE text USING btree AS OPERATOR 1 <<<, OPERATOR 3 =, FUNCTION 1 leaky_cmp(text, text);`,
      cluster.appUser.database,
    );
    const c = await RawClient.login(gw4.gateway.postgresPort, await gw4.token(), gw4.resourceName);
    try {
      const from = c.messages.length;
      c.query('SELECT id FROM customers ORDER BY email USING <<<');
      if (!(await c.until(() => c.messages.slice(from).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error('no ReadyForQuery');
      const err = c.messages.slice(from).find((m) => m.name === 'error');
      expect(err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined).toBe('42501');
    } finally {
      c.destroy();
    }
    expect(cluster.psql('SELECT count(*) FROM stash', cluster.appUser.database).trim()).toBe('0');
  });

  it('a read that also calls a user function (kind call) keeps the read rule\'s masks: the e-mail is redacted or the statement refused', async () => {
    cluster.psql(
      `CREATE FUNCTION one_more(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $1 + 1; END $$; GRANT EXECUTE ON FUNCTION one_more(int) TO ${cluster.appUser.user};`,
      cluster.appUser.database,
    );
    const c = await RawClient.login(gw4.gateway.postgresPort, await gw4.token(), gw4.resourceName);
    try {
      for (const sql of ['SELECT one_more(1), email FROM customers', 'SELECT email, one_more(id) FROM customers', 'SELECT x.e FROM (SELECT one_more(id), email AS e FROM customers) x']) {
        const fromRaw = c.rawBytes.length;
        const fromMsg = c.messages.length;
        c.query(sql);
        if (!(await c.until(() => c.messages.slice(fromMsg).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error(`no ReadyForQuery for ${sql}`);
        const bytes = Buffer.concat(c.rawBytes.slice(fromRaw));
        for (const leak of leaks) expect(bytes.includes(leak), `${sql}: ${leak.toString()} was sent`).toBe(false);
        const answered = c.messages.slice(fromMsg).some((m) => m.name === 'dataRow' || m.name === 'error');
        expect(answered, sql).toBe(true);
      }
    } finally {
      c.destroy();
    }
  });

  it('no form returns the masked e-mail: each runs, with the value redacted', async () => {
    const c = await RawClient.login(gw4.gateway.postgresPort, await gw4.token(), gw4.resourceName);
    try {
      const failures: string[] = [];
      for (const sql of FORMS) {
        const fromRaw = c.rawBytes.length;
        const fromMsg = c.messages.length;
        c.query(sql);
        if (!(await c.until(() => c.messages.slice(fromMsg).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error(`no ReadyForQuery for ${sql}`);
        const err = c.messages.slice(fromMsg).find((m) => m.name === 'error');
        if (err) failures.push(`${sql}: refused or failed (${err.name === 'error' ? Object.fromEntries(err.fields).M : ''})`);
        const bytes = Buffer.concat(c.rawBytes.slice(fromRaw));
        for (const leak of leaks) if (bytes.includes(leak)) failures.push(`${sql}: ${leak.toString()} was sent`);
        if (!c.messages.slice(fromMsg).some((m) => m.name === 'dataRow')) failures.push(`${sql}: no rows`);
      }
      expect(failures).toEqual([]);
    } finally {
      c.destroy();
    }
  });
});

describe('schema changes made through the gateway', () => {
  // Masks on reads only: DDL itself carries no masks, so nothing about it is prechecked.
  const READ_MASKS = `${ALLOW_EVERYTHING}
rule mask_reads {
  match sql read
  mask column "customers.email" with email
}
`;
  const email = Buffer.from(SENTINEL.email, 'utf8');
  let gw2: TestGateway;
  let masker2: GatewayResultMasker;
  beforeAll(async () => {
    masker2 = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    gw2 = await startTestGateway(cluster, READ_MASKS, { masker: masker2 }, 'prod-ddl');
  });
  afterAll(async () => {
    await gw2?.close();
    await masker2?.close();
  });
  async function run(c: RawClient, sql: string): Promise<{ bytes: Buffer; errorCode?: string }> {
    const fromRaw = c.rawBytes.length;
    const fromMsg = c.messages.length;
    c.query(sql);
    if (!(await c.until(() => c.messages.slice(fromMsg).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error(`no ReadyForQuery for ${sql}`);
    const err = c.messages.slice(fromMsg).find((m) => m.name === 'error');
    const errorCode = err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined;
    return { bytes: Buffer.concat(c.rawBytes.slice(fromRaw)), ...(errorCode ? { errorCode } : {}) };
  }

  it('a view replaced by a committed statement is masked by its new definition at once (no stale catalog)', async () => {
    const c = await RawClient.login(gw2.gateway.postgresPort, await gw2.token(), gw2.resourceName);
    try {
      // Warm the masker's catalog with the clear definition.
      expect((await run(c, 'SELECT name FROM v_clear ORDER BY id')).errorCode).toBeUndefined();
      expect((await run(c, 'CREATE OR REPLACE VIEW v_clear AS SELECT id, email AS name FROM customers')).errorCode).toBeUndefined();
      const after = await run(c, 'SELECT name FROM v_clear ORDER BY id');
      expect(after.errorCode).toBeUndefined();
      expect(after.bytes.includes(email)).toBe(false);
    } finally {
      await run(c, 'CREATE OR REPLACE VIEW v_clear AS SELECT id, name FROM customers');
      c.destroy();
    }
  });

  it('a write on a table with a column masked for reads does not quote the column in its errors', async () => {
    const c = await RawClient.login(gw2.gateway.postgresPort, await gw2.token(), gw2.resourceName);
    try {
      for (const sql of [
        'UPDATE customers SET name = NULL',
        'UPDATE customers SET id = 1',
        "INSERT INTO customers (id, name, email) SELECT id, name, 'x' FROM customers",
      ]) {
        const r = await run(c, sql);
        expect(r.errorCode, sql).toBeDefined();
        expect(r.bytes.includes(email), `${sql}: ${r.bytes.toString()}`).toBe(false);
        // The real error class stays visible to the driver; the text that quoted the row does not.
        expect(r.bytes.toString(), sql).toContain("the server's message is withheld");
      }
    } finally {
      c.destroy();
    }
  });

  it('DDL that converts or indexes the rows of a table with a column masked for reads does not quote the column in its errors', async () => {
    cluster.psql(
      `CREATE TABLE ddl_leak (id int, secret text); INSERT INTO ddl_leak VALUES (1, '${SENTINEL.email}'), (2, '${SENTINEL.email}');
       GRANT ALL ON ddl_leak TO ${cluster.appUser.user}; ALTER TABLE ddl_leak OWNER TO ${cluster.appUser.user};`,
      cluster.appUser.database,
    );
    const policy = `${ALLOW_EVERYTHING}
rule mask_reads {
  match sql read
  mask column "ddl_leak.secret" with redact
}
`;
    const m = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    const g = await startTestGateway(cluster, policy, { masker: m }, 'prod-ddl-leak');
    const c = await RawClient.login(g.gateway.postgresPort, await g.token(), g.resourceName);
    try {
      for (const sql of ['ALTER TABLE ddl_leak ALTER COLUMN secret TYPE int USING secret::int', 'CREATE UNIQUE INDEX ON ddl_leak (secret)', 'ALTER TABLE ddl_leak ADD PRIMARY KEY (secret)']) {
        const r = await run(c, sql);
        expect(r.errorCode, sql).toBeDefined();
        expect(r.bytes.includes(email), `${sql}: ${r.bytes.toString()}`).toBe(false);
      }
      // Refused before it runs (the masker cannot tell which DDL errors quote rows); DDL on tables
      // without masked columns runs as before.
      expect((await run(c, 'ALTER TABLE ddl_leak ADD COLUMN note text')).errorCode).toBe('42501');
      const other = await run(c, 'CREATE TABLE ddl_other (x int); ALTER TABLE ddl_other ADD COLUMN y text; DROP TABLE ddl_other');
      expect(other.errorCode, other.bytes.toString()).toBeUndefined();
    } finally {
      c.destroy();
      await g.close();
      await m.close();
      cluster.psql('DROP TABLE ddl_leak', cluster.appUser.database);
    }
  });

  it('a mask scoped to reads covers writes that read: RETURNING, and copies of a masked value into another table are refused', async () => {
    const c = await RawClient.login(gw2.gateway.postgresPort, await gw2.token(), gw2.resourceName);
    try {
      // Values coming back from a write: masked (or refused), never clear.
      expect((await run(c, 'BEGIN')).errorCode).toBeUndefined();
      for (const sql of [
        'UPDATE customers SET name = name RETURNING email',
        'UPDATE customers SET name = name RETURNING *',
        'DELETE FROM orders WHERE id < 0 RETURNING note, (SELECT max(email) FROM customers)',
        'INSERT INTO customers (name, email) SELECT name, email FROM customers RETURNING email',
        'WITH u AS (UPDATE customers SET name = name RETURNING email) SELECT * FROM u',
      ]) {
        const r = await run(c, sql);
        expect(r.bytes.includes(email), sql).toBe(false);
        if (r.errorCode) {
          expect(r.errorCode, sql).toBe('42501');
          await run(c, 'ROLLBACK');
          await run(c, 'BEGIN');
        }
      }
      const masked = await run(c, 'UPDATE customers SET name = name RETURNING id, email');
      expect(masked.errorCode, masked.bytes.toString()).toBeUndefined();
      expect(masked.bytes.includes(Buffer.from('z***@example.org'))).toBe(true);
      // A RETURNING of clear columns is untouched.
      const clear = await run(c, 'UPDATE customers SET name = name RETURNING id, name');
      expect(clear.errorCode).toBeUndefined();
      await run(c, 'ROLLBACK');
      // A copy of the masked column where a later read would get it in clear is refused.
      for (const sql of ['CREATE TABLE stash_copy AS SELECT email FROM customers', "INSERT INTO orders (note) SELECT email FROM customers", "INSERT INTO orders (note) SELECT 'x' || email FROM customers"]) {
        const r = await run(c, sql);
        expect(r.errorCode, sql).toBe('42501');
      }
      expect((await run(c, 'SELECT * FROM orders')).bytes.includes(email)).toBe(false);
      // Copies of clear columns still run.
      expect((await run(c, 'BEGIN')).errorCode).toBeUndefined();
      expect((await run(c, 'INSERT INTO orders (note) SELECT name FROM customers')).errorCode).toBeUndefined();
      await run(c, 'ROLLBACK');
    } finally {
      await run(c, 'DROP TABLE IF EXISTS stash_copy');
      c.destroy();
    }
  });

  it('inside the transaction that changed the schema, a read with column masks is refused', async () => {
    const c = await RawClient.login(gw2.gateway.postgresPort, await gw2.token(), gw2.resourceName);
    try {
      expect((await run(c, 'SELECT name FROM v_clear ORDER BY id')).errorCode).toBeUndefined();
      await run(c, 'BEGIN');
      expect((await run(c, 'CREATE OR REPLACE VIEW v_clear AS SELECT id, email AS name FROM customers')).errorCode).toBeUndefined();
      const inTx = await run(c, 'SELECT name FROM v_clear ORDER BY id');
      expect(inTx.errorCode).toBe('42501');
      expect(inTx.bytes.includes(email)).toBe(false);
      expect(inTx.bytes.toString()).toContain('schema change in the same transaction');
      expect((await run(c, 'ROLLBACK')).errorCode).toBeUndefined();
      // One message: DDL, then a masked read in the same implicit transaction.
      const oneMessage = await run(c, 'CREATE OR REPLACE VIEW v_clear AS SELECT id, email AS name FROM customers; SELECT name FROM v_clear');
      expect(oneMessage.errorCode).toBe('42501');
      expect(oneMessage.bytes.includes(email)).toBe(false);
      // Nothing of that message ran, and once the transaction is over masked reads run again.
      const later = await run(c, 'SELECT name FROM v_clear ORDER BY id');
      expect(later.errorCode).toBeUndefined();
      expect(later.bytes.includes(email)).toBe(false);
    } finally {
      c.destroy();
    }
  });

  it("with hoop's event trigger installed, DDL run outside the gateway is seen without waiting for the cache to expire", async () => {
    cluster.psql(CATALOG_TRIGGER_SQL, cluster.appUser.database);
    // A cache that would otherwise hold the old definition for the whole test.
    const slowMasker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }), catalogTtlMs: 600_000 });
    const gw3 = await startTestGateway(cluster, READ_MASKS, { masker: slowMasker }, 'prod-ddl-elsewhere');
    const c = await RawClient.login(gw3.gateway.postgresPort, await gw3.token(), gw3.resourceName);
    try {
      expect((await run(c, 'SELECT name FROM v_clear ORDER BY id')).errorCode).toBeUndefined();
      // A DBA replaces the view directly on the database.
      cluster.psql('CREATE OR REPLACE VIEW v_clear AS SELECT id, email AS name FROM customers', cluster.appUser.database);
      let leaked = true;
      for (let i = 0; i < 100 && leaked; i++) {
        const r = await run(c, 'SELECT name FROM v_clear ORDER BY id');
        leaked = r.bytes.includes(email);
        if (leaked) await new Promise((r) => setTimeout(r, 100));
      }
      expect(leaked).toBe(false);
    } finally {
      cluster.psql('CREATE OR REPLACE VIEW v_clear AS SELECT id, name FROM customers; DROP EVENT TRIGGER hoop_catalog_changed', cluster.appUser.database);
      c.destroy();
      await gw3.close();
      await slowMasker.close();
    }
  });
});

describe('error and notice text of masked statements (issue 14 item 5)', () => {
  // Leaks the lineage cannot see, so only the rule for error and notice text stops them: a
  // row-level security policy that casts the masked column (its error quotes the value) or hands it
  // to a function raising a NOTICE, and a trigger that raises a masked value in its error.
  const SECRET = 'zq-rls-secret-5512';
  const SETUP = `
CREATE TABLE rls_cast (id int, secret text);
INSERT INTO rls_cast VALUES (1, '${SECRET}');
ALTER TABLE rls_cast ENABLE ROW LEVEL SECURITY;
ALTER TABLE rls_cast FORCE ROW LEVEL SECURITY;
CREATE POLICY p_cast ON rls_cast USING (length(secret::int::text) > 0);
CREATE FUNCTION peek(text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'saw %', $1 USING DETAIL = 'detail ' || $1, HINT = 'hint ' || $1; RETURN true; END $$;
CREATE TABLE rls_notice (id int, secret text);
INSERT INTO rls_notice VALUES (1, '${SECRET}');
ALTER TABLE rls_notice ENABLE ROW LEVEL SECURITY;
ALTER TABLE rls_notice FORCE ROW LEVEL SECURITY;
CREATE POLICY p_notice ON rls_notice USING (peek(secret));
CREATE TABLE trig_log (id int);
CREATE FUNCTION trig_leak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row for %', (SELECT secret FROM rls_notice LIMIT 1); END $$;
CREATE TRIGGER t_leak BEFORE INSERT ON trig_log FOR EACH ROW EXECUTE FUNCTION trig_leak();
CREATE TABLE plain_secret (secret text);
INSERT INTO plain_secret VALUES ('${SECRET}');
CREATE TABLE trig_deferred (id int);
CREATE FUNCTION trig_notice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'committing %', (SELECT secret FROM plain_secret LIMIT 1); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER t_deferred AFTER INSERT ON trig_deferred DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION trig_notice();
`;
  const COLUMN_MASKS = `${ALLOW_EVERYTHING}
rule mask_secrets {
  match sql ${ALL_KINDS}
  mask column "rls_cast.secret" with redact
  mask column "rls_notice.secret" with redact
  mask column "plain_secret.secret" with redact
}
`;
  // Content detectors only: error text goes through them like row values.
  const DETECTORS = `${ALLOW_EVERYTHING}
rule detect {
  match sql ${ALL_KINDS}
  mask detect credit_card, us_ssn with redact
}
`;
  let gwCols: TestGateway;
  let gwDetect: TestGateway;
  let m1: GatewayResultMasker;
  let m2: GatewayResultMasker;
  beforeAll(async () => {
    const setup = new pg.Client({ connectionString: cluster.appUser.url });
    await setup.connect();
    await setup.query(SETUP);
    await setup.end();
    m1 = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    m2 = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    gwCols = await startTestGateway(cluster, COLUMN_MASKS, { masker: m1 }, 'prod-error-text');
    gwDetect = await startTestGateway(cluster, DETECTORS, { masker: m2 }, 'prod-error-detect');
  });
  afterAll(async () => {
    await gwCols?.close();
    await gwDetect?.close();
    await m1?.close();
    await m2?.close();
  });

  /** One statement in the simple or the extended protocol: every byte received, and the ErrorResponse/NoticeResponse fields. */
  async function run(c: RawClient, sql: string, extended: boolean) {
    const fromRaw = c.rawBytes.length;
    const fromMsg = c.messages.length;
    if (extended) {
      c.send(
        Buffer.concat([
          encodeFrontend({ name: 'parse', statement: '', text: sql, paramTypes: [] }),
          encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }),
          encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
          encodeFrontend({ name: 'sync' }),
        ]),
      );
    } else c.query(sql);
    if (!(await c.until(() => c.messages.slice(fromMsg).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error(`no ReadyForQuery for ${sql}`);
    const msgs = c.messages.slice(fromMsg);
    const fields = (name: 'error' | 'notice') => msgs.flatMap((m) => (m.name === name ? [Object.fromEntries(m.fields) as Record<string, string>] : []));
    return { bytes: Buffer.concat(c.rawBytes.slice(fromRaw)), errors: fields('error'), notices: fields('notice') };
  }

  it('a FATAL that ends a masked read reaches the client as the server sent it (it is about the connection, not a value)', async () => {
    const c = await RawClient.login(gwCols.gateway.postgresPort, await gwCols.token(), gwCols.resourceName);
    try {
      const from = c.messages.length;
      c.query('SELECT secret, pg_sleep(60) FROM plain_secret');
      const running = "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT secret, pg_sleep(60) FROM plain_secret' AND state = 'active'";
      for (let i = 0; i < 200 && cluster.psql(running).trim() === ''; i++) await new Promise((r) => setTimeout(r, 25));
      cluster.psql(`SELECT pg_terminate_backend(pid) FROM (${running}) a`);
      await c.until(() => c.messages.slice(from).some((m) => m.name === 'error'), 20_000);
      const err = c.messages.slice(from).find((m) => m.name === 'error');
      const fields = err && err.name === 'error' ? Object.fromEntries(err.fields) : {};
      expect(fields.C).toBe('57P01');
      expect(fields.S).toBe('FATAL');
      expect(fields.M).toBe('terminating connection due to administrator command');
    } finally {
      c.destroy();
    }
  });

  it('with exit_on_error an error quoting a masked value comes as a FATAL: withheld too', async () => {
    const c = await RawClient.login(gwCols.gateway.postgresPort, await gwCols.token(), gwCols.resourceName);
    try {
      await run(c, 'SET exit_on_error = on', false);
      const from = c.rawBytes.length;
      const fromMsg = c.messages.length;
      c.query('SELECT id FROM rls_cast');
      await c.until(() => c.messages.slice(fromMsg).some((m) => m.name === 'error'), 20_000);
      const err = c.messages.slice(fromMsg).find((m) => m.name === 'error');
      const fields = err && err.name === 'error' ? Object.fromEntries(err.fields) : {};
      expect(fields.S).toBe('FATAL');
      expect(fields.C).toBe('22P02');
      expect(fields.M).toContain('withheld');
      expect(Buffer.concat(c.rawBytes.slice(from)).includes(Buffer.from(SECRET))).toBe(false);
    } finally {
      c.destroy();
    }
  });

  for (const extended of [false, true]) {
    const protocol = extended ? 'extended' : 'simple';
    it(`column masks: the server's text is withheld, SQLSTATE kept (${protocol} protocol)`, async () => {
      const c = await RawClient.login(gwCols.gateway.postgresPort, await gwCols.token(), gwCols.resourceName);
      try {
        const secret = Buffer.from(SECRET);
        const cast = await run(c, 'SELECT id FROM rls_cast', extended);
        expect(cast.bytes.includes(secret)).toBe(false);
        expect(cast.errors).toHaveLength(1);
        expect(cast.errors[0]!.C).toBe('22P02');
        expect(cast.errors[0]!.M).toContain('withheld');

        const notice = await run(c, 'SELECT id FROM rls_notice', extended);
        expect(notice.bytes.includes(secret)).toBe(false);
        expect(notice.errors).toEqual([]);
        expect(notice.notices.length).toBeGreaterThan(0);
        expect(notice.notices[0]!.M).toContain('withheld');

        const trigger = await run(c, 'INSERT INTO trig_log VALUES (1)', extended);
        expect(trigger.bytes.includes(secret)).toBe(false);
        expect(trigger.errors[0]!.C).toBe('P0001');

        // A deferred trigger's notice comes at the implicit COMMIT (the extended protocol: at Sync).
        const deferred = await run(c, 'INSERT INTO trig_deferred VALUES (1)', extended);
        expect(deferred.bytes.includes(secret)).toBe(false);
        expect(deferred.errors).toEqual([]);
        expect(deferred.notices[0]!.M).toContain('withheld');
        // ... also when a clear statement comes last in the message.
        if (!extended) {
          const last = await run(c, 'INSERT INTO trig_deferred VALUES (4); SELECT 1', extended);
          expect(last.bytes.includes(secret)).toBe(false);
          expect(last.notices[0]!.M).toContain('withheld');
        }
        // ... or at an explicit COMMIT, or at SET CONSTRAINTS ... IMMEDIATE.
        await run(c, 'BEGIN', extended);
        await run(c, 'INSERT INTO trig_deferred VALUES (2)', extended);
        const commit = await run(c, 'COMMIT', extended);
        expect(commit.bytes.includes(secret)).toBe(false);
        expect(commit.notices[0]!.M).toContain('withheld');
        await run(c, 'BEGIN', extended);
        await run(c, 'INSERT INTO trig_deferred VALUES (3)', extended);
        const immediate = await run(c, 'SET CONSTRAINTS ALL IMMEDIATE', extended);
        await run(c, 'ROLLBACK', extended);
        expect(immediate.bytes.includes(secret)).toBe(false);
        expect(immediate.notices[0]!.M).toContain('withheld');

        // A statement that reads no masked column keeps the server's own message.
        const clear = await run(c, "SELECT 'abc'::int", extended);
        expect(clear.errors[0]!.M).toBe('invalid input syntax for type integer: "abc"');
        expect(clear.errors[0]!.P).toBe('8');
      } finally {
        c.destroy();
      }
      // The audit log and the recording keep only the SQLSTATE of a masked statement's error: one
      // record of the trigger's failure in each per protocol run so far.
      const runs = extended ? 2 : 1;
      const stored = () => readdirSync(gwCols.stateDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => readFileSync(join(e.parentPath, e.name), 'utf8')).join('\n');
      const deadline = Date.now() + 15_000;
      while ((stored().match(/withheld \(SQLSTATE P0001\)/g)?.length ?? 0) < 2 * runs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(stored().includes(SECRET)).toBe(false);
      expect(stored().match(/withheld \(SQLSTATE P0001\)/g)?.length ?? 0).toBeGreaterThanOrEqual(2 * runs);
    });

    it(`content detectors mask the server's text like row values (${protocol} protocol)`, async () => {
      const c = await RawClient.login(gwDetect.gateway.postgresPort, await gwDetect.token(), gwDetect.resourceName);
      try {
        const card = await run(c, 'SELECT card_number::int FROM customers WHERE id = 1', extended);
        expect(card.bytes.includes(Buffer.from(SENTINEL.card))).toBe(false);
        expect(card.errors[0]!.C).toBe('22003');
        expect(card.errors[0]!.M).toMatch(/^value ".+" is out of range for type integer$/);
        const ssn = await run(c, 'SELECT ssn::date FROM customers WHERE id = 1', extended);
        expect(ssn.bytes.includes(Buffer.from(SENTINEL.ssn))).toBe(false);
        expect(ssn.errors[0]!.C).toBe('22008');
        const raised = await run(c, `DO $$ BEGIN RAISE NOTICE 'card %', '${SENTINEL.card}' USING DETAIL = 'ssn ${SENTINEL.ssn}'; END $$`, extended);
        expect(raised.bytes.includes(Buffer.from(SENTINEL.card))).toBe(false);
        expect(raised.bytes.includes(Buffer.from(SENTINEL.ssn))).toBe(false);
        expect(raised.notices[0]!.M).toMatch(/^card /);
      } finally {
        c.destroy();
      }
    });
  }
});

describe('implicit operators (issue 14 items 4/5, same family)', () => {
  // `CASE x WHEN v` runs the operator `x = v` resolves to, and BETWEEN runs >= and <=: a
  // user-defined version gets every masked value it compares.
  const POLICY_EMAIL = `${ALLOW_EVERYTHING}
rule mask_email {
  match sql read
  mask column "customers.email" with email
}
`;
  it('CASE x WHEN, BETWEEN, IN/ANY (subquery) and JOIN USING with a user-defined comparison operator are refused', async () => {
    const masker5 = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
    const gw5 = await startTestGateway(cluster, POLICY_EMAIL, { masker: masker5 }, 'prod-implicit-ops');
    cluster.psql(
      `CREATE TABLE stash2 (v text); GRANT ALL ON stash2 TO ${cluster.appUser.user};
       CREATE FUNCTION text_int_cmp(text, int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.stash2 VALUES ($1); RETURN false; END $$;
       CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = int, FUNCTION = text_int_cmp);
       CREATE OPERATOR public.>= (LEFTARG = text, RIGHTARG = int, FUNCTION = text_int_cmp);
       CREATE OPERATOR public.<= (LEFTARG = text, RIGHTARG = int, FUNCTION = text_int_cmp);`,
      cluster.appUser.database,
    );
    const c = await RawClient.login(gw5.gateway.postgresPort, await gw5.token(), gw5.resourceName);
    try {
      const codes: (string | undefined)[] = [];
      const statements = [
        "SELECT CASE email WHEN 1 THEN 'a' END FROM customers",
        'SELECT id FROM customers WHERE email BETWEEN 1 AND 2',
        'SELECT id FROM customers WHERE email IN (SELECT 1)',
        'SELECT id FROM customers WHERE email = ANY (SELECT 1)',
        'SELECT c.id FROM customers c JOIN (SELECT 1 AS email) x USING (email)',
      ];
      for (const sql of statements) {
        const from = c.messages.length;
        c.query(sql);
        if (!(await c.until(() => c.messages.slice(from).some((m) => m.name === 'readyForQuery'), 20_000))) throw new Error(`no ReadyForQuery for ${sql}`);
        const err = c.messages.slice(from).find((m) => m.name === 'error');
        codes.push(err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined);
      }
      expect(cluster.psql('SELECT count(*) FROM stash2', cluster.appUser.database).trim()).toBe('0');
      expect(codes).toEqual(statements.map(() => '42501'));
    } finally {
      c.destroy();
      cluster.psql('DROP OPERATOR public.= (text, int); DROP OPERATOR public.>= (text, int); DROP OPERATOR public.<= (text, int); DROP FUNCTION text_int_cmp(text, int)', cluster.appUser.database);
      await gw5.close();
      await masker5.close();
    }
  });
});
