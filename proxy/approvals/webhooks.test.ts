// Webhooks and Slack actions against real local HTTP receivers and the real gateway: signed
// payloads a receiver verifies, a retry after a 500, a hook that never answers not slowing a
// session, Slack-format messages with buttons, and /slack/actions with a correct, a forged and a
// stale signature and an unmapped Slack user.

import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { startAdminServer, type AdminServer } from '../admin/index.ts';
import { parseConfig } from '../config.ts';
import { createTokenVerifier } from '../identity/index.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import type { AuditSink } from '../ports.ts';
import { run, startTestGateway, type TestGateway } from '../postgres/test-support.ts';
import { openApprovalService, type FileApprovalService } from './index.ts';
import { createWebhooks, verifyWebhookSignature, wireWebhooks, type WebhookConfig } from './webhooks.ts';

interface Hit {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A receiver: records every request; `answer` decides each response (default 200). */
class Receiver {
  hits: Hit[] = [];
  answer: (hit: Hit, res: ServerResponse) => void = (_h, res) => res.end('ok');
  private waiters: { n: number; resolve: () => void }[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const hit = { headers: req.headers, body };
        this.hits.push(hit);
        for (const w of this.waiters.filter((x) => this.hits.length >= x.n)) w.resolve();
        this.answer(hit, res);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  /** Resolves once `n` requests have arrived in all. */
  received(n: number): Promise<void> {
    return this.hits.length >= n ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, utility
  allow
}

rule writes_need_dba {
  match sql insert, update
  approve by group "dba" within 5m
}

rule no_deletes {
  match sql delete
  block "deletes are not allowed"
}
`;

const SECRET = 'whsec-test-1';
const SLACK_SECRET = 'slack-signing-secret';

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let admin: AdminServer;
let metrics: Metrics;
let hoop: Receiver;
let slack: Receiver;
let hanging: Receiver;
let closeHooks: () => Promise<void>;
let idle: () => Promise<void>;
const held: ServerResponse[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql("CREATE TABLE jobs (id int PRIMARY KEY, note text); INSERT INTO jobs SELECT g, 'new' FROM generate_series(1, 9) g; ALTER TABLE jobs OWNER TO app;", 'app');
  hoop = await new Receiver().start();
  slack = await new Receiver().start();
  hanging = await new Receiver().start();
  hanging.answer = (_h, res) => void held.push(res); // never answers
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-hooks-')), { pollMs: 50 });
  metrics = createMetrics();
  const hooks: WebhookConfig[] = [
    { name: 'audit-bot', url: hoop.url, secret: SECRET, events: ['approval.requested', 'approval.decided', 'request.blocked'], format: 'hoop' },
    { name: 'slack', url: slack.url, events: ['approval.requested'], format: 'slack' },
    { name: 'down', url: hanging.url, secret: SECRET, events: ['request.blocked'], format: 'hoop' },
  ];
  const webhooks = createWebhooks({ hooks, count: (n, h, l) => metrics.count(n, h, l), backoffMs: 10, timeoutMs: 60_000 });
  idle = () => webhooks.idle();
  // The gateway's audit log, then the hooks' view of it, exactly as proxy/run.ts wires them.
  let wired: ReturnType<typeof wireWebhooks> | undefined;
  const through: AuditSink = {
    append: (r, o) => wired!.audit.append(r, o),
    beforeForward: (r, o) => wired!.audit.beforeForward(r, o),
    beforeAnswer: (seq) => wired!.audit.beforeAnswer(seq),
    onSyncFailure: (l) => wired!.audit.onSyncFailure(l),
    close: async () => undefined,
  };
  gw = await startTestGateway(cluster, POLICY, { approvals, audit: through });
  wired = wireWebhooks(webhooks, { approvals, audit: gw.audit });
  closeHooks = () => wired!.close();
  const cfg = parseConfig(
    {
      identity: { issuer: 'x', audience: 'y', jwks_file: './j' },
      resources: [{ name: 'r', upstream: 'postgres://127.0.0.1/x' }],
      policy: './p',
      approvals: { slack: { signing_secret_env: 'SLACK_SECRET', users: { U0DBA: { sub: 'dba-slack', groups: ['dba'] }, U0AGENT: { sub: 'agent-7', groups: ['dba'] } } } },
    },
    { env: { SLACK_SECRET } },
  );
  if (!cfg.ok) throw new Error(JSON.stringify(cfg.errors));
  admin = await startAdminServer({ address: '127.0.0.1:0', approvals, verifier: createTokenVerifier(gw.config.identity), metrics, audit: gw.audit, slack: cfg.config.approvals.slack!, log: () => undefined });
});

afterAll(async () => {
  for (const r of held) r.destroy();
  await closeHooks?.();
  await admin?.close();
  await gw?.close();
  await approvals?.close();
  await Promise.all([hoop?.close(), slack?.close(), hanging?.close()]);
  await cluster?.stop();
});

const psql = async (sql: string, sub = 'agent-7') => run('psql', [gw.conninfo(await gw.token({ sub, groups: ['data-writer'] })), '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

const events = (r: Receiver) => r.hits.map((h) => JSON.parse(h.body) as { id: string; type: string; data: Record<string, any> });

async function nextPending(statement: string): Promise<string> {
  for (;;) {
    const a = (await approvals.list({ status: 'pending' })).find((x) => x.statement === statement);
    if (a) return a.id;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A Slack block_actions request as Slack sends it (form-encoded payload), signed with `secret`. */
function slackRequest(user: string, action: 'hoop_approve' | 'hoop_deny', approvalId: string, opts: { secret?: string; ts?: number } = {}) {
  const payload = { type: 'block_actions', user: { id: user, username: user.toLowerCase() }, actions: [{ action_id: action, value: approvalId }], response_url: `${slack.url}/response` };
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const sig = `v0=${createHmac('sha256', opts.secret ?? SLACK_SECRET).update(`v0:${ts}:${body}`).digest('hex')}`;
  return fetch(`${admin.url}/slack/actions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig }, body });
}

describe('webhooks', () => {
  it('signs each event; a receiver verifies it and rejects a replay; a 500 is retried with the same delivery id', async () => {
    // The first delivery of the session's approval.requested gets a 500: it must come again.
    let failed = false;
    hoop.answer = (h, res) => {
      if (!failed && h.headers['x-hoop-event'] === 'approval.requested') {
        failed = true;
        res.statusCode = 500;
        return res.end('try later');
      }
      res.end('ok');
    };
    const statement = "UPDATE jobs SET note = 'hooked' WHERE id = 1";
    const session = psql(statement);
    const id = await nextPending(statement);
    await hoop.received(2);
    const [first, second] = hoop.hits;
    expect(first!.headers['x-hoop-event']).toBe('approval.requested');
    expect(second!.headers['x-hoop-delivery']).toBe(first!.headers['x-hoop-delivery']);
    for (const h of [first!, second!]) expect(verifyWebhookSignature(SECRET, h.body, h.headers['x-hoop-signature'] as string)).toEqual({ ok: true });
    // A tampered body, another secret, or the same delivery replayed 6 minutes later: refused.
    expect(verifyWebhookSignature(SECRET, second!.body.replace('hooked', 'dropped'), second!.headers['x-hoop-signature'] as string)).toMatchObject({ ok: false });
    expect(verifyWebhookSignature('other', second!.body, second!.headers['x-hoop-signature'] as string)).toMatchObject({ ok: false });
    expect(verifyWebhookSignature(SECRET, second!.body, second!.headers['x-hoop-signature'] as string, { now: Date.now() + 6 * 60_000 })).toMatchObject({ ok: false, reason: expect.stringContaining('replay') });
    const requested = JSON.parse(second!.body) as { type: string; data: { approval: Record<string, any> } };
    expect(requested).toMatchObject({ type: 'approval.requested', data: { approval: { id, sub: 'agent-7', resource: 'postgres/prod-main', statement, status: 'pending', approvers: ['dba'], details: { kind: 'update' } } } });

    await approvals.decide(id, { sub: 'dba-1', groups: ['dba'], claims: {} }, 'approve', 'ok by me');
    expect((await session).code).toBe(0);
    await hoop.received(3);
    expect(events(hoop)[2]).toMatchObject({ type: 'approval.decided', data: { approval: { id, status: 'approved', decided_by: 'dba-1', reason: 'ok by me' } } });
    await idle();
    expect(metrics.render()).toContain('hoop_webhook_deliveries_total{event="approval.requested",outcome="retried",webhook="audit-bot"} 1');
  });

  it('a block is an event; a hook that never answers does not slow the session', async () => {
    const before = hanging.hits.length;
    const r = await psql('DELETE FROM jobs WHERE id = 2');
    // psql got its answer while the hanging receiver still holds the delivery (or before it arrived).
    expect(r.stderr).toContain('deletes are not allowed');
    await hanging.received(before + 1);
    expect(held.length).toBeGreaterThan(0);
    expect(hanging.hits[before]!.headers['x-hoop-event']).toBe('request.blocked');
    for (;;) {
      const blocked = events(hoop).find((e) => e.type === 'request.blocked' && e.data.statement?.normalized?.startsWith('DELETE FROM jobs'));
      if (blocked) {
        expect(blocked.data).toMatchObject({ identity: { sub: 'agent-7' }, resource: { kind: 'postgres', name: 'prod-main' }, rules: ['t.no_deletes'] });
        break;
      }
      await hoop.received(hoop.hits.length + 1);
    }
    // The session is still usable right away.
    expect((await psql('SELECT count(*) FROM jobs')).code).toBe(0);
  });
});

describe('Slack', () => {
  it('posts a message with Approve/Deny buttons; a signed click by a mapped user approves; forged, stale and unmapped ones do not', async () => {
    const statement = "UPDATE jobs SET note = 'slacked' WHERE id = 3";
    const session = psql(statement);
    const id = await nextPending(statement);
    for (;;) {
      const msg = slack.hits.find((h) => h.body.includes(id));
      if (msg) {
        const m = JSON.parse(msg.body) as { text: string; blocks: { type: string; elements?: { action_id?: string; value?: string }[]; text?: { type: string; text: string } }[] };
        expect(m.text).toContain('agent-7 asks to run a statement on postgres/prod-main');
        expect(m.blocks.some((b) => b.text?.type === 'plain_text' && b.text.text === statement)).toBe(true);
        const buttons = m.blocks.find((b) => b.type === 'actions')!.elements!;
        expect(buttons.map((b) => [b.action_id, b.value])).toEqual([['hoop_approve', id], ['hoop_deny', id]]);
        break;
      }
      await slack.received(slack.hits.length + 1);
    }

    expect((await slackRequest('U0DBA', 'hoop_approve', id, { secret: 'forged' })).status).toBe(401);
    expect((await slackRequest('U0DBA', 'hoop_approve', id, { ts: Math.floor(Date.now() / 1000) - 600 })).status).toBe(401);
    expect((await approvals.get(id))?.status).toBe('pending');

    // A Slack user not in approvals.slack.users decides nothing, and is told so.
    const before = slack.hits.length;
    expect((await slackRequest('U0STRANGER', 'hoop_approve', id)).status).toBe(200);
    await slack.received(before + 1);
    expect(JSON.parse(slack.hits[before]!.body)).toMatchObject({ response_type: 'ephemeral', text: expect.stringContaining('not mapped to an approver') });
    // The requester's own Slack user: refused by the store's rule.
    expect((await slackRequest('U0AGENT', 'hoop_approve', id)).status).toBe(200);
    await slack.received(before + 2);
    expect(JSON.parse(slack.hits[before + 1]!.body).text).toContain('requester_cannot_approve');
    expect((await approvals.get(id))?.status).toBe('pending');

    expect((await slackRequest('U0DBA', 'hoop_approve', id)).status).toBe(200);
    const r = await session;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('UPDATE 1');
    expect((await approvals.get(id))).toMatchObject({ decided_by: 'dba-slack', reason: 'via Slack (u0dba)' });
    await slack.received(before + 3);
    expect(JSON.parse(slack.hits[before + 2]!.body)).toMatchObject({ replace_original: true, text: expect.stringContaining(`approval ${id} approved by dba-slack`) });
    expect(gw.audit.records.some((x) => x.type === 'approval' && x.approval_id === id && x.identity?.sub === 'dba-slack')).toBe(true);
  });
});
