// A CancelRequest's connection closes only after the server has handled the cancel (issue 14,
// real clients: the driver matrix caught DBD::Pg's next statement being canceled). libpq's
// PQcancel returns when the server closes the cancel connection, having signalled the backend; if
// the gateway closed the client's side before forwarding, the cancel could land on whatever the
// client runs next.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeStartup } from './wire/startup.ts';

const CANCEL_CODE = 80877102;

let cluster: Cluster;
let gw: TestGateway;
let relay: Server;
/** Cancel connections the relay holds back until released. */
const held: { release(): void }[] = [];
let onHeld: (() => void) | undefined;

beforeAll(async () => {
  cluster = await startCluster();
  // A relay in front of the server that holds back a cancel connection's bytes.
  // allowHalfOpen: the gateway ends its side after writing the cancel; the server answers by closing.
  relay = createServer({ allowHalfOpen: true }, (down: Socket) => {
    const up = connect({ host: '127.0.0.1', port: cluster.port });
    let first = true;
    down.on('data', (b: Buffer) => {
      if (first && b.length >= 8 && b.readInt32BE(4) === CANCEL_CODE) {
        first = false;
        down.pause();
        held.push({ release: () => { up.write(b); up.end(); down.resume(); } });
        onHeld?.();
        return;
      }
      first = false;
      up.write(b);
    });
    up.on('data', (b) => down.write(b));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  const relayPort = (relay.address() as { port: number }).port;
  gw = await startTestGateway(cluster, ALLOW_ALL, {}, 'relayed', (c) => {
    c.resources[0]!.upstream = `postgres://127.0.0.1:${relayPort}/${cluster.appUser.database}`;
  });
});

afterAll(async () => {
  await gw?.close();
  relay?.close();
  await cluster?.stop();
});

it('the cancel connection stays open until the server has closed its own, then the query is canceled', async () => {
  const c = await RawClient.login(gw.gateway.postgresPort, await gw.token(), 'relayed');
  try {
    const key = c.messages.find((m) => m.name === 'backendKeyData');
    if (!key || key.name !== 'backendKeyData') throw new Error('no BackendKeyData');
    c.query('SELECT pg_sleep(30)');
    const events: string[] = [];
    const reachedServer = new Promise<void>((r) => (onHeld = r));
    const canceller = connect({ host: '127.0.0.1', port: gw.gateway.postgresPort }, () => canceller.write(encodeStartup({ name: 'cancelRequest', pid: key.pid, secret: key.secret })));
    const closed = new Promise<void>((r) => canceller.on('close', () => { events.push('client cancel connection closed'); r(); }));
    await reachedServer;
    // The cancel is held at the relay: the client's cancel connection must not close meanwhile.
    // Nothing signals "did not close", so give it a bounded moment (a close would take microseconds).
    await Promise.race([closed, new Promise((r) => setTimeout(r, 500))]);
    events.push('server got the cancel');
    held.shift()!.release();
    await closed;
    expect(events).toEqual(['server got the cancel', 'client cancel connection closed']);
    const err = await c.until((m) => m.name === 'error', 15_000);
    expect(err && err.name === 'error' ? Object.fromEntries(err.fields).C : undefined).toBe('57014');
  } finally {
    c.destroy();
  }
});
