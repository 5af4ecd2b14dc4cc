// Every refusal leaves an audit record (issue 14, item 14; DESIGN.md: one record per decision and
// per refused connection): a connection refused at startup for a forbidden parameter gets a
// `connection_refused` record and counts in /metrics; a message refused before any statement could
// be decided (a FunctionCall of an unknown OID, a Bind of a statement the gateway never decided)
// gets a `decision` record with the reason.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import type { BackendMessage } from './wire/backend.ts';
import { RawClient } from './raw-client.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from './wire/startup.ts';

let cluster: Cluster;
let gw: TestGateway;
let metrics: Metrics;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  metrics = createMetrics();
  gw = await startTestGateway(cluster, ALLOW_ALL, { metrics });
  token = await gw.token();
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

function refusedMetric(reason: string): number {
  const m = new RegExp(`^hoop_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics.render());
  return m ? Number(m[1]) : 0;
}

/** Sends `bytes` on a logged-in raw connection and returns the messages up to the next ReadyForQuery. */
async function exchange(c: RawClient, bytes: Buffer): Promise<BackendMessage[]> {
  const from = c.messages.length;
  c.send(bytes);
  await c.until(() => c.messages.slice(from).some((m) => m.name === 'readyForQuery'));
  return c.messages.slice(from);
}

function fields(m: BackendMessage | undefined): Record<string, string> | undefined {
  return m && m.name === 'error' ? Object.fromEntries(m.fields) : undefined;
}

/** The decision records of one session. */
function decisions(sessionId: string | undefined): { reason?: string; verdict?: string; outcome?: string }[] {
  return gw.audit.records.filter((r) => r.type === 'decision' && r.session_id === sessionId);
}

/** The session id of the connection that ran `marker` (a statement text unique to the test). */
function sessionOf(marker: string): string | undefined {
  return gw.audit.records.find((r) => r.type === 'decision' && r.statement?.normalized.includes(marker))?.session_id;
}

describe('connections refused at startup are audited and counted', () => {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['role', { role: 'postgres' }, 'forbidden_parameter', /startup parameter "role" is not allowed/],
    ['session_authorization', { session_authorization: 'postgres' }, 'forbidden_parameter', /startup parameter "session_authorization" is not allowed/],
    ['replication=database', { replication: 'database' }, 'replication', /replication connections are not supported/],
    ['options=-c session_replication_role=...', { options: '-c session_replication_role=replica' }, 'forbidden_setting', /session_replication_role/],
    ['client_encoding=SJIS', { client_encoding: 'SJIS' }, 'forbidden_setting', /client_encoding/],
    ['an options value that cannot be read', { options: '-c' }, 'unreadable_options', /options startup parameter is refused/],
  ];
  for (const [what, params, code, message] of cases) {
    it(what, async () => {
      const before = refusedMetric(code);
      const c = await RawClient.open(gw.gateway.postgresPort);
      c.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'raw', database: gw.resourceName, ...params } }));
      expect(await c.waitClosed(5000)).toBe(true);
      expect(c.error()).toMatchObject({ S: 'FATAL', M: expect.stringMatching(message) });
      const rec = gw.audit.records.find((r) => r.type === 'connection_refused' && r.reason?.startsWith(`${code}:`) && message.test(r.reason));
      expect(rec).toMatchObject({ outcome: 'refused', client_addr: '127.0.0.1' });
      expect(refusedMetric(code)).toBe(before + 1);
    });
  }
});

/** A FunctionCall message (no arguments, text result) for the function with this OID. */
function functionCall(oid: number): Buffer {
  const call = Buffer.alloc(15);
  call.write('F', 0);
  call.writeInt32BE(14, 1);
  call.writeUInt32BE(oid, 5);
  call.writeInt16BE(0, 9);
  call.writeInt16BE(0, 11);
  call.writeInt16BE(0, 13);
  return call;
}

describe('messages refused before a decision get a decision record', () => {
  it('a FunctionCall naming an unknown OID', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      await exchange(c, encodeFrontend({ name: 'query', text: 'SELECT 1 AS fcall_marker' }));
      const sid = sessionOf('fcall_marker');
      const out = await exchange(c, functionCall(4_000_000_000));
      expect(fields(out.find((m) => m.name === 'error'))).toMatchObject({ C: '42501', M: expect.stringContaining('no function has oid 4000000000') });
      expect(decisions(sid)).toContainEqual(expect.objectContaining({ verdict: 'block', outcome: 'blocked', reason: expect.stringContaining('no function has oid 4000000000') }));
    } finally {
      c.destroy();
    }
  });

  it('a Bind of a statement the gateway never decided (SQL-level PREPARE)', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      await exchange(c, encodeFrontend({ name: 'query', text: 'SELECT 1 AS bind_marker' }));
      const sid = sessionOf('bind_marker');
      // A PREPARE the policy allows is decided as `prepare`; its Bind through the protocol is not.
      await exchange(c, encodeFrontend({ name: 'query', text: 'PREPARE sqlside AS SELECT 1' }));
      const out = await exchange(
        c,
        Buffer.concat([
          encodeFrontend({ name: 'bind', portal: '', statement: 'sqlside', paramFormats: [], params: [], resultFormats: [] }),
          encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
          encodeFrontend({ name: 'sync' }),
        ]),
      );
      expect(fields(out.find((m) => m.name === 'error'))).toMatchObject({ C: '42501', M: expect.stringContaining('prepared statement "sqlside" was not prepared') });
      expect(out.at(-1)?.name).toBe('readyForQuery');
      expect(decisions(sid)).toContainEqual(expect.objectContaining({ verdict: 'block', outcome: 'blocked', reason: expect.stringContaining('prepared statement "sqlside"') }));
    } finally {
      c.destroy();
    }
  });
});
