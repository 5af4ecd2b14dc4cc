// Quorum and lasting approvals through the real gateway and psql (DESIGN.md "Approval variants"):
// `approve by 2 of group "dba"` holds a statement until two distinct approvers (neither the
// requester) approved, the same approver twice counting once; `lasting 1h` lets later statements of
// the same fingerprint run without a new request for the window, asks again for another
// fingerprint, and again once the window is over.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import type { Identity } from '../../stdlib/facts.ts';
import { run, startTestGateway, type TestGateway } from './test-support.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, utility
  allow
}

rule updates_need_two {
  match sql update
  approve by 2 of group "dba" within 5m
}

rule repairs_last {
  match sql delete
  approve by group "dba" within 5m lasting 1h
}
`;

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let clock = Date.now();

const dba = (sub: string): Identity => ({ sub, groups: ['dba'], claims: {} });

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql("CREATE TABLE jobs (id int PRIMARY KEY, note text); INSERT INTO jobs SELECT g, 'new' FROM generate_series(1, 9) g; ALTER TABLE jobs OWNER TO app;", 'app');
  // The store's clock is the test's: the lasting window ends when the test says so.
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-quorum-')), { pollMs: 20, now: () => clock });
  gw = await startTestGateway(cluster, POLICY, { approvals });
});

afterAll(async () => {
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

const psql = async (sql: string) => run('psql', [gw.conninfo(await gw.token({ sub: 'agent-7', groups: ['data-writer', 'dba'] })), '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

async function pending(statement: string): Promise<string> {
  for (;;) {
    const a = (await approvals.list({ status: 'pending' })).find((x) => x.statement === statement);
    if (a) return a.id;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const present = (id: number) => cluster.psql(`SELECT count(*) FROM jobs WHERE id = ${id}`, 'app').trim() === '1';

describe('quorum approvals', () => {
  it('one approval is not enough; the same approver twice counts once; a second distinct approver releases it', async () => {
    const statement = "UPDATE jobs SET note = 'two' WHERE id = 1";
    const held = psql(statement);
    const id = await pending(statement);
    expect(await approvals.decide(id, dba('dba-1'), 'approve')).toMatchObject({ ok: true, record: { status: 'pending', quorum: 2, approved_by: ['dba-1'] } });
    expect(await approvals.decide(id, dba('dba-1'), 'approve')).toMatchObject({ ok: false, code: 'already_approved' });
    // The requester is in dba too: never counted.
    expect(await approvals.decide(id, dba('agent-7'), 'approve')).toMatchObject({ ok: false, code: 'requester_cannot_approve' });
    // Still held: the statement has not run.
    expect(cluster.psql('SELECT note FROM jobs WHERE id = 1', 'app').trim()).toBe('new');
    expect(await approvals.decide(id, dba('dba-2'), 'approve')).toMatchObject({ ok: true, record: { status: 'approved' } });
    const r = await held;
    expect(r.stdout).toContain('UPDATE 1');
    expect(cluster.psql('SELECT note FROM jobs WHERE id = 1', 'app').trim()).toBe('two');
  });
});

describe('lasting approvals', () => {
  it('the same fingerprint runs unasked within the window; another fingerprint asks; after the window it asks again', async () => {
    const first = 'DELETE FROM jobs WHERE id = 2';
    const held = psql(first);
    await approvals.decide(await pending(first), dba('dba-1'), 'approve');
    expect((await held).stdout).toContain('DELETE 1');
    const before = (await approvals.list()).length;

    // Same fingerprint (another constant): runs at once, no new approval.
    const same = await psql('DELETE FROM jobs WHERE id = 3');
    expect(same.stdout).toContain('DELETE 1');
    expect(same.stderr).not.toContain('waiting for approval');
    expect(present(3)).toBe(false);
    expect((await approvals.list()).length).toBe(before);

    // Another fingerprint: a new request.
    const otherText = "DELETE FROM jobs WHERE note = 'gone'";
    const other = psql(otherText);
    await approvals.decide(await pending(otherText), dba('dba-1'), 'deny', 'not that one');
    expect((await other).stderr).toContain('denied: not that one');

    // After the window: asks again.
    clock += 3_600_000 + 1000;
    const later = 'DELETE FROM jobs WHERE id = 4';
    const again = psql(later);
    const id = await pending(later);
    expect(present(4)).toBe(true);
    await approvals.decide(id, dba('dba-2'), 'approve');
    expect((await again).stdout).toContain('DELETE 1');
  });
});
