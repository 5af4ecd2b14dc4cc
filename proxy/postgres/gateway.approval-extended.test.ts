// Approvals in the extended protocol (issue 14 item 9): an approval covers one execution with the
// parameter values the approver saw. With the real `pg` driver, a prepared statement approved once
// does not run again on the same approval: every Bind asks for its own, showing its values (the
// approvals API and `hoop approvals list`, a separate process).

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { startAdminServer, type AdminServer } from '../admin/index.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { createTokenVerifier } from '../identity/index.ts';
import { createMetrics } from '../metrics.ts';
import type { ApprovalRecord } from '../ports.ts';
import { RawClient } from './raw-client.ts';
import { DBA, WRITES_NEED_DBA, gatewayConfig, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

const POLICY = WRITES_NEED_DBA;

const DELETE = 'DELETE FROM orders WHERE id = $1';

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let admin: AdminServer;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE orders (id int PRIMARY KEY, note bytea); INSERT INTO orders SELECT g FROM generate_series(1, 9) g; ALTER TABLE orders OWNER TO app;', 'app');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-appr-ext-')), { pollMs: 50 });
  gw = await startTestGateway(cluster, POLICY, { approvals });
  const identity = gatewayConfig(cluster, gw.stateDir, gw.issuer, gw.resourceName).identity;
  admin = await startAdminServer({ address: '127.0.0.1:0', approvals, verifier: createTokenVerifier(identity), metrics: createMetrics(), audit: gw.audit });
  token = await gw.token({ groups: ['data-writer'] });
});

afterAll(async () => {
  await admin?.close();
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

const present = (id: number): boolean => cluster.psql(`SELECT count(*) FROM orders WHERE id = ${id}`, 'app').trim() === '1';

/** The oldest pending approval not in `seen` (for `statement`, when given). */
async function nextPending(seen: Set<string>, statement?: string): Promise<ApprovalRecord> {
  for (let i = 0; i < 400; i++) {
    const p = (await approvals.list({ status: 'pending' })).filter((a) => !seen.has(a.id) && (statement === undefined || a.statement === statement));
    if (p.length > 0) {
      seen.add(p[0]!.id);
      return p[0]!;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no new pending approval');
}

function hoop(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const seen = new Set<string>();

describe('approvals in the extended protocol, hold mode', () => {
  it('each execution of a prepared statement needs its own approval, which shows the bound values', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      // First execution: Parse + Bind(2). The approval names the value.
      const first = c.query({ name: 'del', text: DELETE, values: [2] });
      const a1 = await nextPending(seen);
      expect(a1).toMatchObject({ statement: DELETE, params: [{ value: '2', format: 'text' }] });
      expect(present(2)).toBe(true);
      expect((await approvals.decide(a1.id, DBA, 'approve')).ok).toBe(true);
      await first;
      expect(present(2)).toBe(false);

      // Second execution of the same prepared statement (the driver sends only Bind/Execute): held
      // for a new approval with its own value, not run on the first one.
      const second = c.query({ name: 'del', text: DELETE, values: [3] });
      second.catch(() => undefined);
      const a2 = await nextPending(seen);
      expect(a2.id).not.toBe(a1.id);
      expect(a2).toMatchObject({ statement: DELETE, params: [{ value: '3', format: 'text' }] });
      expect(present(3)).toBe(true);

      // The approver sees the value: in the admin API and in `hoop approvals list`.
      const dbaToken = await gw.issuer.mint({ sub: 'dba-1', groups: ['dba'] });
      const api = (await (await fetch(`${admin.url}/approvals/${a2.id}`, { headers: { authorization: `Bearer ${dbaToken}` } })).json()) as { approval: ApprovalRecord };
      expect(api.approval.params).toEqual([{ value: '3', format: 'text' }]);
      const listed = await hoop(['approvals', 'list', '--admin', admin.url], { HOOP_TOKEN: dbaToken });
      expect(listed.code, listed.err).toBe(0);
      expect(listed.out).toContain(`${DELETE}\n    $1 = '3'\n`);

      expect((await approvals.decide(a2.id, DBA, 'deny', 'not that one')).ok).toBe(true);
      await expect(second).rejects.toMatchObject({ code: '42501' });
      expect(present(3)).toBe(true);

      // The session goes on; a binary value of a type the gateway does not know is shown as hex.
      const third = c.query({ text: 'UPDATE orders SET note = $1 WHERE id = 4', values: [Buffer.from([0x00, 0xff, 0x1b])] });
      const a3 = await nextPending(seen);
      expect(a3.params).toEqual([{ value: '00ff1b', format: 'hex' }]);
      await approvals.decide(a3.id, DBA, 'approve');
      await third;
      expect(cluster.psql("SELECT encode(note, 'hex') FROM orders WHERE id = 4", 'app').trim()).toBe('00ff1b');
    } finally {
      await c.end();
    }
  });
});

describe('approvals in the extended protocol, return mode', () => {
  it('the approval is for the values it showed: the same statement with other values needs another', async () => {
    const c = new pg.Client({ ...gw.pgConfig(token), application_name: 'agent#approval=return' });
    await c.connect();
    try {
      const err = (await c.query(DELETE, [5]).catch((e: unknown) => e)) as { code: string; message: string };
      expect(err.code).toBe('42501');
      const id = /approval required \(([^)]+)\)/.exec(err.message)?.[1];
      const a = await approvals.get(id!);
      expect(a).toMatchObject({ statement: DELETE, params: [{ value: '5', format: 'text' }], status: 'pending' });
      seen.add(id!);
      expect((await approvals.decide(id!, DBA, 'approve')).ok).toBe(true);
      // Other values: not covered.
      await expect(c.query(DELETE, [6])).rejects.toMatchObject({ code: '42501' });
      expect(present(6)).toBe(true);
      // The values approved: runs once.
      await c.query(DELETE, [5]);
      expect(present(5)).toBe(false);
      await expect(c.query(DELETE, [5])).rejects.toMatchObject({ code: '42501' });
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('approvals in the extended protocol, a long parameter', () => {
  it('a Bind longer than the streaming threshold is decoded whole for the approver, shown cut, and runs once approved', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      const text = "UPDATE orders SET note = convert_to($1, 'UTF8') WHERE id = 8";
      const long = 'y'.repeat(2 * 1024 * 1024);
      const q = c.query(text, [long]);
      const a = await nextPending(seen, text);
      expect(a.params).toEqual([{ value: 'y'.repeat(4096), format: 'text', truncated_from: long.length }]);
      await approvals.decide(a.id, DBA, 'approve');
      await q;
      expect(cluster.psql('SELECT length(note) FROM orders WHERE id = 8', 'app').trim()).toBe(String(long.length));
    } finally {
      await c.end();
    }
  });
});

describe('approvals in the extended protocol, binary parameters', () => {
  it('shows binary values decoded with the types the server described', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      const text = 'UPDATE orders SET note = $1 WHERE id = $2';
      const before = c.messages.length;
      c.send(Buffer.concat([encodeFrontend({ name: 'parse', statement: 'upd', text, paramTypes: [] }), encodeFrontend({ name: 'describe', target: 'S', objectName: 'upd' }), encodeFrontend({ name: 'sync' })]));
      expect(await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= before)).toBeDefined();
      const id = Buffer.alloc(4);
      id.writeInt32BE(7);
      const done = c.messages.length;
      c.send(Buffer.concat([
        encodeFrontend({ name: 'bind', portal: '', statement: 'upd', paramFormats: [1], params: [Buffer.from([0xca, 0xfe]), id], resultFormats: [] }),
        encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
        encodeFrontend({ name: 'sync' }),
      ]));
      const a = await nextPending(seen, text);
      expect(a).toMatchObject({ statement: text, params: [{ value: '\\xcafe', format: 'binary' }, { value: '7', format: 'binary' }] });
      await approvals.decide(a.id, DBA, 'approve');
      expect(await c.until((m) => m.name === 'commandComplete')).toBeDefined();
      expect(c.messages.slice(done).map((m) => m.name)).toContain('bindComplete');
      expect(cluster.psql("SELECT encode(note, 'hex') FROM orders WHERE id = 7", 'app').trim()).toBe('cafe');
    } finally {
      c.destroy();
    }
  });
});

describe('approvals of a FunctionCall (the fast path)', () => {
  it('shows the call\'s argument values, decoded with the function\'s argument types', async () => {
    cluster.psql('SELECT lo_create(4242); ALTER LARGE OBJECT 4242 OWNER TO app;', 'app');
    const oid = Number(cluster.psql("SELECT 'pg_catalog.lo_unlink'::regproc::oid", 'app').trim());
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      // lo_unlink(4242), the argument in binary as libpq sends it.
      const call = Buffer.alloc(25);
      call.write('F', 0);
      call.writeInt32BE(24, 1);
      call.writeUInt32BE(oid, 5);
      call.writeInt16BE(1, 9); // one format code
      call.writeInt16BE(1, 11); // binary
      call.writeInt16BE(1, 13); // one argument
      call.writeInt32BE(4, 15);
      call.writeUInt32BE(4242, 19);
      call.writeInt16BE(1, 23); // binary result
      const from = c.messages.length;
      c.send(call);
      const a = await nextPending(seen, 'SELECT pg_catalog.lo_unlink($1)');
      expect(a.params).toEqual([{ value: '4242', format: 'binary' }]);
      await approvals.decide(a.id, DBA, 'approve');
      expect(await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= from)).toBeDefined();
      expect(c.messages.slice(from).map((m) => m.name), JSON.stringify(c.messages.slice(from))).toContain('functionCallResponse');
      expect(cluster.psql('SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 4242', 'app').trim()).toBe('0');
    } finally {
      c.destroy();
    }
  });
});
