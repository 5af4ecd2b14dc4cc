// Large values (issue 14, item 15): PostgreSQL allows a field of up to 1 GB, and the gateway used to
// close the connection on any message over its 64 MiB decode cap. DataRow (unless its rows are
// masked), Bind and CopyData now stream through in pieces; a masked row is still decoded whole
// (within limits.max_message_size; beyond it the result is refused, not leaked). Real driver and
// psql, real PostgreSQL. One cluster; the values are 40–70 MB, so each test moves a few hundred MB.

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { RawClient } from './raw-client.ts';
import { run, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

const POLICY = `package t
default block "not allowed"

rule everything {
  match sql select, insert, copy_from, copy_to, ddl, set, transaction, utility
  allow
}

rule mask_secrets {
  match sql select
  mask column "vault.secret" with redact
}
`;

const MB = 1_000_000;
let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;
let client: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query('CREATE TABLE notes (id serial, body text); CREATE TABLE blobs (id serial, b bytea); CREATE TABLE vault (id int, secret text)');
  await setup.end();
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker }, 'prod-main', (c) => {
    c.limits = { ...DEFAULT_LIMITS, maxStatementSize: 4 * 1024 * 1024 };
  });
  client = new pg.Client(gw.pgConfig(await gw.token()));
  await client.connect();
}, 180_000);

afterAll(async () => {
  await client?.end();
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex');

describe('values larger than the decode cap pass through', () => {
  it('a 70 MB text value selected', async () => {
    const r = await client.query<{ v: string }>(`SELECT repeat('ab', ${35 * MB}) AS v`);
    expect(r.rows[0]!.v.length).toBe(70 * MB);
    expect(md5(r.rows[0]!.v)).toBe(md5('ab'.repeat(35 * MB)));
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a 70 MB text value as a Bind parameter', async () => {
    const value = 'xy'.repeat(35 * MB);
    const r = await client.query<{ n: number; h: string }>('SELECT length($1::text) AS n, md5($1::text) AS h', [value]);
    expect(r.rows[0]).toEqual({ n: 70 * MB, h: md5(value) });
  });

  it('a 40 MB bytea (80 MB as hex) as a parameter and selected back', async () => {
    const blob = Buffer.alloc(40 * MB);
    for (let i = 0; i < blob.length; i += 4096) blob[i] = i & 0xff;
    await client.query('INSERT INTO blobs (b) VALUES ($1)', [blob]);
    const r = await client.query<{ b: Buffer }>('SELECT b FROM blobs ORDER BY id DESC LIMIT 1');
    expect(r.rows[0]!.b.length).toBe(40 * MB);
    expect(md5(r.rows[0]!.b)).toBe(md5(blob));
  });

  it('COPY TO STDOUT of a 70 MB row (psql) and COPY FROM STDIN of a 70 MB CopyData message', async () => {
    const out = await run(join(cluster.binDir, 'psql'), [gw.conninfo(await gw.token()), '-Atc', `COPY (SELECT repeat('z', ${70 * MB})) TO STDOUT`]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.length).toBe(70 * MB + 1);

    const raw = await RawClient.login(gw.gateway.postgresPort, await gw.token(), gw.resourceName);
    try {
      raw.query('COPY notes (body) FROM STDIN');
      await raw.until((m) => m.name === 'copyInResponse');
      const line = Buffer.alloc(70 * MB + 1, 0x71);
      line[line.length - 1] = 0x0a;
      const from = raw.messages.length;
      raw.send(Buffer.concat([encodeFrontend({ name: 'copyData', data: line }), encodeFrontend({ name: 'copyDone' })]));
      await raw.until(() => raw.messages.slice(from).some((m) => m.name === 'readyForQuery'), 60_000);
      expect(raw.messages.slice(from).map((m) => m.name)).toEqual(['commandComplete', 'readyForQuery']);
    } finally {
      raw.destroy();
    }
    const r = await client.query<{ n: number }>('SELECT length(body) AS n FROM notes ORDER BY id DESC LIMIT 1');
    expect(r.rows[0]!.n).toBe(70 * MB);
  });
});

describe('messages the gateway must decode', () => {
  it('an error quoting a 70 MB value keeps its severity and SQLSTATE, its text replaced; the session carries on', async () => {
    const err = await client.query(`SELECT repeat('x', ${70 * MB})::int`).then(() => undefined, (e: Error & { code?: string; severity?: string }) => e);
    expect(err).toMatchObject({ code: '22P02', severity: 'ERROR' });
    expect(err!.message).toMatch(/^hoop: the server's error \(\d+ bytes\) is longer than the gateway relays \(limits.max_message_size 67108864\)$/);
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe('masked rows are still decoded', () => {
  it('a 2 MB masked value is masked; a 70 MB one refuses its result instead of passing unmasked', async () => {
    await client.query(`INSERT INTO vault VALUES (1, 'SENTINEL-' || repeat('s', ${2 * MB})), (2, 'SENTINEL-' || repeat('s', ${70 * MB}))`);
    const small = await client.query<{ secret: string }>('SELECT secret FROM vault WHERE id = 1');
    expect(small.rows[0]!.secret).not.toContain('SENTINEL');
    const err = await client.query('SELECT secret FROM vault WHERE id = 2').then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: '42501' });
    expect(err!.message).toMatch(/^hoop: blocked: a row of \d+ bytes is longer than the gateway can mask \(limits.max_message_size 67108864\)$/);
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a statement over 1 MiB whose verdict carries masks is refused (its data flow is not followed on the event loop)', async () => {
    const pad = 'p'.repeat(1100 * 1024);
    const err = await client.query(`SELECT secret FROM vault WHERE id = 1 AND '${pad}' <> ''`).then(() => undefined, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: '42501' });
    expect(err!.message).toMatch(/^hoop: blocked: masks are applied to statements of up to 1048576 characters; this one has \d+$/);
    // Without masks (an insert), the same length runs.
    await client.query(`INSERT INTO notes (body) SELECT 'short' WHERE '${pad}' <> ''`);
    // Masked and shorter, it runs, masked.
    const masked = await client.query<{ secret: string }>(`SELECT secret FROM vault WHERE id = 1 AND '${pad.slice(0, 500 * 1024)}' <> ''`);
    expect(masked.rows.some((r) => r.secret.includes('SENTINEL'))).toBe(false);
  });
});
