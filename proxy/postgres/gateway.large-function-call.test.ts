// A FunctionCall (the fast path) longer than the gateway's 64 MiB decode cap (issue 14 item 15):
// PostgreSQL accepts up to 1 GB, and libpq's lo_write of a large buffer is one such message. The
// gateway decides a call by its head (the function OID and the argument count) and streams the
// arguments through, unless the verdict needs their values (an approval shows them): then the call
// is decoded whole within limits.max_message_size, and refused with 54000 beyond it.
// Raw protocol client, real PostgreSQL. The 70 MB argument is sent in 1 MB writes of one buffer.

import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import type { ApprovalRecord } from '../ports.ts';
import type { Identity } from '../../stdlib/facts.ts';
import type { BackendMessage } from './wire/backend.ts';
import { RawClient } from './raw-client.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';

const POLICY = `package t
default block "not allowed"

rule writers {
  when group "writer"
  match sql select, insert, update, transaction
  allow
}

rule reviewed_reads {
  when group "reviewed"
  match sql select, insert, transaction
  allow
}

rule reviewed_writes {
  when group "reviewed"
  match sql update
  approve by group "dba" within 5m
}
`;

const MB = 1_000_000;
const DBA: Identity = { sub: 'dba-1', groups: ['dba'], claims: {} };
const INV_WRITE = 0x20000;
let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let lowrite: number;

beforeAll(async () => {
  cluster = await startCluster();
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-big-fn-')), { pollMs: 50 });
  gw = await startTestGateway(cluster, POLICY, { approvals });
  lowrite = Number(cluster.psql("SELECT 'pg_catalog.lowrite'::regproc::oid", 'app').trim());
}, 180_000);

afterAll(async () => {
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

/** Runs a simple query; its answer up to ReadyForQuery. */
async function query(c: RawClient, text: string): Promise<BackendMessage[]> {
  const from = c.messages.length;
  c.query(text);
  await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= from, 60_000);
  return c.messages.slice(from);
}

function scalar(answer: BackendMessage[]): string {
  const row = answer.find((m) => m.name === 'dataRow');
  if (!row || row.name !== 'dataRow') throw new Error(`no row in ${JSON.stringify(answer.map((m) => (m.name === 'error' ? Object.fromEntries(m.fields) : m.name)))}`);
  return row.values[0]!.toString('utf8');
}

/** lowrite(fd, data) as libpq sends it (binary arguments and result), `data` being `chunk` `times` over, written piecewise. */
function sendLowrite(c: RawClient, fd: number, chunk: Buffer, times: number): void {
  const size = chunk.length * times;
  const head = Buffer.alloc(27);
  head.write('F', 0);
  head.writeInt32BE(4 + 4 + 2 + 2 + 2 + 4 + 4 + 4 + size + 2, 1);
  head.writeUInt32BE(lowrite, 5);
  head.writeInt16BE(1, 9); // one format code
  head.writeInt16BE(1, 11); // binary
  head.writeInt16BE(2, 13); // two arguments
  head.writeInt32BE(4, 15);
  head.writeInt32BE(fd, 19);
  head.writeInt32BE(size, 23);
  c.send(head);
  for (let i = 0; i < times; i++) c.send(chunk);
  const tail = Buffer.alloc(2);
  tail.writeInt16BE(1, 0); // binary result
  c.send(tail);
}

/** A fresh large object opened for writing in an open transaction: its oid and descriptor. */
async function openObject(c: RawClient): Promise<{ oid: string; fd: number }> {
  expect((await query(c, 'BEGIN')).map((m) => m.name)).toContain('commandComplete');
  const oid = scalar(await query(c, 'SELECT lo_create(0)'));
  const fd = Number(scalar(await query(c, `SELECT lo_open(${oid}, ${INV_WRITE})`)));
  return { oid, fd };
}

const chunk = Buffer.alloc(MB);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + (i >> 8)) & 0xff;

describe('a FunctionCall longer than the decode cap', () => {
  it('a 70 MB lowrite an allowing policy lets through succeeds; the object has the right size and bytes; the session goes on', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, await gw.token({ groups: ['writer'] }), gw.resourceName);
    try {
      const { oid, fd } = await openObject(c);
      const from = c.messages.length;
      sendLowrite(c, fd, chunk, 70);
      await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= from, 120_000);
      const answer = c.messages.slice(from);
      expect(c.closed, JSON.stringify(c.error())).toBe(false);
      expect(answer.map((m) => m.name), JSON.stringify(c.error())).toEqual(['functionCallResponse', 'readyForQuery']);
      const r = answer[0]!;
      expect(r.name === 'functionCallResponse' && r.value?.readInt32BE(0)).toBe(70 * MB);
      expect((await query(c, 'COMMIT')).map((m) => m.name)).toContain('commandComplete');
      const h = createHash('md5');
      for (let i = 0; i < 70; i++) h.update(chunk);
      expect(cluster.psql(`SELECT length(b) || ' ' || md5(b) FROM (SELECT lo_get(${oid}) AS b) o`, 'app').trim()).toBe(`${70 * MB} ${h.digest('hex')}`);
      expect(scalar(await query(c, 'SELECT 41 + 1'))).toBe('42');
      // Audited as the function it names.
      expect(gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized === 'SELECT pg_catalog.lowrite($1, $2)').at(-1)).toMatchObject({ verdict: 'allow' });
    } finally {
      c.destroy();
    }
  }, 180_000);

  it('one over the streaming threshold that needs approval is decoded whole: the approver sees its values', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, await gw.token({ groups: ['reviewed'] }), gw.resourceName);
    try {
      const before = new Set((await approvals.list()).map((a) => a.id));
      const from = c.messages.length;
      sendLowrite(c, 0, chunk, 2);
      let pending: ApprovalRecord | undefined;
      for (let i = 0; i < 400 && !pending; i++) {
        pending = (await approvals.list({ status: 'pending' })).find((a) => !before.has(a.id));
        if (!pending) await new Promise((r) => setTimeout(r, 25));
      }
      expect(pending).toMatchObject({ statement: 'SELECT pg_catalog.lowrite($1, $2)' });
      expect(pending!.params?.[0]).toEqual({ value: '0', format: 'binary' });
      // Decoded (as bytea) from the whole message; shown cut short.
      expect(pending!.params?.[1]?.value).toMatch(/^\\x[0-9a-f]{1000}/);
      expect((await approvals.decide(pending!.id, DBA, 'deny', 'not now')).ok).toBe(true);
      await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= from, 60_000);
      expect(c.messages.slice(from).find((m) => m.name === 'error')).toBeDefined();
      expect(scalar(await query(c, 'SELECT 41 + 1'))).toBe('42');
    } finally {
      c.destroy();
    }
  }, 180_000);

  it('one that needs approval is refused with 54000 (its values are beyond limits.max_message_size); no approval is asked; the session goes on', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, await gw.token({ groups: ['reviewed'] }), gw.resourceName);
    try {
      // Never runs (refused before the function is called), so no descriptor is needed.
      const fd = 0;
      const before = (await approvals.list()).length;
      const from = c.messages.length;
      sendLowrite(c, fd, chunk, 70);
      await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= from, 120_000);
      expect(c.closed).toBe(false);
      const err = c.messages.slice(from).find((m) => m.name === 'error');
      expect(err && err.name === 'error' && Object.fromEntries(err.fields)).toMatchObject({
        C: '54000',
        M: 'hoop: blocked: the arguments of a function call that needs approval may not exceed 67108864 bytes (limits.max_message_size)',
      });
      expect((await approvals.list()).length).toBe(before);
      expect(scalar(await query(c, 'SELECT 41 + 1'))).toBe('42');
    } finally {
      c.destroy();
    }
  }, 180_000);
});
