// Connections that have not authenticated (issue 14, item 12): a peer without a valid token cannot
// make the gateway buffer megabytes, keep a socket forever, or hold every slot. Each refusal is
// audited as `connection_refused` with its reason and counted in /metrics; authenticated sessions
// are not affected.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { DEFAULT_LIMITS } from '../limits.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from './wire/startup.ts';

let cluster: Cluster;
let gw: TestGateway;
let metrics: Metrics;
let token: string;

const LIMITS = {
  ...DEFAULT_LIMITS,
  authenticationTimeoutMs: 1500,
  maxPasswordMessage: 4096,
  maxUnauthenticatedBytes: 8192,
  maxUnauthenticatedPerClient: 3,
};

beforeAll(async () => {
  cluster = await startCluster();
  metrics = createMetrics();
  gw = await startTestGateway(cluster, ALLOW_ALL, { metrics }, 'prod-main', (c) => {
    c.limits = LIMITS;
  });
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

const port = (): number => gw.gateway.postgresPort;
const startup = (): Buffer => encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'raw', database: gw.resourceName } });

function refusal(reason: string): { reason?: string; type: string; client_addr?: string } | undefined {
  return gw.audit.records.find((r) => r.type === 'connection_refused' && r.reason?.startsWith(`${reason}:`));
}

function refusedMetric(reason: string): number {
  const m = new RegExp(`^hoop_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics.render());
  return m ? Number(m[1]) : 0;
}

/** Opens a raw connection and waits until the gateway has either kept it open or refused it. */
async function awaitingToken(): Promise<RawClient> {
  const c = await RawClient.open(port());
  c.send(startup());
  await c.until((m) => m.name === 'authenticationCleartextPassword' || m.name === 'error');
  return c;
}

describe('before authentication', () => {
  it('a password message longer than the token limit is refused at its header, audited and counted', async () => {
    const c = await awaitingToken();
    // The header of a 1 MiB "password"; the gateway must not wait for (or buffer) the body.
    const header = Buffer.alloc(5);
    header[0] = 0x70;
    header.writeInt32BE(1024 * 1024 + 4, 1);
    c.send(header);
    expect(await c.waitClosed(5000)).toBe(true);
    expect(c.error()).toMatchObject({ S: 'FATAL', C: '08P01' });
    expect(c.error()?.M).toMatch(/password message \(1048580 bytes\) exceeds the limit of 4096 bytes/);
    expect(refusal('password_too_large')).toMatchObject({ client_addr: '127.0.0.1' });
    expect(refusedMetric('password_too_large')).toBe(1);
  });

  it('a connection that never sends its token is closed after the authentication timeout', async () => {
    const c = await awaitingToken();
    const t0 = Date.now();
    expect(await c.waitClosed(10_000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(c.error()).toMatchObject({ S: 'FATAL', C: '08006', M: 'hoop: authentication timed out after 1.5s' });
    expect(refusal('authentication_timeout')).toBeDefined();
    expect(refusedMetric('authentication_timeout')).toBeGreaterThanOrEqual(1);
  });

  it('bytes sent before authentication are capped (an endless run of SSLRequests)', async () => {
    const c = await RawClient.open(port());
    c.framing = false;
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    c.send(Buffer.concat(Array.from({ length: 2000 }, () => ssl)));
    expect(await c.waitClosed(5000)).toBe(true);
    expect(refusal('unauthenticated_bytes')).toBeDefined();
    expect(refusedMetric('unauthenticated_bytes')).toBe(1);
    // The run was not answered 2,000 times: it ended with the gateway's refusal.
    const reply = Buffer.concat(c.rawBytes).toString('latin1');
    expect(reply).toMatch(/FATAL.*C54000.*more than 8192 bytes sent before authentication/s);
    expect(reply.split('N').length - 1).toBeLessThan(2000);
  });

  it('unauthenticated connections per client address are capped; authenticated ones do not count', async () => {
    const authenticated = new pg.Client(gw.pgConfig(token));
    await authenticated.connect();
    const idle = [await awaitingToken(), await awaitingToken(), await awaitingToken()];
    for (const c of idle) expect(c.error()).toBeUndefined();
    const extra = await awaitingToken();
    expect(await extra.waitClosed(5000)).toBe(true);
    expect(extra.error()).toMatchObject({ S: 'FATAL', C: '53300', M: 'hoop: too many unauthenticated connections from 127.0.0.1' });
    expect(refusal('too_many_unauthenticated')).toBeDefined();
    expect(refusedMetric('too_many_unauthenticated')).toBe(1);
    // The authenticated session is unaffected.
    expect((await authenticated.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    // Once one of them goes away, its slot is free again (the gateway notices the close).
    idle.pop()!.destroy();
    let client: pg.Client | undefined;
    for (const deadline = Date.now() + 5000; !client && Date.now() < deadline; ) {
      const c = new pg.Client(gw.pgConfig(token));
      try {
        await c.connect();
        client = c;
      } catch (e) {
        expect((e as { code?: string }).code).toBe('53300');
      }
    }
    expect((await client!.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await client!.end();
    for (const c of idle) c.destroy();
    await authenticated.end();
  });

  it('a Terminate before any startup packet closes the connection without an error, like PostgreSQL', async () => {
    const c = await RawClient.open(port());
    c.framing = false;
    c.send(encodeFrontend({ name: 'terminate' }));
    expect(await c.waitClosed(5000)).toBe(true);
    expect(Buffer.concat(c.rawBytes).length).toBe(0);
    expect(refusal('invalid_startup_packet')).toBeDefined();
  });
});
