// A CancelRequest that arrives while a held statement's approval is still being recorded ends the
// wait like one that arrives later (it used to be lost, and the statement stayed held until
// approvals.timeout: the cause of the flaky cancel test in gateway.services.test.ts under load).

import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import type { ApprovalService } from '../ports.ts';
import { WRITES_NEED_DBA, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeStartup } from './wire/startup.ts';

const POLICY = WRITES_NEED_DBA;

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
/** Resolves when the gateway asked for an approval; the request completes when `release` is called. */
let requested: Promise<void>;
let release: () => void = () => undefined;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE ledger (id serial PRIMARY KEY, note text); ALTER TABLE ledger OWNER TO app; ALTER SEQUENCE ledger_id_seq OWNER TO app;', 'app');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-appr-cancel-')), { pollMs: 50 });
  let signal: () => void = () => undefined;
  requested = new Promise<void>((r) => (signal = r));
  // The real store, with its `request` held open until the test lets it finish.
  const gated: ApprovalService = Object.create(approvals) as ApprovalService;
  gated.request = async (req) => {
    const rec = await approvals.request(req);
    const go = new Promise<void>((r) => (release = r));
    signal();
    await go;
    return rec;
  };
  // A short timeout, so that a lost cancel shows as "not decided within" instead of a hang.
  gw = await startTestGateway(cluster, POLICY, { approvals: gated }, 'prod-main', (c) => {
    c.approvals.timeoutMs = 3_000;
  });
});

afterAll(async () => {
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

describe('a CancelRequest while the approval is being recorded', () => {
  it('ends the wait with 57014 and the statement never runs', async () => {
    const c = new pg.Client(gw.pgConfig(await gw.token({ groups: ['data-writer'] })));
    await c.connect();
    try {
      const q = c.query("INSERT INTO ledger (note) VALUES ('early cancel')").then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      await requested;
      const key = c as unknown as { processID: number; secretKey: number };
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: gw.gateway.postgresPort }, () => s.end(encodeStartup({ name: 'cancelRequest', pid: key.processID, secret: key.secretKey })));
        s.on('close', () => resolve());
      });
      release();
      const err = await q;
      expect(err).toMatchObject({ code: '57014' });
      expect(err?.message).toMatch(/canceled while waiting for approval/);
      expect(cluster.psql("SELECT count(*) FROM ledger WHERE note = 'early cancel'", 'app').trim()).toBe('0');
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });
});
