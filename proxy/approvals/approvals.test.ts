// One contract, two stores: every test below runs against the file store and the PostgreSQL store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApprovalService, type ApprovalOptions } from './file-service.ts';
import { openPgApprovalService } from './pg-service.ts';
import type { ApprovalStore } from './rules.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import type { ApprovalRequest } from '../ports.ts';
import type { Identity } from '../../stdlib/facts.ts';

const who = (sub: string, groups: string[], actor?: string): Identity => ({ sub, groups, claims: {}, ...(actor ? { actor } : {}) });
const agent = who('agent-7', ['data-reader'], 'alice');
const dba = who('bob', ['dba']);
const req = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  identity: agent,
  resource: { kind: 'postgres', name: 'prod-main', labels: {} },
  statement: "UPDATE customers SET email = 'x' WHERE id = 1",
  fingerprint: 'fp1',
  approvers: ['dba'],
  withinMs: 60_000,
  session_id: 's1',
  ...over,
});
const dir = () => mkdtempSync(join(tmpdir(), 'hoop-approvals-'));

let cluster: Cluster | undefined;
let schemas = 0;

interface Store {
  name: string;
  /** A new, empty location (a directory, or a PostgreSQL schema). */
  fresh(): string;
  /** A service instance on a location: a second instance stands for a restart or another process. */
  open(location: string, opts?: ApprovalOptions): Promise<ApprovalStore>;
}

const stores: Store[] = [
  { name: 'file store', fresh: dir, open: (d, o) => openApprovalService(d, o) },
  {
    name: 'PostgreSQL store',
    fresh: () => `approvals_t${schemas++}`,
    open: (schema, o) => openPgApprovalService({ connectionString: cluster!.url, schema, ...o }),
  },
];

beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

describe.each(stores)('approvals ($name)', ({ fresh, open }) => {
  const openApprovalService = open;
  const dir = fresh;

  it('creates unguessable ids and reuses the pending approval for the same identity+resource+statement', async () => {
    const svc = await openApprovalService(dir());
    const a = await svc.request(req());
    expect(a).toMatchObject({ sub: 'agent-7', resource: 'postgres/prod-main', status: 'pending', approvers: ['dba'], actor: 'alice' });
    expect(a.id).toMatch(/^apr_[A-Za-z0-9_-]{20}$/);
    expect((await svc.request(req())).id).toBe(a.id);
    // Any difference in identity, resource or statement text is a different approval.
    const others = await Promise.all([
      svc.request(req({ identity: who('agent-8', ['data-reader']) })),
      svc.request(req({ resource: { kind: 'postgres', name: 'prod-other', labels: {} } })),
      svc.request(req({ statement: req().statement + ' ' })),
    ]);
    expect(new Set([a.id, ...others.map((o) => o.id)]).size).toBe(4);
    await svc.close();
  });

  it('an extended-protocol approval keeps its bound values (across a restart) and is bound to their digest', async () => {
    const d = dir();
    const params = [{ value: '42', format: 'text' as const }, { value: null, format: 'binary' as const }];
    const one = await openApprovalService(d);
    const a = await one.request(req({ statement: 'DELETE FROM orders WHERE id = $1', params, paramsDigest: 'd1' }));
    expect(a.params).toEqual(params);
    expect((await one.request(req({ statement: 'DELETE FROM orders WHERE id = $1', params, paramsDigest: 'd1' }))).id).toBe(a.id);
    const other = await one.request(req({ statement: 'DELETE FROM orders WHERE id = $1', params: [{ value: '43', format: 'text' }], paramsDigest: 'd2' }));
    const none = await one.request(req({ statement: 'DELETE FROM orders WHERE id = $1' }));
    expect(new Set([a.id, other.id, none.id]).size).toBe(3);
    expect(none.params).toBeUndefined();
    await one.close();
    const two = await openApprovalService(d);
    expect((await two.list()).find((x) => x.id === a.id)?.params).toEqual(params);
    expect(await two.decide(a.id, dba, 'approve')).toMatchObject({ ok: true });
    expect(await two.consumeApproved(req({ statement: 'DELETE FROM orders WHERE id = $1', params: [], paramsDigest: 'd2' }))).toBeUndefined();
    expect(await two.consumeApproved(req({ statement: 'DELETE FROM orders WHERE id = $1', params, paramsDigest: 'd1' }))).toMatchObject({ id: a.id, status: 'consumed' });
    await two.close();
  });

  it('persists across a restart (a new service instance on the same directory)', async () => {
    const d = dir();
    const one = await openApprovalService(d);
    const a = await one.request(req());
    await one.close();
    const two = await openApprovalService(d);
    expect(await two.list({ status: 'pending' })).toMatchObject([{ id: a.id, statement: req().statement }]);
    expect(await two.decide(a.id, dba, 'approve', 'looks fine')).toMatchObject({ ok: true, record: { status: 'approved', decided_by: 'bob', reason: 'looks fine' } });
    await two.close();
    const three = await openApprovalService(d);
    expect(await three.consumeApproved(req())).toMatchObject({ id: a.id, status: 'consumed' });
    await three.close();
    const four = await openApprovalService(d);
    expect(await four.consumeApproved(req())).toBeUndefined();
    expect((await four.list())[0].status).toBe('consumed');
    await four.close();
  });

  it('is single use', async () => {
    const svc = await openApprovalService(dir());
    const a = await svc.request(req());
    await svc.decide(a.id, dba, 'approve');
    const [x, y] = await Promise.all([svc.consumeApproved(req()), svc.consumeApproved(req())]);
    expect([x?.id, y?.id].filter(Boolean)).toEqual([a.id]);
    expect(await svc.consume(a.id)).toBe(false);
    // The next identical statement needs a new approval.
    const b = await svc.request(req());
    expect(b.id).not.toBe(a.id);
    expect(b.status).toBe('pending');
    await svc.decide(b.id, dba, 'approve');
    expect(await svc.consume(b.id)).toBe(true);
    expect(await svc.consume(b.id)).toBe(false);
    await svc.close();
  });

  it('the requester, the person it acts for, and non-members cannot decide; a decision is final', async () => {
    const svc = await openApprovalService(dir());
    const a = await svc.request(req());
    expect(await svc.decide(a.id, who('agent-7', ['dba']), 'approve')).toMatchObject({ ok: false, code: 'requester_cannot_approve' });
    expect(await svc.decide(a.id, who('alice', ['dba']), 'approve')).toMatchObject({ ok: false, code: 'requester_cannot_approve' });
    expect(await svc.decide(a.id, who('carol', ['data-reader', 'ops']), 'approve')).toMatchObject({ ok: false, code: 'not_an_approver' });
    expect(await svc.decide('apr_doesnotexist', dba, 'approve')).toMatchObject({ ok: false, code: 'not_found' });
    expect((await svc.list())[0].status).toBe('pending');
    expect(await svc.decide(a.id, dba, 'deny', 'no')).toMatchObject({ ok: true, record: { status: 'denied' } });
    expect(await svc.decide(a.id, who('dave', ['dba']), 'approve')).toMatchObject({ ok: false, code: 'already_decided' });
    expect(await svc.consumeApproved(req())).toBeUndefined();
    await svc.close();
  });

  it('nobody in the requester\'s RFC 8693 chain can decide it, across a restart', async () => {
    const d = dir();
    const one = await openApprovalService(d);
    const chained: Identity = { sub: 'agent-7', groups: ['data-reader'], claims: {}, actor: 'planner', actors: ['planner', 'alice'] };
    const a = await one.request(req({ identity: chained }));
    expect(a).toMatchObject({ actor: 'planner', actors: ['planner', 'alice'] });
    await one.close();
    const two = await openApprovalService(d);
    for (const sub of ['agent-7', 'planner', 'alice']) {
      expect(await two.decide(a.id, who(sub, ['dba']), 'approve')).toMatchObject({ ok: false, code: 'requester_cannot_approve' });
    }
    expect(await two.decide(a.id, dba, 'approve')).toMatchObject({ ok: true, record: { status: 'approved' } });
    await two.close();
  });

  it('keeps what the approver is shown (explanation, masks, limits) across a restart', async () => {
    const d = dir();
    const one = await openApprovalService(d);
    const details = { kind: 'update', writes: ['public.customers'], rules: [{ id: 't.writes_need_dba', at: 'p.hoop:3:1' }], masks: ['column public.customers.email with email'], limits: ['rows 10 (t.cap)'], notes: ['no WHERE clause'] };
    const a = await one.request(req({ details }));
    expect(a.details).toEqual(details);
    await one.close();
    const two = await openApprovalService(d);
    expect((await two.get(a.id))?.details).toEqual(details);
    await two.close();
  });

  it('a change feed: requested, decided and consumed, here (local) and from another instance', async () => {
    const d = dir();
    const here = await openApprovalService(d, { pollMs: 20 });
    const there = await openApprovalService(d, { pollMs: 20 });
    const seen: { id: string; event: string; local: boolean }[] = [];
    const arrived = (n: number) => new Promise<void>((resolve) => {
      const check = () => (seen.length >= n ? resolve() : setTimeout(check, 5));
      check();
    });
    const stop = here.subscribe((c) => seen.push(c));
    const a = await here.request(req());
    await arrived(1);
    expect(seen[0]).toEqual({ id: a.id, event: 'requested', local: true });
    // Re-requesting the same pending approval is no change.
    await here.request(req());
    await there.decide(a.id, dba, 'approve');
    await arrived(2);
    expect(seen[1]).toEqual({ id: a.id, event: 'decided', local: false });
    expect(await here.consume(a.id)).toBe(true);
    await arrived(3);
    expect(seen[2]).toEqual({ id: a.id, event: 'consumed', local: true });
    const b = await there.request(req({ statement: 'DELETE FROM t WHERE id = 2' }));
    await arrived(4);
    expect(seen[3]).toEqual({ id: b.id, event: 'requested', local: false });
    expect(seen).toHaveLength(4);
    stop();
    await here.decide(b.id, dba, 'deny');
    expect(seen).toHaveLength(4);
    await here.close();
    await there.close();
  });

  it('a quorum: one approval is not enough, two distinct ones release it; the same approver twice counts once; one deny denies', async () => {
    const svc = await openApprovalService(dir());
    const a = await svc.request(req({ quorum: 2 }));
    expect(a).toMatchObject({ quorum: 2, status: 'pending' });
    const first = await svc.decide(a.id, dba, 'approve', 'one');
    expect(first).toMatchObject({ ok: true, record: { status: 'pending', approved_by: ['bob'] } });
    expect(await svc.decide(a.id, dba, 'approve')).toMatchObject({ ok: false, code: 'already_approved' });
    expect(await svc.decide(a.id, who('agent-7', ['dba']), 'approve')).toMatchObject({ ok: false, code: 'requester_cannot_approve' });
    expect(await svc.consumeApproved(req({ quorum: 2 }))).toBeUndefined();
    expect(await svc.decide(a.id, who('carol', ['dba']), 'approve', 'two')).toMatchObject({ ok: true, record: { status: 'approved', approved_by: ['bob', 'carol'], decided_by: 'carol' } });
    expect((await svc.wait(a.id)).status).toBe('approved');

    const b = await svc.request(req({ quorum: 3, statement: 'DELETE FROM t WHERE id = 1' }));
    await svc.decide(b.id, dba, 'approve');
    expect(await svc.decide(b.id, who('carol', ['dba']), 'deny', 'no')).toMatchObject({ ok: true, record: { status: 'denied', decided_by: 'carol', approved_by: ['bob'] } });
    await svc.close();
  });

  it('lasting: the same fingerprint from the same identity on the same resource is covered for the window, nothing else', async () => {
    let t = Date.parse('2026-06-01T10:00:00Z');
    const d = dir();
    const svc = await openApprovalService(d, { now: () => t });
    const lasting = req({ lastingMs: 3_600_000, fingerprint: 'fpL' });
    expect(await svc.lasting(lasting)).toBeUndefined();
    const a = await svc.request(lasting);
    expect(await svc.lasting(lasting)).toBeUndefined(); // pending covers nothing
    await svc.decide(a.id, dba, 'approve');
    expect(await svc.consume(a.id)).toBe(true);
    t += 60_000;
    // Another statement of the same fingerprint (other constants) is covered, after a restart too.
    await svc.close();
    const again = await openApprovalService(d, { now: () => t });
    const other = req({ lastingMs: 3_600_000, fingerprint: 'fpL', statement: "UPDATE customers SET email = 'y' WHERE id = 2" });
    expect((await again.lasting(other))?.id).toBe(a.id);
    expect(await again.lasting({ ...other, fingerprint: 'fpOther' })).toBeUndefined();
    expect(await again.lasting({ ...other, identity: who('agent-8', ['data-reader']) })).toBeUndefined();
    expect(await again.lasting({ ...other, resource: { kind: 'postgres', name: 'prod-other', labels: {} } })).toBeUndefined();
    t += 3_600_000;
    expect(await again.lasting(other)).toBeUndefined();
    await again.close();
  });

  it('expires: pending approvals cannot be decided, waits wake up', async () => {
    const svc = await openApprovalService(dir());
    const a = await svc.request(req({ withinMs: 150 }));
    const waited = svc.wait(a.id);
    expect((await waited).status).toBe('expired');
    expect(await svc.decide(a.id, dba, 'approve')).toMatchObject({ ok: false, code: 'expired' });
    // A new request after expiry is a new approval.
    expect((await svc.request(req({ withinMs: 150 }))).id).not.toBe(a.id);
    await svc.close();
  });

  it('an approval must be used within its window after being approved', async () => {
    let t = Date.parse('2026-11-26T00:00:00Z');
    const svc = await openApprovalService(dir(), { now: () => t });
    const a = await svc.request(req({ withinMs: 60_000 }));
    t += 50_000;
    await svc.decide(a.id, dba, 'approve');
    t += 50_000; // past the request's original deadline, within the approval's window
    expect(await svc.consumeApproved(req())).toMatchObject({ id: a.id });
    const b = await svc.request(req({ withinMs: 60_000 }));
    await svc.decide(b.id, dba, 'approve');
    t += 61_000;
    expect((await svc.list()).find((r) => r.id === b.id)?.status).toBe('expired');
    expect(await svc.consumeApproved(req())).toBeUndefined();
    await svc.close();
  });

  it('wait() wakes held statements on a decision in this process and in another process', async () => {
    const d = dir();
    const gw = await openApprovalService(d, { pollMs: 50 });
    const a = await gw.request(req());
    const w1 = gw.wait(a.id);
    await gw.decide(a.id, dba, 'approve');
    expect((await w1).status).toBe('approved');

    const b = await gw.request(req({ statement: 'DELETE FROM orders WHERE id = 2' }));
    const w2 = gw.wait(b.id);
    const admin = await openApprovalService(d); // a second process's view of the same directory
    expect(await admin.decide(b.id, dba, 'deny', 'not today')).toMatchObject({ ok: true });
    expect(await w2).toMatchObject({ status: 'denied', reason: 'not today', decided_by: 'bob' });
    await admin.close();

    const c = await gw.request(req({ statement: 'DELETE FROM orders WHERE id = 3' }));
    const ac = new AbortController();
    const w3 = gw.wait(c.id, ac.signal);
    ac.abort();
    expect((await w3).status).toBe('pending');
    await gw.close();
  });

  it('two processes deciding at once: exactly one wins', async () => {
    const d = dir();
    const p1 = await openApprovalService(d);
    const p2 = await openApprovalService(d);
    const a = await p1.request(req());
    await p2.list(); // p2 sees the request
    const [r1, r2] = await Promise.all([p1.decide(a.id, dba, 'approve'), p2.decide(a.id, who('erin', ['dba']), 'deny')]);
    expect([r1.ok, r2.ok].filter(Boolean)).toHaveLength(1);
    const final1 = (await p1.list())[0];
    const final2 = (await p2.list())[0];
    expect(final1.status).toBe(final2.status);
    await p1.close();
    await p2.close();
  });
});

describe('approvals (file store only)', () => {
  it('ignores a torn last line from a crash', async () => {
    const d = dir();
    const one = await openApprovalService(d);
    const a = await one.request(req());
    await one.close();
    appendFileSync(join(d, 'approvals.jsonl'), '{"ev":"decided","id":"' + a.id);
    const two = await openApprovalService(d);
    expect((await two.list())[0].status).toBe('pending');
    expect(await two.decide(a.id, dba, 'approve')).toMatchObject({ ok: true });
    await two.close();
    expect(readFileSync(join(d, 'approvals.jsonl'), 'utf8').split('\n').every((l) => l === '' || JSON.parse(l))).toBe(true);
    const three = await openApprovalService(d);
    expect((await three.list())[0].status).toBe('approved');
    await three.close();
  });
});

describe('approvals (PostgreSQL store only)', () => {
  it('LISTEN/NOTIFY wakes a statement held on another replica without polling', async () => {
    const schema = `approvals_notify_${Date.now() % 100000}`;
    const replicaA = await openPgApprovalService({ connectionString: cluster!.url, schema, pollMs: 600_000 });
    const replicaB = await openPgApprovalService({ connectionString: cluster!.url, schema, pollMs: 600_000 });
    try {
      const a = await replicaA.request(req());
      const held = replicaA.wait(a.id);
      const started = Date.now();
      expect(await replicaB.decide(a.id, dba, 'approve')).toMatchObject({ ok: true });
      expect((await held).status).toBe('approved');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await replicaB.consume(a.id)).toBe(true);
      expect(await replicaA.consume(a.id)).toBe(false);
    } finally {
      await replicaA.close();
      await replicaB.close();
    }
  });
});
