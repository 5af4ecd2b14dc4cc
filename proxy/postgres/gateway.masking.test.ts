// Masking end to end: the masking corpus (proxy/masking/corpus.ts) sent through the gateway in
// the simple protocol (text results) and the extended protocol (binary results). Sentinel values
// of masked columns must never appear in any byte the gateway sends; statements the masker cannot
// follow are refused with 42501 before they run.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { CORPUS, SENTINEL, SETUP_SQL } from '../masking/corpus.ts';
import { RawClient } from './raw-client.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

// Everything the classifier understands is allowed; \`unknown\` is not (with \`default allow\` an
// unknown statement, e.g. query_to_xml('select email ...'), matches no mask rule and would run).
const POLICY = `package t
default block "not understood"

rule anything_understood {
  match sql read, write, copy_to, set, transaction, explain, utility
  allow
}

rule pii {
  mask column "customers.email" with email
  mask column "customers.card_number" with last4
  mask column "customers.ssn" with redact
  mask column "events.contact" with redact
  mask column "v_contacts.contact_name" with redact
}
`;

let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(`SET ROLE app; ${SETUP_SQL}`, 'app');
  masker = createResultMasker({
    catalogFor: () => ({ connection: { host: '127.0.0.1', port: cluster.port, user: cluster.appUser.user, password: cluster.appUser.password, database: 'app' } }),
  });
  gw = await startTestGateway(cluster, POLICY, { masker });
  token = await gw.token();
});

afterAll(async () => {
  simpleClient?.destroy();
  extendedClient?.destroy();
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

const secrets = [SENTINEL.email, SENTINEL.card, SENTINEL.ssn];

function leaks(bytes: Buffer): string[] {
  const text = bytes.toString('latin1');
  return secrets.filter((s) => text.includes(s));
}

// One session per protocol for the whole corpus: a refused statement leaves the session usable.
let simpleClient: RawClient | undefined;
let extendedClient: RawClient | undefined;

async function fresh(c: RawClient | undefined): Promise<RawClient> {
  if (c && !c.closed) return c;
  return RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
}

/** Runs `send` on the client and returns the bytes the gateway sent back up to ReadyForQuery. */
async function exchange(c: RawClient, send: () => void): Promise<RawClient> {
  c.rawBytes.length = 0;
  c.messages.length = 0;
  send();
  await c.until((m) => m.name === 'readyForQuery');
  return c;
}

async function simple(sql: string): Promise<RawClient> {
  simpleClient = await fresh(simpleClient);
  return exchange(simpleClient, () => simpleClient!.query(sql));
}

async function extendedBinary(sql: string): Promise<RawClient> {
  extendedClient = await fresh(extendedClient);
  const c = extendedClient;
  return exchange(c, () =>
    c.send(
      Buffer.concat([
        encodeFrontend({ name: 'parse', statement: '', text: sql, paramTypes: [] }),
        encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [1] }),
        encodeFrontend({ name: 'describe', target: 'P', objectName: '' }),
        encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
        encodeFrontend({ name: 'sync' }),
      ]),
    ),
  );
}

describe('masking through the gateway', () => {
  it('the corpus has enough attempts', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
  });

  it('the sentinels are really there when nothing is masked (control)', () => {
    const out = cluster.psql('SELECT email, card_number, ssn FROM customers ORDER BY id LIMIT 1', 'app');
    expect(leaks(Buffer.from(out))).toEqual(secrets);
  });

  it.each(CORPUS.map((c) => [c.sql, c] as const))('simple, text: %s', async (_sql, c) => {
    const client = await simple(c.sql);
    expect(leaks(Buffer.concat(client.rawBytes))).toEqual([]);
    const err = client.error();
    if (c.expect === 'block') expect(err?.C).toBe('42501');
    else expect(err, JSON.stringify(err)).toBeUndefined();
  });

  it.each(CORPUS.map((c) => [c.sql, c] as const))('extended, binary: %s', async (_sql, c) => {
    const client = await extendedBinary(c.sql);
    expect(leaks(Buffer.concat(client.rawBytes))).toEqual([]);
    if (c.expect === 'block') expect(client.error()?.C).toBe('42501');
  });

  it('masked values keep their shape where the masker says so (last4)', async () => {
    const client = await simple('SELECT card_number FROM customers ORDER BY id');
    const rows = client.messages.filter((m) => m.name === 'dataRow');
    expect(rows.length).toBe(2);
    const first = rows[0]!.name === 'dataRow' ? rows[0]!.values[0]!.toString() : '';
    expect(first.endsWith('6783')).toBe(true);
    expect(first).not.toBe(SENTINEL.card);
  });
});
