// A token that expires while its statement waits (issue 14 item 13): the identity is re-checked
// after the approval wait and at every Bind, so an approval granted after the token expired runs
// nothing; the refusal is audited with the reason.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { RawClient } from './raw-client.ts';
import { DBA, WRITES_NEED_DBA, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

const POLICY = WRITES_NEED_DBA;


let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql("CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 100); ALTER TABLE accounts OWNER TO app;", 'app');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-appr-exp-')), { pollMs: 50 });
  gw = await startTestGateway(cluster, POLICY, { approvals });
});

afterAll(async () => {
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

const balance = (): number => Number(cluster.psql('SELECT balance FROM accounts WHERE id = 1', 'app').trim());

/** The token's `exp`, in ms. */
function expiryOf(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number };
  return payload.exp * 1000;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Waits until the token's expiry has passed (the gateway compares Date.now() with exp). */
const pastExpiry = (token: string): Promise<true> => until(() => (Date.now() > expiryOf(token) ? true : undefined), 'the token to expire');

describe('a held statement whose token expires during the wait', () => {
  it('is refused after the approval (28000, audited as token_expired) and never runs; the approval stays unused', async () => {
    const token = await gw.token({ groups: ['data-writer'], ttlMs: 2_000 });
    const c = new pg.Client(gw.pgConfig(token));
    c.on('error', () => undefined);
    await c.connect();
    const held = c.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1').then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string; severity?: string },
    );
    const pending = await until(async () => (await approvals.list({ status: 'pending' }))[0], 'the pending approval');
    await pastExpiry(token);
    expect((await approvals.decide(pending.id, DBA, 'approve')).ok).toBe(true);
    const err = await held;
    expect(err).toMatchObject({ code: '28000', severity: 'FATAL' });
    expect(err?.message).toMatch(/token expired while the statement waited for approval/);
    expect(balance()).toBe(100);
    const rec = await until(() => gw.audit.records.find((r) => r.type === 'decision' && r.approval_id === pending.id), 'the decision record');
    expect(rec).toMatchObject({ outcome: 'refused', verdict: 'approve' });
    expect(rec.reason).toMatch(/^token_expired: the token expired/);
    expect((await approvals.get(pending.id))?.status).toBe('approved');
    await c.end().catch(() => undefined);

    // The same identity with a fresh token can still use the approval, once.
    const fresh = new pg.Client({ ...gw.pgConfig(await gw.token({ groups: ['data-writer'] })), application_name: 'again#approval=return' });
    await fresh.connect();
    try {
      await fresh.query('UPDATE accounts SET balance = balance - 10 WHERE id = 1');
      expect(balance()).toBe(90);
      expect((await approvals.get(pending.id))?.status).toBe('consumed');
    } finally {
      await fresh.end();
    }
  });
});

describe('a Bind held for approval whose token expires during the wait (extended protocol)', () => {
  it('is refused after the approval with 28000 and never binds', async () => {
    const token = await gw.token({ groups: ['data-writer'], ttlMs: 2_000 });
    const c = new pg.Client(gw.pgConfig(token));
    c.on('error', () => undefined);
    await c.connect();
    const sql = 'UPDATE accounts SET balance = balance - $1 WHERE id = 1';
    const held = c.query(sql, [25]).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string; severity?: string },
    );
    const pending = await until(async () => (await approvals.list({ status: 'pending' })).find((a) => a.statement === sql), 'the pending approval');
    expect(pending.params).toEqual([{ value: '25', format: 'text' }]);
    await pastExpiry(token);
    expect((await approvals.decide(pending.id, DBA, 'approve')).ok).toBe(true);
    const err = await held;
    expect(err).toMatchObject({ code: '28000', severity: 'FATAL' });
    expect(err?.message).toMatch(/token expired while the statement waited for approval/);
    expect(balance()).toBe(90);
    const rec = await until(() => gw.audit.records.find((r) => r.type === 'decision' && r.approval_id === pending.id), 'the decision record');
    expect(rec).toMatchObject({ outcome: 'refused', verdict: 'approve' });
    expect(rec.reason).toMatch(/^token_expired: /);
    await c.end().catch(() => undefined);
  });
});

describe('a Bind after the token expired', () => {
  it('ends the session with 28000 instead of binding the statement prepared before', async () => {
    const token = await gw.token({ groups: ['data-writer'], ttlMs: 2_000 });
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    try {
      const before = c.messages.length;
      c.send(Buffer.concat([encodeFrontend({ name: 'parse', statement: 's1', text: 'SELECT balance FROM accounts', paramTypes: [] }), encodeFrontend({ name: 'sync' })]));
      expect(await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= before)).toBeDefined();
      await pastExpiry(token);
      const seen = c.messages.length;
      const recordsBefore = gw.audit.records.length;
      c.send(Buffer.concat([encodeFrontend({ name: 'bind', portal: '', statement: 's1', paramFormats: [], params: [], resultFormats: [] }), encodeFrontend({ name: 'sync' })]));
      expect(await c.waitClosed()).toBe(true);
      const after = c.messages.slice(seen);
      expect(after.map((m) => m.name)).not.toContain('bindComplete');
      const e = after.find((m) => m.name === 'error');
      expect(e && e.name === 'error' ? Object.fromEntries(e.fields) : undefined).toMatchObject({ C: '28000', S: 'FATAL' });
      const ended = await until(() => gw.audit.records.slice(recordsBefore).find((r) => r.type === 'session_end' && r.outcome === 'refused' && /token expired/.test(r.reason ?? '')), 'the expiry record');
      expect(ended).toBeDefined();
    } finally {
      c.destroy();
    }
  });
});
