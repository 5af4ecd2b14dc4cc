// Approvals (hold and return modes) and session recording, wired through the gateway with the
// real file-backed approval service and recorder.

import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { DBA, WRITES_NEED_DBA, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeStartup } from './wire/startup.ts';

const POLICY = WRITES_NEED_DBA;


let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let token: string;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE ledger (id serial PRIMARY KEY, note text); ALTER TABLE ledger OWNER TO app; ALTER SEQUENCE ledger_id_seq OWNER TO app;', 'app');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-appr-')), { pollMs: 50 });
  gw = await startTestGateway(cluster, POLICY, { approvals });
  token = await gw.token({ groups: ['data-writer'] });
});

afterAll(async () => {
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

const count = (note: string): number => Number(cluster.psql(`SELECT count(*) FROM ledger WHERE note = '${note}'`, 'app').trim());

async function pendingId(): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const p = await approvals.list({ status: 'pending' });
    if (p.length > 0) return p[p.length - 1]!.id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no pending approval');
}

describe('approvals, hold mode', () => {
  it('the statement waits with a notice naming the approval, then runs once approved', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(`${n.message} ${(n as { detail?: string }).detail ?? ''}`));
    await c.connect();
    try {
      const q = c.query("INSERT INTO ledger (note) VALUES ('held')");
      const id = await pendingId();
      expect(count('held')).toBe(0);
      const d = await approvals.decide(id, DBA, 'approve');
      expect(d.ok).toBe(true);
      await q;
      expect(count('held')).toBe(1);
      expect(notices.join('\n')).toContain(id);
      // Single use: the same statement needs a new approval.
      const again = c.query("INSERT INTO ledger (note) VALUES ('held')");
      const id2 = await pendingId();
      expect(id2).not.toBe(id);
      await approvals.decide(id2, DBA, 'deny', 'not twice');
      await expect(again).rejects.toMatchObject({ code: '42501' });
      expect(count('held')).toBe(1);
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('approvals, hold mode: cancel', () => {
  it('a CancelRequest ends the wait with 57014 and the statement never runs', async () => {
    const c = new pg.Client(gw.pgConfig(token));
    await c.connect();
    try {
      // Its outcome is taken at once: the wait ends (57014) before the cancel connection closes.
      const q = c.query("INSERT INTO ledger (note) VALUES ('canceled')").then(
        () => undefined,
        (e: unknown) => e,
      );
      const id = await pendingId();
      const key = c as unknown as { processID: number; secretKey: number };
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: gw.gateway.postgresPort }, () => s.end(encodeStartup({ name: 'cancelRequest', pid: key.processID, secret: key.secretKey })));
        s.on('close', () => resolve());
      });
      expect(await q).toMatchObject({ code: '57014' });
      // Approving afterwards does not run it: nothing is waiting any more.
      await approvals.decide(id, DBA, 'approve');
      await new Promise((r) => setTimeout(r, 200));
      expect(count('canceled')).toBe(0);
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('approvals, hold mode: timeout', () => {
  it('a held statement waits at most approvals.timeout, then errors and never runs', async () => {
    const quick = await startTestGateway(cluster, POLICY, { approvals }, 'quick-timeout', (c) => {
      c.approvals.timeoutMs = 400;
    });
    const c = new pg.Client(quick.pgConfig(await quick.token({ groups: ['data-writer'] })));
    await c.connect();
    try {
      const started = Date.now();
      await expect(c.query("INSERT INTO ledger (note) VALUES ('timed out')")).rejects.toThrow(/was not decided within/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(count('timed out')).toBe(0);
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
      await quick.close();
    }
  });
});

describe('approvals, return mode', () => {
  it('errors now with the approval id; the byte-identical re-send runs once after approval', async () => {
    const c = new pg.Client({ ...gw.pgConfig(token), application_name: 'agent#approval=return' });
    await c.connect();
    try {
      const sql = "INSERT INTO ledger (note) VALUES ('returned')";
      const err = (await c.query(sql).catch((e: unknown) => e)) as { code: string; message: string };
      expect(err.code).toBe('42501');
      const id = /approval required \(([^)]+)\)/.exec(err.message)?.[1];
      expect(id).toBeTruthy();
      expect(count('returned')).toBe(0);
      // Not approved yet: the re-send is refused again, still pending.
      await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' });
      expect((await approvals.decide(id!, DBA, 'approve')).ok).toBe(true);
      await expect(c.query(`${sql} `)).rejects.toMatchObject({ code: '42501' }); // not byte-identical
      await c.query(sql);
      expect(count('returned')).toBe(1);
      await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' }); // used up
      expect(count('returned')).toBe(1);
      expect((await c.query('SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()')).rows).toEqual([{ application_name: 'agent' }]);
    } finally {
      await c.end();
    }
  });
});

describe('recording', () => {
  it('writes one JSON Lines file per session with each statement, its verdict, outcome and rows', async () => {
    const c = new pg.Client({ ...gw.pgConfig(token), application_name: 'recorded' });
    await c.connect();
    await c.query('SELECT g FROM generate_series(1, 5) g');
    await c.query({ text: 'SELECT $1::int AS x', values: [1] });
    await c.query('DROP TABLE ledger').catch(() => undefined);
    await c.end();
    await new Promise((r) => setTimeout(r, 200));
    const dir = join(gw.stateDir, 'sessions');
    const files = readdirSync(dir).map((f) => join(dir, f));
    const lines = files
      .map((f) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>))
      .find((ls) => ls.some((l) => l.application_name === 'recorded'));
    expect(lines).toBeDefined();
    const stmts = lines!.filter((l) => l.type === 'statement');
    expect(stmts).toEqual([
      expect.objectContaining({ text: 'SELECT g FROM generate_series(1, 5) g', protocol: 'simple', verdict: 'allow', outcome: 'executed', rows: 5, kind: 'select' }),
      expect.objectContaining({ text: 'SELECT $1::int AS x', protocol: 'extended', verdict: 'allow', outcome: 'executed', rows: 1 }),
      expect.objectContaining({ text: 'DROP TABLE ledger', verdict: 'block', outcome: 'blocked', kind: 'ddl' }),
    ]);
    expect(count('held')).toBe(1);
  });
});
