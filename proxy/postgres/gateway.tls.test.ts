// TLS on both legs: clients terminate TLS at the gateway (SSLRequest → 'S'), and the gateway
// speaks TLS to an upstream that has it enabled.

import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, run, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeStartup } from './wire/startup.ts';

let cluster: Cluster;
let gw: TestGateway;
let token: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hoop-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    for (const f of ['', 'key.pem', 'cert.pem']) chownSync(join(dir, f), uid, gid);
  }
  cluster = await startCluster({ config: ['ssl = on', `ssl_cert_file = '${join(dir, 'cert.pem')}'`, `ssl_key_file = '${join(dir, 'key.pem')}'`] });
  gw = await startTestGateway(cluster, ALLOW_ALL, {}, 'secure', (c) => {
    c.tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    c.resources[0]!.tls = { mode: 'verify-full', ca: join(dir, 'cert.pem'), servername: 'localhost' };
  });
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('psql with sslmode=verify-full reaches the gateway over TLS, and the gateway reaches the upstream over TLS', async () => {
    const conninfo = `host=localhost port=${gw.gateway.postgresPort} dbname=secure user=agent-7 password=${token} sslmode=verify-full sslrootcert=${join(dir, 'cert.pem')}`;
    const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', conninfo]);
    expect(r).toMatchObject({ code: 0, stdout: 't\n' });
  });

  it('SSLRequest is answered with S when TLS is configured', async () => {
    const c = await RawClient.open(gw.gateway.postgresPort);
    c.framing = false;
    c.send(encodeStartup({ name: 'sslRequest' }));
    await new Promise((r) => setTimeout(r, 200));
    expect(Buffer.concat(c.rawBytes).toString()).toBe('S');
    c.destroy();
  });

  it('plaintext bytes pipelined after SSLRequest are refused', async () => {
    const c = await RawClient.open(gw.gateway.postgresPort);
    c.framing = false;
    c.send(Buffer.concat([encodeStartup({ name: 'sslRequest' }), Buffer.from('GET / HTTP/1.0\r\n')]));
    expect(await c.waitClosed()).toBe(true);
    expect(Buffer.concat(c.rawBytes).toString()).not.toMatch(/^S/);
  });

  it('a cancel reaches a TLS upstream over TLS too (the backend key never crosses the network in clear)', async () => {
    // A relay in front of the TLS upstream notes how every connection to it starts.
    const openings: string[] = [];
    const relay: Server = createServer((down) => {
      const up = connect(cluster.port, '127.0.0.1');
      down.once('data', (b: Buffer) => openings.push(b.subarray(0, 8).toString('hex')));
      down.pipe(up).pipe(down);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const relayPort = (relay.address() as { port: number }).port;
    const gw2 = await startTestGateway(cluster, ALLOW_ALL, {}, 'secure-relay', (c) => {
      c.resources[0]!.upstream = `postgres://127.0.0.1:${relayPort}/${cluster.appUser.database}`;
      c.resources[0]!.tls = { mode: 'verify-full', ca: join(dir, 'cert.pem'), servername: 'localhost' };
    });
    try {
      const c = await RawClient.login(gw2.gateway.postgresPort, await gw2.token(), 'secure-relay');
      const key = c.messages.find((m) => m.name === 'backendKeyData');
      if (!key || key.name !== 'backendKeyData') throw new Error('no BackendKeyData');
      c.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      const canceller = await RawClient.open(gw2.gateway.postgresPort);
      canceller.send(encodeStartup({ name: 'cancelRequest', pid: key.pid, secret: key.secret }));
      const err = await c.until((m) => m.name === 'error', 15_000);
      expect(err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined).toBe('57014');
      c.destroy();
      canceller.destroy();
      // The session's connection and the cancel's: both began with SSLRequest (length 8, code 80877103).
      expect(openings.length).toBeGreaterThanOrEqual(2);
      expect(new Set(openings)).toEqual(new Set(['0000000804d2162f']));
    } finally {
      await gw2.close();
      relay.close();
    }
  });
  it('an unreadable upstream CA file fails the connection with a reason that names it, and the gateway goes on', async () => {
    const gw3 = await startTestGateway(cluster, ALLOW_ALL, {}, 'secure-missing-ca', (c) => {
      c.resources[0]!.tls = { mode: 'verify-full', ca: join(dir, 'no-such-ca.pem'), servername: 'localhost' };
    });
    try {
      for (let i = 0; i < 2; i++) {
        const c = new pg.Client(gw3.pgConfig(await gw3.token()));
        c.on('error', () => undefined);
        await expect(c.connect()).rejects.toThrow(/no-such-ca\.pem/);
        await c.end().catch(() => undefined);
      }
    } finally {
      await gw3.close();
    }
  });
});
