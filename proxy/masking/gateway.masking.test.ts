// End to end through the real gateway, in ONE long session per protocol (simple/text and
// extended/binary): column masks and content detectors together, every corpus statement inside a
// transaction that is rolled back, and no byte the gateway sends contains a sentinel. Statements
// the corpus says must be blocked get 42501 and the session keeps working afterwards.

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
