// Webhooks (`approvals.webhooks`): one JSON payload per event (`approval.requested`,
// `approval.decided`, `request.blocked`) POSTed to each hook that asked for it, signed, retried
// with backoff, and never in a session's way: `emit` only queues; delivery runs on its own, and a
// hook that is slow or down costs its own queue (bounded: the oldest is dropped) and nothing else.
// Outcomes are counted in /metrics (`hoop_webhook_deliveries_total{webhook, event, outcome}`).
//
// Signature (format `hoop`): header `X-Hoop-Signature: t=<unix seconds>,v1=<hex>` where hex is
// HMAC-SHA256(secret, `${t}.${body}`); `verifyWebhookSignature` is what a receiver runs (it
// rejects timestamps more than 5 minutes away: a captured delivery cannot be replayed later).
// Format `slack`: the payload is a Slack message (Block Kit; Approve/Deny buttons on a request)
// for an incoming-webhook URL, unsigned (Slack signs the other direction: /slack/actions).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApprovalRecord, AuditRecordInput, AuditSink } from '../ports.ts';
import type { ApprovalStore } from './rules.ts';

export const WEBHOOK_EVENTS = ['approval.requested', 'approval.decided', 'request.blocked'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookConfig {
  /** Label in /metrics and logs (never the URL: a Slack webhook URL is itself a secret). */
  name: string;
  url: string;
  /** HMAC key (format `hoop`); required there. */
  secret?: string;
  events: WebhookEvent[];
  format: 'hoop' | 'slack';
}

export interface WebhookOptions {
  hooks: WebhookConfig[];
  count: (name: string, help: string, labels: Record<string, string>) => void;
  log?: (line: string) => void;
  /** Attempts per event, the first included (default 6). */
  attempts?: number;
  /** Delay before the first retry, doubled for each next one (default 1000 ms, at most 5 minutes). */
  backoffMs?: number;
  /** Per attempt (default 10 s). */
  timeoutMs?: number;
  /** Events waiting per hook before the oldest is dropped (default 1000). */
  maxQueue?: number;
  now?: () => number;
}

export interface Webhooks {
  /** Queues the event for every hook that wants it; returns at once. */
  emit(event: WebhookEvent, data: Record<string, unknown>): void;
  /** Resolves once every queued delivery has ended (delivered, or given up): for tests and shutdown. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const HELP = 'Webhook deliveries, by hook, event and outcome (delivered, retried, failed, dropped).';

export function createWebhooks(opts: WebhookOptions): Webhooks {
  const attempts = opts.attempts ?? 6;
  const backoff = opts.backoffMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxQueue = opts.maxQueue ?? 1000;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => undefined);
  let closed = false;
  const stop = new AbortController();
  const queues = opts.hooks.map((hook) => ({ hook, items: [] as { event: WebhookEvent; id: string; body: string }[], running: false }));
  let idleWaiters: (() => void)[] = [];
  const busy = () => queues.some((q) => q.running || q.items.length > 0);
  const settle = () => {
    if (busy()) return;
    for (const w of idleWaiters.splice(0)) w();
  };
  const counted = (hook: WebhookConfig, event: string, outcome: string) => opts.count('hoop_webhook_deliveries_total', HELP, { webhook: hook.name, event, outcome });

  async function deliver(hook: WebhookConfig, event: WebhookEvent, id: string, body: string): Promise<void> {
    for (let attempt = 1; attempt <= attempts && !closed; attempt++) {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'hoop-gateway', 'x-hoop-event': event, 'x-hoop-delivery': id };
      if (hook.format === 'hoop' && hook.secret) headers['x-hoop-signature'] = signWebhook(hook.secret, body, Math.floor(now() / 1000));
      let why: string;
      try {
        const res = await fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.any([stop.signal, AbortSignal.timeout(timeoutMs)]), redirect: 'error' });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return counted(hook, event, 'delivered');
        why = `HTTP ${res.status}`;
        // A receiver that refuses the request itself (400, 401, 404...) will refuse it again.
        if (res.status < 500 && res.status !== 408 && res.status !== 429) {
          counted(hook, event, 'failed');
          return log(`webhook ${hook.name}: ${event} ${id} refused (${why}); not retried`);
        }
      } catch (e) {
        why = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message);
      }
      if (attempt === attempts || closed) break;
      counted(hook, event, 'retried');
      const delay = Math.min(300_000, backoff * 2 ** (attempt - 1));
      log(`webhook ${hook.name}: ${event} ${id} failed (${why}); retry ${attempt} of ${attempts - 1} in ${delay} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        stop.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
    counted(hook, event, 'failed');
    log(`webhook ${hook.name}: ${event} ${id} not delivered after ${attempts} attempts`);
  }

  async function drain(q: (typeof queues)[number]): Promise<void> {
    if (q.running) return;
    q.running = true;
    try {
      for (let item = q.items.shift(); item && !closed; item = q.items.shift()) await deliver(q.hook, item.event, item.id, item.body);
    } finally {
      q.running = false;
      if (closed) q.items.length = 0;
      settle();
    }
  }

  return {
    emit(event, data) {
      if (closed) return;
      const id = `evt_${randomBytes(12).toString('base64url')}`;
      const created_at = new Date(now()).toISOString();
      for (const q of queues) {
        if (!q.hook.events.includes(event)) continue;
        const payload = q.hook.format === 'slack' ? slackMessage(event, data) : { id, type: event, created_at, data };
        if (q.items.length >= maxQueue) {
          const dropped = q.items.shift()!;
          counted(q.hook, dropped.event, 'dropped');
          log(`webhook ${q.hook.name}: queue full, dropped ${dropped.event} ${dropped.id}`);
        }
        q.items.push({ event, id, body: JSON.stringify(payload) });
        void drain(q);
      }
    },
    idle() {
      return busy() ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve();
    },
    async close() {
      closed = true;
      stop.abort();
      for (const q of queues) if (!q.running) q.items.length = 0;
      await new Promise<void>((resolve) => (busy() ? idleWaiters.push(resolve) : resolve()));
      idleWaiters = [];
    },
  };
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

/**
 * What a receiver checks: the signature over the timestamp and the exact body, and that the
 * timestamp is within `toleranceS` (default 5 minutes) of its clock.
 */
export function verifyWebhookSignature(secret: string, body: string, header: string | undefined, opts: { now?: number; toleranceS?: number } = {}): { ok: true } | { ok: false; reason: string } {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return { ok: false, reason: 'missing or malformed X-Hoop-Signature' };
  const t = Number(m[1]);
  const nowS = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(nowS - t) > (opts.toleranceS ?? 300)) return { ok: false, reason: 'timestamp outside the tolerance (a replay?)' };
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const got = Buffer.from(m[2]!, 'hex');
  return timingSafeEqual(want, got) ? { ok: true } : { ok: false, reason: 'signature mismatch' };
}

/** The `approval.*` payload of an approval record. */
export function approvalEventData(a: ApprovalRecord): Record<string, unknown> {
  return { approval: a };
}

/** The `request.blocked` payload of a decision record (what the audit log says about it). */
export function blockedEventData(r: AuditRecordInput): Record<string, unknown> {
  return {
    session_id: r.session_id,
    identity: r.identity,
    resource: r.resource,
    client_addr: r.client_addr,
    statement: r.statement,
    rules: r.rules,
    reason: r.reason,
  };
}

// ---------------------------------------------------------------------------------------------
// Slack messages (Block Kit). Text from agents goes in `plain_text` objects: Slack shows it as it
// is, and it cannot become a link, a mention or formatting.

const SLACK_TEXT_MAX = 2900;

function plain(text: string): { type: 'plain_text'; text: string; emoji: false } {
  return { type: 'plain_text', text: text.length > SLACK_TEXT_MAX ? `${text.slice(0, SLACK_TEXT_MAX)}… (${text.length} characters; see the approvals page)` : text || ' ', emoji: false };
}

export function slackMessage(event: WebhookEvent, data: Record<string, unknown>): Record<string, unknown> {
  if (event === 'request.blocked') {
    const r = data as { identity?: { sub?: string }; resource?: { kind?: string; name?: string }; statement?: { normalized?: string }; rules?: string[]; reason?: string };
    const text = `hoop: blocked ${r.identity?.sub ?? '?'} on ${r.resource?.kind ?? '?'}/${r.resource?.name ?? '?'}${r.rules?.length ? ` (${r.rules.join(', ')})` : ''}`;
    return { text, blocks: [{ type: 'section', text: plain(text) }, { type: 'section', text: plain(r.statement?.normalized ?? '') }] };
  }
  const a = (data as { approval: ApprovalRecord }).approval;
  const who = a.actor ? `${a.sub} (for ${(a.actors ?? [a.actor]).join(' → ')})` : a.sub;
  if (event === 'approval.decided') {
    const text = `hoop: approval ${a.id} ${a.status}${a.decided_by ? ` by ${a.decided_by}` : ''}${a.reason ? `: ${a.reason}` : ''} (${who} on ${a.resource})`;
    return { text, blocks: [{ type: 'section', text: plain(text) }] };
  }
  const text = `hoop: ${who} asks to run a statement on ${a.resource} (approvers: ${a.approvers.join(', ')}; expires ${a.expires_at})`;
  const facts = [
    a.details ? `${a.details.kind}${a.details.writes?.length ? ` of ${a.details.writes.join(', ')}` : ''}` : '',
    a.details?.rules.length ? `rules: ${a.details.rules.map((r) => r.id).join(', ')}` : '',
    a.details?.masks.length ? `masks: ${a.details.masks.join('; ')}` : '',
    a.details?.limits.length ? `limits: ${a.details.limits.join('; ')}` : '',
    ...(a.params ?? []).map((p, i) => `$${i + 1} = ${p.value === null ? 'NULL' : p.value}`),
  ].filter(Boolean);
  return {
    text,
    blocks: [
      { type: 'section', text: plain(text) },
      { type: 'section', text: plain(a.statement) },
      ...(facts.length ? [{ type: 'context', elements: [plain(facts.join('\n'))] }] : []),
      {
        type: 'actions',
        block_id: `hoop_approval_${a.id}`,
        elements: [
          { type: 'button', action_id: 'hoop_approve', text: plain('Approve'), style: 'primary', value: a.id },
          { type: 'button', action_id: 'hoop_deny', text: plain('Deny'), style: 'danger', value: a.id },
        ],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Wiring: what the gateway process sends where.

export interface WebhookSources {
  /** The approval store: its local changes become approval.requested / approval.decided. */
  approvals: Pick<ApprovalStore, 'subscribe' | 'get'>;
  /** The audit log: decision records with verdict block become request.blocked. */
  audit: AuditSink;
}

/**
 * Connects the hooks to the gateway's events. Returns the audit sink the front doors must write
 * through (it is the audit log; it only also tells the hooks of blocks, once their records are
 * written) and the function that stops it all.
 */
export function wireWebhooks(webhooks: Webhooks, src: WebhookSources): { audit: AuditSink; close(): Promise<void> } {
  const stop = src.approvals.subscribe((c) => {
    // Only this process's own changes: every replica sends what it did, once.
    if (!c.local || c.event === 'consumed') return;
    src.approvals
      .get(c.id)
      .then((a) => a && webhooks.emit(c.event === 'requested' ? 'approval.requested' : 'approval.decided', approvalEventData(a)))
      .catch(() => undefined);
  });
  const audit = src.audit;
  const seen = (r: AuditRecordInput) => (p: Promise<number>): Promise<number> => {
    if (r.type === 'decision' && r.verdict === 'block') p.then(() => webhooks.emit('request.blocked', blockedEventData(r)), () => undefined);
    return p;
  };
  return {
    audit: {
      append: (r, o) => seen(r)(audit.append(r, o)),
      beforeForward: (r, o) => seen(r)(audit.beforeForward(r, o)),
      beforeAnswer: (seq) => audit.beforeAnswer(seq),
      onSyncFailure: (l) => audit.onSyncFailure(l),
      close: () => audit.close(),
    },
    async close() {
      stop();
      await webhooks.close();
    },
  };
}
