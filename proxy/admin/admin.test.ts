import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from './server.ts';
import { openDevIssuer, DEV_AUDIENCE, DEV_ISSUER, type DevIssuer } from '../identity/dev-issuer.ts';
import { createTokenVerifier } from '../identity/verifier.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/file-service.ts';
import { openAuditLog, type AuditLog } from '../audit/sink.ts';
import { verifyAuditFile } from '../audit/verify.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { runCli } from '../../cli/testing.ts';
import type { ApprovalRequest } from '../ports.ts';

let state: string;
let issuer: DevIssuer;
let approvals: FileApprovalService;
let audit: AuditLog;
let metrics: Metrics;
let server: AdminServer;
let healthy = true;
let agentToken: string;
let dbaToken: string;
let readerToken: string;

const req = (statement: string): ApprovalRequest => ({
  identity: { sub: 'agent-7', groups: ['data-reader'], claims: {} },
  resource: { kind: 'postgres', name: 'prod-main', labels: {} },
  statement,
  fingerprint: 'fp',
  approvers: ['dba'],
  withinMs: 600_000,
  session_id: 's1',
});

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), 'hoop-admin-'));
  issuer = await openDevIssuer(state);
  const verifier = createTokenVerifier({
    issuer: DEV_ISSUER,
    audience: [DEV_AUDIENCE],
    jwksFile: issuer.jwksFile,
    groupsClaim: 'groups',
    algorithms: ['ES256'],
    maxTokenTtlMs: 3_600_000,
    clockToleranceS: 5,
  });
  approvals = await openApprovalService(state);
  audit = await openAuditLog(join(state, 'audit.jsonl'));
  metrics = createMetrics();
  server = await startAdminServer({
    address: '127.0.0.1:0',
    approvals,
    verifier,
    metrics,
    audit,
    health: () => ({ ok: healthy, checks: { policy: healthy ? 'ok' : 'no policy loaded' } }),
  });
  agentToken = await issuer.mint({ sub: 'agent-7', groups: ['data-reader'] });
  dbaToken = await issuer.mint({ sub: 'bob', groups: ['dba'] });
  readerToken = await issuer.mint({ sub: 'carol', groups: ['data-reader'] });
});

afterAll(async () => {
  await server.close();
  await approvals.close();
  await audit.close();
});

const get = (path: string, token?: string) => fetch(server.url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
const post = (path: string, token: string, body?: unknown) =>
  fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

describe('admin API', () => {
  it('/healthz reflects the health check', async () => {
    const ok = await get('/healthz');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', checks: { policy: 'ok' } });
    healthy = false;
    const down = await get('/healthz');
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'unavailable' });
    healthy = true;
  });

  it('/metrics renders Prometheus text', async () => {
    metrics.decision('allow', 0.00003);
    metrics.decision('block', 0.002);
    metrics.decision('allow', 0.00003);
    metrics.sessionOpened();
    metrics.sessionOpened();
    metrics.sessionClosed();
    metrics.connectionRefused('expired');
    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('hoop_decisions_total{verdict="allow"} 2');
    expect(text).toContain('hoop_decisions_total{verdict="block"} 1');
    expect(text).toContain('hoop_decision_duration_seconds_bucket{le="0.00005"} 2');
    expect(text).toContain('hoop_decision_duration_seconds_bucket{le="0.0025"} 3');
    expect(text).toContain('hoop_decision_duration_seconds_count 3');
    expect(text).toContain('hoop_sessions_open 1');
    expect(text).toContain('hoop_connections_refused_total{reason="expired"} 1');
  });

  it('approvals endpoints require a valid token', async () => {
    expect((await get('/approvals')).status).toBe(401);
    const bad = await get('/approvals', 'not-a-jwt');
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: { code: 'malformed' } });
    const expired = await issuer.mint({ sub: 'bob', groups: ['dba'], ttlMs: 1000, now: Date.now() - 120_000 });
    expect(await (await get('/approvals', expired)).json()).toMatchObject({ error: { code: 'expired' } });
  });

  it('lists what the caller requested or may decide; approve and deny with the approver identity', async () => {
    const a = await approvals.request(req('UPDATE customers SET tier = 2 WHERE id = 1'));
    const b = await approvals.request(req('DELETE FROM orders WHERE id = 9'));
    const asDba = (await (await get('/approvals?status=pending', dbaToken)).json()) as { approvals: { id: string }[] };
    expect(asDba.approvals.map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    const asAgent = (await (await get('/approvals', agentToken)).json()) as { approvals: { id: string }[] };
    expect(asAgent.approvals.map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    const asOther = (await (await get('/approvals', readerToken)).json()) as { approvals: unknown[] };
    expect(asOther.approvals).toEqual([]);
    expect((await get('/approvals?status=bogus', dbaToken)).status).toBe(400);

    const self = await post(`/approvals/${a.id}/approve`, agentToken);
    expect(self.status).toBe(403);
    expect(await self.json()).toMatchObject({ error: { code: 'requester_cannot_approve' } });
    const notApprover = await post(`/approvals/${a.id}/approve`, readerToken);
    expect(notApprover.status).toBe(403);
    expect(await notApprover.json()).toMatchObject({ error: { code: 'not_an_approver' } });

    const ok = await post(`/approvals/${a.id}/approve`, dbaToken, { reason: 'ticket 42' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ approval: { id: a.id, status: 'approved', decided_by: 'bob', reason: 'ticket 42' } });
    const again = await post(`/approvals/${a.id}/deny`, dbaToken);
    expect(again.status).toBe(409);
    expect((await post('/approvals/apr_nope/approve', dbaToken)).status).toBe(404);
    expect((await post(`/approvals/${b.id}/deny`, dbaToken, [1])).status).toBe(400);
    expect((await post(`/approvals/${b.id}/deny`, dbaToken)).status).toBe(200);
    expect((await get(`/approvals/${b.id}`, dbaToken)).status).toBe(200);
    expect((await get(`/approvals/${b.id}`, readerToken)).status).toBe(404);

    // Decisions are audited with the approver's identity, and the chain verifies.
    await new Promise((r) => setTimeout(r, 20));
    const v = await verifyAuditFile(join(state, 'audit.jsonl'));
    expect(v).toMatchObject({ ok: true, records: 2 });
  });

  it('escapes terminal controls of agents\' statements in every JSON answer; the parsed value is unchanged', async () => {
    // ESC, a C1 CSI, DEL, a right-to-left override, a zero-width space and U+2028: curl of the raw
    // response to a terminal must not act on any of them or reorder what the approver reads.
    const statement = "DELETE FROM orders /* \u001b[2K\u009b1A\u007f */ WHERE note = '\u202edrop\u200b\u2028' -- x";
    const a = await approvals.request(req(statement));
    const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
    const raw = async (r: Response) => {
      const bytes = Buffer.from(await r.arrayBuffer());
      expect(bytes.includes(0x1b)).toBe(false);
      const text = bytes.toString('utf8');
      expect(text).not.toMatch(unsafe);
      return JSON.parse(text) as Record<string, unknown>;
    };
    const one = (await raw(await get(`/approvals/${a.id}`, dbaToken))) as { approval: { statement: string } };
    expect(one.approval.statement).toBe(statement);
    const all = (await raw(await get('/approvals?status=pending', dbaToken))) as { approvals: { id: string; statement: string }[] };
    expect(all.approvals.find((x) => x.id === a.id)?.statement).toBe(statement);
    const decided = (await raw(await post(`/approvals/${a.id}/deny`, dbaToken, { reason: 'no \u202eway\u001b' }))) as { approval: { statement: string; reason?: string } };
    expect(decided.approval.statement).toBe(statement);
  });

  it('unknown routes and methods', async () => {
    expect((await get('/nope')).status).toBe(404);
    expect((await fetch(server.url + '/healthz', { method: 'POST' })).status).toBe(405);
  });
});

describe('hoop approvals (CLI against the admin API)', () => {
  it('list --json gives the documented objects; approve/deny report refusals with exit 1', async () => {
    const a = await approvals.request(req('UPDATE customers SET tier = 3 WHERE id = 3'));
    const list = await runCli(['approvals', 'list', '--admin', server.url, '--json'], { HOOP_TOKEN: dbaToken });
    expect(list.code).toBe(0);
    const items = JSON.parse(list.out) as Record<string, unknown>[];
    const mine = items.find((i) => i.id === a.id)!;
    expect(mine).toMatchObject({ id: a.id, sub: 'agent-7', resource: 'postgres/prod-main', statement: 'UPDATE customers SET tier = 3 WHERE id = 3', approvers: ['dba'], status: 'pending' });
    expect(Date.parse(mine.expires_at as string)).toBeGreaterThan(Date.now());

    const self = await runCli(['approvals', 'approve', a.id, '--admin', server.url], { HOOP_TOKEN: agentToken });
    expect(self.code).toBe(1);
    expect(self.err).toContain('requester_cannot_approve');

    // --config FILE finds the admin address in listen.admin and reads nothing else: the gateway's
    // upstream credentials (user_env/password_env) and state-store password are not in an
    // approver's environment, and the file is the gateway's real one.
    const cfg = join(state, 'hoop.yaml');
    writeFileSync(
      cfg,
      `listen: { postgres: "127.0.0.1:6432", admin: "127.0.0.1:${server.port}" }\nidentity: { issuer: x, audience: y, jwks_file: ./j.json }\n` +
        `resources: [{ name: r, upstream: "postgres://127.0.0.1/x", user_env: HOOP_TEST_UNSET_USER, password_env: HOOP_TEST_UNSET_PASSWORD }]\n` +
        `state: postgres://127.0.0.1/hoop_state\nstate_password_env: HOOP_TEST_UNSET_STATE_PW\nmasking: { hash_key_env: HOOP_TEST_UNSET_KEY }\npolicy: ./p\n`,
    );
    const unset = { HOOP_TEST_UNSET_USER: undefined, HOOP_TEST_UNSET_PASSWORD: undefined, HOOP_TEST_UNSET_STATE_PW: undefined, HOOP_TEST_UNSET_KEY: undefined };
    const listed = await runCli(['approvals', 'list', '--config', cfg, '--json'], { HOOP_TOKEN: dbaToken, ...unset });
    expect(listed.err).toBe('');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as { id: string }[]).map((x) => x.id)).toContain(a.id);
    const ok = await runCli(['approvals', 'approve', a.id, '--config', cfg, '--reason', 'fine'], { HOOP_TOKEN: dbaToken, ...unset });
    expect(ok.code).toBe(0);
    // A file without listen.admin is a usage error naming the key.
    const noAdmin = join(state, 'no-admin.yaml');
    writeFileSync(noAdmin, `listen: { postgres: "127.0.0.1:6432" }\nresources: [{ name: r, upstream: "postgres://127.0.0.1/x", user_env: HOOP_TEST_UNSET_USER }]\n`);
    const missing = await runCli(['approvals', 'list', '--config', noAdmin], { HOOP_TOKEN: dbaToken, ...unset });
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`${noAdmin}: listen.admin: not set`);
    expect(ok.out).toContain(`${a.id}: approved`);
    expect(await approvals.consumeApproved(req('UPDATE customers SET tier = 3 WHERE id = 3'))).toMatchObject({ id: a.id });

    const human = await runCli(['approvals', 'list', '--admin', server.url, '--status', 'consumed'], { HOOP_TOKEN: dbaToken });
    expect(human.out).toContain(a.id);

    expect((await runCli(['approvals', 'list', '--admin', server.url], { HOOP_TOKEN: undefined })).code).toBe(2);
    const down = await runCli(['approvals', 'list', '--admin', 'http://127.0.0.1:1'], { HOOP_TOKEN: dbaToken });
    expect(down.code).toBe(2);
    expect(down.err).toContain('unreachable');
  });
});

describe('admin API over TLS', () => {
  it('serves HTTPS with the gateway certificate', async () => {
    const { execFileSync } = await import('node:child_process');
    const { readFileSync } = await import('node:fs');
    const https = await import('node:https');
    const dir = mkdtempSync(join(tmpdir(), 'hoop-admin-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const tlsServer = await startAdminServer({ address: '127.0.0.1:0', approvals, verifier: createTokenVerifier({ issuer: DEV_ISSUER, audience: [DEV_AUDIENCE], jwksFile: issuer.jwksFile, groupsClaim: 'groups', algorithms: ['ES256'], maxTokenTtlMs: 3_600_000, clockToleranceS: 5 }), metrics, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    try {
      expect(tlsServer.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https.get(`${tlsServer.url}/healthz`, { ca: readFileSync(join(dir, 'cert.pem')) }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(`${res.statusCode} ${b.trim()}`));
        }).on('error', reject);
      });
      expect(body).toBe('200 {"status":"ok"}');
    } finally {
      await tlsServer.close();
    }
  });
});
