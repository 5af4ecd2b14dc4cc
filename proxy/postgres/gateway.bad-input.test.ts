// Bad input and failures: garbage, truncated and oversized messages, missing or forged tokens, a
// token expiring mid-session, an unreachable or dying upstream, a client that vanishes or stops
// reading mid-result. Each time: a clear error to that client only, the rejection audited, the
// gateway up, and a bystander session unaffected.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openDevIssuer } from '../identity/index.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend, encodePassword } from './wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from './wire/startup.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;
let bystander: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, ALLOW_ALL);
  token = await gw.token();
  bystander = new pg.Client(gw.pgConfig(token));
  await bystander.connect();
});

afterAll(async () => {
  await bystander?.end().catch(() => undefined);
  await gw?.close();
  await cluster?.stop();
});

// After every scenario the gateway still serves, and the long-lived bystander session still works.
afterEach(async () => {
  expect((await bystander.query('SELECT $1::int AS alive', [1])).rows).toEqual([{ alive: 1 }]);
  const fresh = new pg.Client(gw.pgConfig(token));
  await fresh.connect();
  expect((await fresh.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  await fresh.end();
});

const port = (): number => gw.gateway.postgresPort;

function refusals(): { reason?: string }[] {
  return gw.audit.records.filter((r) => r.type === 'connection_refused');
}

describe('garbage on the wire', () => {
  it('random bytes instead of a startup packet: the connection is closed', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.open(port());
      c.send(randomBytes(1 + Math.floor(Math.random() * 300)));
      c.socket.end();
      expect(await c.waitClosed()).toBe(true);
    }
  });

  it('random bytes after authentication: a protocol error to that client only', async () => {
    const c = await RawClient.login(port(), token, gw.resourceName);
    c.send(Buffer.concat([Buffer.from([0x7e, 0, 0, 0, 8]), randomBytes(4)]));
    expect(await c.waitClosed()).toBe(true);
    expect(c.error()).toMatchObject({ S: 'FATAL', C: '08P01' });
  });

  it('a truncated startup packet and a truncated message: the half-message is never acted on', async () => {
    const a = await RawClient.open(port());
    a.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'x', database: gw.resourceName } }).subarray(0, 12));
    a.socket.end();
    expect(await a.waitClosed()).toBe(true);
    expect(a.messages).toEqual([]);

    const b = await RawClient.login(port(), token, gw.resourceName);
    const before = gw.audit.records.length;
    b.send(encodeFrontend({ name: 'query', text: 'SELECT 1' }).subarray(0, 8));
    b.socket.end();
    expect(await b.waitClosed()).toBe(true);
    expect(gw.audit.records.slice(before).filter((r) => r.type === 'decision')).toEqual([]);
  });

  it('an oversized message is refused at its header with a protocol error', async () => {
    const c = await RawClient.login(port(), token, gw.resourceName);
    c.send(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xf0]));
    expect(await c.waitClosed()).toBe(true);
    expect(c.error()?.M).toMatch(/exceeds the gateway's limit/);
    const big = await RawClient.open(port());
    big.send(Buffer.from([0x00, 0x10, 0x00, 0x00, 0, 3, 0, 0]));
    // An oversized startup packet: closed without a word, as PostgreSQL does ("invalid length of
    // startup packet" is only logged), and audited.
    expect(await big.waitClosed()).toBe(true);
    expect(big.messages).toEqual([]);
    expect(refusals().some((r) => r.reason?.startsWith('invalid_startup_packet:'))).toBe(true);
  });

  it('a newer 3.x protocol version is negotiated down to 3.0, as PostgreSQL does', async () => {
    const c = await RawClient.open(port());
    c.send(encodeStartup({ name: 'startup', version: (3 << 16) | 2, params: { user: 'agent-7', database: gw.resourceName, '_pq_.future': 'on' } }));
    expect(await c.until((m) => m.name === 'authenticationCleartextPassword')).toBeDefined();
    expect(c.messages[0]).toEqual({ name: 'negotiateProtocolVersion', minor: 0, options: ['_pq_.future'] });
    c.send(encodePassword(token));
    expect(await c.until((m) => m.name === 'readyForQuery')).toBeDefined();
    c.destroy();
  });

  it('GSSENCRequest is refused with N and SSLRequest without TLS configured gets N', async () => {
    for (const name of ['gssEncRequest', 'sslRequest'] as const) {
      const c = await RawClient.open(port());
      c.framing = false;
      c.send(encodeStartup({ name }));
      await new Promise((r) => setTimeout(r, 200));
      expect(Buffer.concat(c.rawBytes).toString()).toBe('N');
      c.destroy();
    }
  });
});

describe('tokens', () => {
  async function loginWith(password: string | null): Promise<RawClient> {
    const c = await RawClient.open(port());
    c.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'agent-7', database: gw.resourceName } }));
    await c.until((m) => m.name === 'authenticationCleartextPassword');
    c.send(password === null ? encodePassword('') : encodePassword(password));
    await c.waitClosed();
    return c;
  }

  it('no token: 28P01, audited', async () => {
    const n = refusals().length;
    const c = await loginWith(null);
    expect(c.error()).toMatchObject({ S: 'FATAL', C: '28P01' });
    expect(c.error()?.M).toContain('no token');
    expect(refusals().slice(n)).toEqual([expect.objectContaining({ reason: expect.stringContaining('no_token') })]);
  });

  it('a token signed by another key: refused, audited with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-other-'));
    try {
      const other = await openDevIssuer(dir);
      const forged = await other.mint({ sub: 'mallory', groups: ['dba'] });
      const n = refusals().length;
      const c = await loginWith(forged);
      expect(c.error()).toMatchObject({ C: '28P01' });
      expect(c.error()?.M).toMatch(/token rejected/);
      expect(refusals().length).toBe(n + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('garbage instead of a token: refused', async () => {
    const c = await loginWith('not-a-jwt');
    expect(c.error()).toMatchObject({ C: '28P01' });
  });

  it('a token expiring mid-session ends the session with a clear error before the next statement', async () => {
    const short = await gw.issuer.mint({ sub: 'agent-7', groups: ['data-reader'], ttlMs: 1500 });
    const c = new pg.Client(gw.pgConfig(short));
    c.on('error', () => undefined);
    await c.connect();
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    // `exp` has one-second resolution: wait until just past it.
    const exp = (JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 150));
    const n = gw.audit.records.length;
    await expect(c.query('SELECT 1 AS ok')).rejects.toThrow(/token has expired/);
    expect(gw.audit.records.slice(n).some((r) => r.type === 'decision')).toBe(false);
    await c.end().catch(() => undefined);
  });

  it('settings that would bypass the classifier are refused at startup, in parameters and in options', async () => {
    const refusedWith = async (params: Record<string, string>): Promise<RawClient> => {
      const c = await RawClient.open(port());
      c.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'agent-7', database: gw.resourceName, ...params } }));
      await c.waitClosed();
      return c;
    };
    // A client-only encoding can hide a backslash or quote inside a multi-byte character.
    expect((await refusedWith({ client_encoding: 'SJIS' })).error()).toMatchObject({ C: '42501', M: expect.stringContaining('client_encoding') });
    expect((await refusedWith({ options: '-c session_replication_role=replica' })).error()).toMatchObject({ C: '42501', M: expect.stringContaining('session_replication_role') });
    expect((await refusedWith({ standard_conforming_strings: 'off' })).error()).toMatchObject({ C: '42501' });
    const ok = new pg.Client({ ...gw.pgConfig(token), options: '-c statement_timeout=5000' });
    await ok.connect();
    expect((await ok.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '5s' }]);
    await ok.end();
  });

  it('options are read as the server reads them: clustered switches cannot smuggle a setting past the check (issue 14 item 1)', async () => {
    const connectWith = async (options: string): Promise<unknown> => {
      const c = new pg.Client({ ...gw.pgConfig(token), options });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.end();
        return 'connected';
      } catch (e) {
        return { code: (e as { code?: string }).code, message: (e as Error).message };
      }
    };
    // getopt clusters `-n` (ignored) with `-c`, and `--NAME` after `-n`; a backslash joins words.
    expect(await connectWith('-nc standard_conforming_strings=off')).toMatchObject({ code: '42501', message: expect.stringContaining('standard_conforming_strings') });
    expect(await connectWith('-ncclient_encoding=SJIS')).toMatchObject({ code: '42501', message: expect.stringContaining('client_encoding') });
    expect(await connectWith('-n-role=postgres')).toMatchObject({ code: '42501', message: expect.stringContaining('role') });
    expect(await connectWith('-Tc session_authorization=postgres')).toMatchObject({ code: '42501' });
    expect(await connectWith('-sc backslash_quote=on')).toMatchObject({ code: '42501' });
    // What the gateway cannot read exactly (the server would refuse it too) is refused.
    expect(await connectWith('-c statement_timeout')).toMatchObject({ code: '42601', message: expect.stringContaining('requires a value') });
    expect(await connectWith('stray -c statement_timeout=1')).toMatchObject({ code: '42601' });
    // Harmless clustered settings still reach the server, as the server would read them.
    const ok = new pg.Client({ ...gw.pgConfig(token), options: '-nc statement_timeout=4000 -e' });
    await ok.connect();
    expect((await ok.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '4s' }]);
    expect((await ok.query('SHOW DateStyle')).rows).toEqual([{ DateStyle: 'ISO, DMY' }]);
    await ok.end();
  });

  it('an unknown resource name is refused with 3D000', async () => {
    const c = new pg.Client({ ...gw.pgConfig(token), database: 'no-such-resource' });
    await expect(c.connect()).rejects.toMatchObject({ code: '3D000' });
  });
});

describe('upstream failures', () => {
  it('upstream down: a clear error quickly, no hang', async () => {
    const dead = await freePort();
    const down = await startTestGateway({ ...cluster, port: dead }, ALLOW_ALL, {}, 'down');
    try {
      const c = new pg.Client(down.pgConfig(await down.token()));
      const started = Date.now();
      await expect(c.connect()).rejects.toThrow(/resource "down" is unavailable: cannot reach the upstream server/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(down.audit.records.filter((r) => r.type === 'connection_refused')).toHaveLength(1);
    } finally {
      await down.close();
    }
  });

  it('upstream killed mid-query: the client gets an error, not a hang', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    c.on('error', () => undefined);
    await c.connect();
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const slow = c.query('SELECT pg_sleep(20)');
    await new Promise((r) => setTimeout(r, 300));
    cluster.psql(`SELECT pg_terminate_backend(${pid})`);
    const started = Date.now();
    await expect(slow).rejects.toThrow(/terminating connection due to administrator command|connection to the upstream server was lost|Connection terminated/);
    expect(Date.now() - started).toBeLessThan(5000);
    await c.end().catch(() => undefined);
  });

  it('a client that disappears mid-result: the upstream query is stopped', async () => {
    const c = await RawClient.login(port(), token, gw.resourceName);
    c.query("SELECT g, repeat('x', 200) FROM generate_series(1, 20000000) g /* vanishing */");
    await c.until((m) => m.name === 'dataRow');
    c.destroy();
    const deadline = Date.now() + 10_000;
    let active = '1';
    while (Date.now() < deadline) {
      active = cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%vanishing%' AND pid <> pg_backend_pid()").trim();
      if (active === '0') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(active).toBe('0');
  });

  it('a client that stops reading: the upstream is paused (backpressure), not buffered in the gateway', async () => {
    const c = await RawClient.login(port(), token, gw.resourceName);
    const rssBefore = process.memoryUsage().rss;
    c.socket.pause();
    c.query("SELECT g, repeat('y', 500) FROM generate_series(1, 2000000) g /* slowreader */");
    // ~1 GB of result: PostgreSQL must end up blocked writing to the gateway.
    const deadline = Date.now() + 15_000;
    let wait = '';
    while (Date.now() < deadline) {
      wait = cluster.psql("SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE query LIKE '%slowreader%' AND pid <> pg_backend_pid()").trim();
      if (wait === 'ClientWrite') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(wait).toBe('ClientWrite');
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    c.destroy();
  });
});
