// The enforcement core through its public API, as a front door uses it: a real compiled policy, the
// real audit log, approval store and session recorder on a temporary directory (observed through
// thin wrappers that keep what passed), real SQL and shell classifiers for the facts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compilePolicy } from '../../engine/index.ts';
import type { Identity, Resource, ShellClassifier, SqlAction } from '../../stdlib/facts.ts';
import { loadShellClassifier } from '../../stdlib/shell/index.ts';
import { loadSqlClassifier } from '../../stdlib/sql/index.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { openAuditLog, type AuditLog } from '../audit/index.ts';
import type { AuditRecordInput, AuditSink, SessionRecorder, StatementEvent } from '../ports.ts';
import { createSessionRecorder } from '../recording/index.ts';
import { Enforcer, type EnforcementRequest, type EnforcementSession, type Outcome, type RequestItem } from './index.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction
  allow
}

rule mask_emails {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with email
}

rule writes_need_dba {
  match sql insert, update
  approve by group "dba" within 5m
}

rule truncates {
  match sql truncate
  allow
}

rule no_delete {
  match sql delete
  block "deletes are not allowed"
}

rule timed {
  match sql explain
  if \`context.time > timestamp("2000-01-01T00:00:00Z") && context.session_id == "s-fixed" && context.client_addr == "10.0.0.7"\`
  allow
}

rule shell_reads {
  on ssh("bastion-*")
  match shell ["ls", "df"]
  allow
}
`;

const policy = compilePolicy([{ file: 't.hoop', text: POLICY }]).policy!;
const AGENT: Identity = { sub: 'agent-7', groups: ['data-reader'], claims: {}, token_id: 'jti-1', issuer: 'https://idp' };
const DBA: Identity = { sub: 'dba-1', groups: ['dba'], claims: {} };
const PG: Resource = { kind: 'postgres', name: 'prod-main', labels: {} };
const BASTION: Resource = { kind: 'ssh', name: 'bastion-1', labels: {} };

let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;
let shell: ShellClassifier;
beforeAll(async () => {
  sql = await loadSqlClassifier();
  shell = await loadShellClassifier();
});

let dir: string;
let log: AuditLog;
let audit: AuditSink & { records: AuditRecordInput[] };
let approvals: FileApprovalService;
let events: StatementEvent[];
let recorder: SessionRecorder;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hoop-enforcement-'));
  log = await openAuditLog(join(dir, 'audit.jsonl'));
  const records: AuditRecordInput[] = [];
  audit = {
    records,
    append: (r, o) => {
      records.push(r);
      return log.append(r, o);
    },
    beforeForward: (r, o) => {
      records.push(r);
      return log.beforeForward(r, o);
    },
    beforeAnswer: (seq) => log.beforeAnswer(seq),
    onSyncFailure: (l) => log.onSyncFailure(l),
    close: () => log.close(),
  };
  approvals = await openApprovalService(join(dir, 'state'), { pollMs: 20 });
  events = [];
  const files = createSessionRecorder({ dir: join(dir, 'sessions'), results: false });
  recorder = {
    async open(h) {
      const r = await files.open(h);
      return { statement: (e) => (events.push(e), r.statement(e)), close: (t) => r.close(t) };
    },
  };
});

afterEach(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

function enforcer(extra: { masker?: never; approvalTimeoutMs?: number } = {}): Enforcer {
  return new Enforcer({ policy: () => policy, audit, recorder, approvals, ...extra });
}

async function open(e: Enforcer, o: { mode?: 'hold' | 'return'; expiresAt?: number; resource?: Resource; id?: string; clientAddr?: string } = {}): Promise<EnforcementSession> {
  const opened = await e.openSession({
    protocol: o.resource?.kind === 'ssh' ? 'ssh' : 'postgres',
    ...(o.id ? { id: o.id } : {}),
    identity: AGENT,
    expiresAt: o.expiresAt ?? Date.now() + 3_600_000,
    resource: o.resource ?? PG,
    clientAddr: o.clientAddr ?? '127.0.0.1',
    client: { user: 'agent-7', application_name: 'psql' },
    approvalMode: o.mode ?? 'return',
  });
  if (!opened.ok) throw new Error(opened.message);
  return opened.session;
}

function request(text: string, extra: Partial<EnforcementRequest> = {}): EnforcementRequest {
  return { items: sql.classify(text).map((action): RequestItem => ({ action })), text, started: performance.now(), protocol: 'simple', ...extra };
}

const decisions = (): AuditRecordInput[] => audit.records.filter((r) => r.type === 'decision');

async function until<T>(f: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a session', () => {
  it('opens with its session_start record and recording, and closes once with its session_end', async () => {
    const s = await open(enforcer(), { id: 'conn-1' });
    expect(s.id).toBe('conn-1');
    expect(audit.records.map((r) => r.type)).toEqual(['session_start']);
    expect(audit.records[0]).toMatchObject({ session_id: 'conn-1', token: { jti: 'jti-1', iss: 'https://idp' }, identity: { sub: 'agent-7', groups: ['data-reader'] }, resource: { kind: 'postgres', name: 'prod-main' }, client_addr: '127.0.0.1' });
    s.close({ outcome: 'refused', reason: 'expired: the token expired during the session' });
    s.close();
    const ends = audit.records.filter((r) => r.type === 'session_end');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ outcome: 'refused', reason: 'expired: the token expired during the session' });
  });

  it('does not open when its session_start record cannot be written', async () => {
    await log.close();
    const opened = await enforcer().openSession({ protocol: 'postgres', identity: AGENT, expiresAt: Date.now() + 60_000, resource: PG, clientAddr: '127.0.0.1', approvalMode: 'return' });
    expect(opened).toEqual({ ok: false, reason: 'audit_failed', message: 'hoop: the audit log could not be written; the session was not opened' });
  });

  it('audits a refused connection with what is known of it', async () => {
    await enforcer().refuseConnection({ protocol: 'ssh', sessionId: 'c-9', clientAddr: '10.1.1.1', code: 'bad_signature', message: 'hoop: token rejected: bad signature', claims: { sub: 'mallory', jti: 'j-9' } });
    expect(audit.records).toEqual([
      { type: 'connection_refused', session_id: 'c-9', client_addr: '10.1.1.1', outcome: 'refused', reason: 'bad_signature: token rejected: bad signature', front_door: 'ssh', token: { jti: 'j-9' }, identity: { sub: 'mallory', groups: [] } },
    ]);
  });
});

describe('decide', () => {
  it('forwards an allowed statement: decision record before, result record and recording event on complete', async () => {
    const s = await open(enforcer());
    const out = await s.decide(request('SELECT 1'));
    expect(out.kind).toBe('forward');
    if (out.kind !== 'forward') return;
    const [p] = out.permits;
    expect(p!.masked).toBe(false);
    expect(p!.limits).toEqual({ rate: [] });
    expect(decisions()).toEqual([expect.objectContaining({ verdict: 'allow', rules: ['t.reads'], outcome: 'executed', statement: { fingerprint: (p!.action as SqlAction).fingerprint, normalized: 'SELECT $1', kind: 'select' } })]);
    expect(p!.auditSeq).toBe(2);
    s.complete(p!, { outcome: 'executed', rows: 1, durationMs: 0.25 });
    expect(audit.records.at(-1)).toMatchObject({ type: 'statement_result', outcome: 'executed', rows: 1, duration_ms: 0.25, decision_seq: 2, verdict: 'allow' });
    expect(events).toEqual([expect.objectContaining({ text: 'SELECT 1', protocol: 'simple', verdict: 'allow', reasons: ['t.reads'], outcome: 'executed', rows: 1, kind: 'select' })]);
  });

  it('a state-changing statement is answered only once its record is durable; a read is not held', async () => {
    const s = await open(enforcer());
    const read = await s.decide(request('SELECT 1'));
    if (read.kind !== 'forward') throw new Error(read.kind);
    expect(read.permits[0]!.answerAfter).toBeUndefined();
    expect(s.beforeAnswer(read.permits[0]!)).toBeUndefined();
    const write = await s.decide(request('TRUNCATE orders'));
    if (write.kind !== 'forward') throw new Error(write.kind);
    const p = write.permits[0]!;
    expect(p.answerAfter).toBe(p.auditSeq);
    await s.beforeAnswer(p);
    expect(s.beforeAnswer(p)).toBeUndefined();
  });

  it('refuses every statement of a request when one is blocked, naming the rule', async () => {
    const s = await open(enforcer());
    const out = await s.decide(request('SELECT 1; DELETE FROM orders WHERE id = 1'));
    expect(out).toMatchObject({ kind: 'refuse', reason: 'blocked', rules: ['t.no_delete'], message: 'hoop: blocked by t.no_delete: deletes are not allowed', detail: 'rule: t.no_delete', endSession: false });
    expect(decisions().map((r) => [r.verdict, r.outcome, r.reason])).toEqual([
      ['allow', 'blocked', 'another statement in the same message was refused'],
      ['block', 'blocked', 'deletes are not allowed'],
    ]);
    expect(events.map((e) => [e.outcome, e.error])).toEqual([
      ['blocked', 'another statement in the same message was refused'],
      ['blocked', 'hoop: blocked by t.no_delete: deletes are not allowed'],
    ]);
  });

  it('says why an unknown statement is unknown, and what the front door refused', async () => {
    const s = await open(enforcer());
    const unknown = await s.decide(request('SELEC 1'));
    expect(unknown).toMatchObject({ kind: 'refuse', message: 'hoop: blocked: not allowed', detail: expect.stringMatching(/no rule allows this statement \(default block\); the statement is unknown: /) });
    const [action] = sql.classify('SELECT 1');
    const refused = await s.decide({ items: [{ action: action!, refused: 'names cannot be resolved' }], text: 'SELECT 1', started: performance.now(), protocol: 'simple' });
    expect(refused).toMatchObject({ kind: 'refuse', reason: 'blocked', rules: [], message: 'hoop: blocked: names cannot be resolved' });
  });

  it('gives conditions the request context: its time, client address and session id', async () => {
    const s = await open(enforcer(), { id: 's-fixed', clientAddr: '10.0.0.7' });
    expect((await s.decide(request('EXPLAIN SELECT 1'))).kind).toBe('forward');
    const other = await open(enforcer(), { id: 's-other', clientAddr: '10.0.0.7' });
    expect((await other.decide(request('EXPLAIN SELECT 1'))).kind).toBe('refuse');
  });

  it('decides shell commands on an ssh resource the same way', async () => {
    const s = await open(enforcer(), { resource: BASTION });
    const ok = await s.decide({ items: [{ action: shell.classify('df -h') }], text: 'df -h', started: performance.now(), protocol: 'ssh' });
    if (ok.kind !== 'forward') throw new Error(ok.kind);
    s.complete(ok.permits[0]!, { outcome: 'executed', rows: 0, durationMs: 3, ssh: { exit_code: 0, bytes_in: 0, bytes_out: 120 } });
    expect(events.at(-1)).toMatchObject({ protocol: 'ssh', text: 'df -h', kind: 'command', outcome: 'executed', ssh: { exit_code: 0, bytes_out: 120 } });
    expect(audit.records.at(-1)).toMatchObject({ type: 'statement_result', front_door: 'ssh', statement: { kind: 'command', normalized: 'df -h' } });
    const no = await s.decide({ items: [{ action: shell.classify('rm -rf /') }], text: 'rm -rf /', started: performance.now(), protocol: 'simple' });
    expect(no).toMatchObject({ kind: 'refuse', reason: 'blocked', message: 'hoop: blocked: not allowed' });
    expect(decisions().at(-1)).toMatchObject({ statement: { kind: 'command', normalized: 'rm -rf /' }, verdict: 'block', front_door: 'ssh' });
  });

  it('refuses a masked statement when masks cannot be guaranteed (no masker), and one that cannot be masked at all', async () => {
    const s = await open(enforcer());
    const out = await s.decide(request('SELECT email FROM customers'));
    expect(out).toMatchObject({ kind: 'refuse', reason: 'masks', message: 'hoop: blocked: masking is required but no masker is configured', detail: 'the gateway cannot guarantee the masks for this statement' });
    expect(decisions().at(-1)).toMatchObject({ verdict: 'mask', outcome: 'blocked', masks: ['public.customers.email:email'] });
    const fn = await s.decide(request('SELECT email FROM customers', { unmaskable: 'a function call cannot be masked' }));
    expect(fn).toMatchObject({ kind: 'refuse', reason: 'blocked', message: 'hoop: blocked: a function call cannot be masked' });
  });

  it('refuses what it cannot audit: nothing runs', async () => {
    const s = await open(enforcer());
    await log.close();
    const out = await s.decide(request('SELECT 1'));
    expect(out).toMatchObject({ kind: 'refuse', reason: 'audit_failed', sqlstate: '58000', message: 'hoop: the audit log could not be written; the statement was not run' });
    expect(events.at(-1)).toMatchObject({ outcome: 'failed', error: 'audit write failed' });
  });

  it('refuses without a policy', async () => {
    const opened = await new Enforcer({ policy: () => undefined, audit }).openSession({ protocol: 'mcp', identity: AGENT, expiresAt: Date.now() + 60_000, resource: PG, clientAddr: 'stdio', approvalMode: 'return' });
    if (!opened.ok) throw new Error(opened.message);
    expect(await opened.session.decide(request('SELECT 1'))).toMatchObject({ kind: 'refuse', message: 'hoop: blocked: no policy is loaded' });
  });

  it('audits a request refused before it could be classified', async () => {
    const s = await open(enforcer());
    await s.refuse('hoop: blocked: portal "p" was not bound through the extended protocol of this session');
    expect(decisions().at(-1)).toMatchObject({ verdict: 'block', rules: [], outcome: 'blocked', reason: 'portal "p" was not bound through the extended protocol of this session' });
    expect(decisions().at(-1)!.statement).toBeUndefined();
  });
});

describe('masks outside any request', () => {
  it('the session masks follow the policy in force: a reload recomputes them', async () => {
    let current = policy;
    const s = await (async () => {
      const opened = await new Enforcer({ policy: () => current, audit }).openSession({ protocol: 'postgres', identity: AGENT, expiresAt: Date.now() + 60_000, resource: PG, clientAddr: '127.0.0.1', approvalMode: 'return' });
      if (!opened.ok) throw new Error(opened.message);
      return opened.session;
    })();
    expect(s.sessionMasks()?.columns.map((c) => c.column)).toEqual(['public.customers.email']);
    current = compilePolicy([{ file: 'u.hoop', text: 'package u\ndefault allow\n' }]).policy!;
    expect(s.sessionMasks()).toEqual({ columns: [], detectors: [] });
    // Without a masker, text under masks is withheld.
    expect(await s.textPolicy({ columns: [], detectors: [] }, 'SELECT 1')).toEqual({ mode: 'withhold', reason: 'the masker cannot check error text' });
  });
});

describe('approvals', () => {
  it('return mode: refused with the approval id, then the same request runs once after approval', async () => {
    const s = await open(enforcer(), { mode: 'return' });
    const first = await s.decide(request("UPDATE orders SET total = 1 WHERE id = 1"));
    expect(first).toMatchObject({ kind: 'refuse', reason: 'approval_required', rules: ['t.writes_need_dba'] });
    const id = (first as { approvalId: string }).approvalId;
    expect(first).toMatchObject({ message: expect.stringContaining(`approval required (${id})`), detail: `approval id: ${id}` });
    expect(decisions().at(-1)).toMatchObject({ verdict: 'approve', outcome: 'pending_approval', approval_id: id });
    expect((await approvals.decide(id, DBA, 'approve')).ok).toBe(true);
    const again = await s.decide(request("UPDATE orders SET total = 1 WHERE id = 1"));
    expect(again).toMatchObject({ kind: 'forward', approvalId: id });
    expect(decisions().at(-1)).toMatchObject({ outcome: 'executed', approval_id: id });
    const third = await s.decide(request("UPDATE orders SET total = 1 WHERE id = 1"));
    expect(third).toMatchObject({ kind: 'refuse', reason: 'approval_required' });
  });

  it('hold mode: a hold at once, forward once approved', async () => {
    const s = await open(enforcer(), { mode: 'hold' });
    const out = await s.decide(request('INSERT INTO orders VALUES (1)'));
    expect(out.kind).toBe('hold');
    if (out.kind !== 'hold') return;
    expect(out.message).toBe(`hoop: waiting for approval ${out.approvalId} from dba (rule t.writes_need_dba)`);
    expect(decisions()).toEqual([]);
    expect((await approvals.decide(out.approvalId, DBA, 'approve')).ok).toBe(true);
    const final = await out.outcome;
    expect(final).toMatchObject({ kind: 'forward', approvalId: out.approvalId });
    expect(decisions().at(-1)).toMatchObject({ verdict: 'approve', outcome: 'executed', approval_id: out.approvalId });
  });

  it('hold mode: denied, cancelled and timed-out waits refuse', async () => {
    const s = await open(enforcer({ approvalTimeoutMs: 50 }), { mode: 'hold' });
    const denied = (await s.decide(request('INSERT INTO orders VALUES (1)'))) as Extract<Outcome, { kind: 'hold' }>;
    await approvals.decide(denied.approvalId, DBA, 'deny', 'not today');
    expect(await denied.outcome).toMatchObject({ kind: 'refuse', reason: 'approval', message: `hoop: approval ${denied.approvalId} denied: not today` });

    const canceled = (await s.decide(request('INSERT INTO orders VALUES (2)'))) as Extract<Outcome, { kind: 'hold' }>;
    canceled.cancel();
    expect(await canceled.outcome).toMatchObject({ kind: 'refuse', reason: 'approval', sqlstate: '57014', message: `hoop: canceled while waiting for approval ${canceled.approvalId}` });

    const timed = (await s.decide(request('INSERT INTO orders VALUES (3)'))) as Extract<Outcome, { kind: 'hold' }>;
    expect(await timed.outcome).toMatchObject({ kind: 'refuse', reason: 'approval', sqlstate: '57014', message: `hoop: approval ${timed.approvalId} was not decided within 0s` });
  });

  it('hold mode: the session closing stops the wait', async () => {
    const s = await open(enforcer(), { mode: 'hold' });
    const held = (await s.decide(request('INSERT INTO orders VALUES (1)'))) as Extract<Outcome, { kind: 'hold' }>;
    s.close();
    expect(await held.outcome).toMatchObject({ kind: 'refuse', reason: 'approval', sqlstate: '57014' });
  });

  it('a token that expired during the wait runs nothing and ends the session; the approval stays unused', async () => {
    const expiresAt = Date.now() + 300;
    const s = await open(enforcer(), { mode: 'hold', expiresAt });
    const held = (await s.decide(request('INSERT INTO orders VALUES (1)'))) as Extract<Outcome, { kind: 'hold' }>;
    await until(() => s.expired(), 'the token to expire');
    await approvals.decide(held.approvalId, DBA, 'approve');
    expect(await held.outcome).toMatchObject({ kind: 'refuse', reason: 'token_expired', sqlstate: '28000', endSession: true });
    expect(decisions().at(-1)).toMatchObject({ outcome: 'refused', reason: 'token_expired: the token expired while the statement waited for approval' });
    expect((await approvals.list({ status: 'approved' })).map((a) => a.id)).toEqual([held.approvalId]);
  });

  it('per execution: forwarded as needing approval, then each execution is approved for its values', async () => {
    const s = await open(enforcer(), { mode: 'return' });
    const parsed = await s.decide(request('INSERT INTO orders VALUES ($1)', { approval: 'per_execution', protocol: 'extended', paramTypes: [23] }));
    expect(parsed.kind).toBe('forward');
    if (parsed.kind !== 'forward') return;
    const permit = parsed.permits[0]!;
    expect(permit.needsApproval).toBe(true);
    expect(decisions().at(-1)).toMatchObject({ outcome: 'pending_approval', reason: 'approval is requested at each Bind, for the values it binds' });
    const params = { params: [{ value: '7', format: 'text' as const }], digest: 'd-7' };
    const first = await s.approve(permit, { params, started: performance.now() });
    expect(first).toMatchObject({ kind: 'refuse', reason: 'approval_required', sqlstate: '42501' });
    const id = (first as { approvalId: string }).approvalId;
    expect((await approvals.list()).find((a) => a.id === id)?.params).toEqual(params.params);
    await approvals.decide(id, DBA, 'approve');
    const second = await s.approve(permit, { params, started: performance.now() });
    expect(second).toMatchObject({ kind: 'forward', approvalId: id });
    if (second.kind !== 'forward') return;
    expect(second.permits[0]).toMatchObject({ needsApproval: false, approvalId: id, paramTypes: [23], protocol: 'extended' });
    expect(second.permits[0]!.auditSeq).toBeGreaterThan(permit.auditSeq!);
    // Other values need another approval.
    expect(await s.approve(permit, { params: { params: [{ value: '8', format: 'text' }], digest: 'd-8' }, started: performance.now() })).toMatchObject({ kind: 'refuse', reason: 'approval_required' });
  });
});
