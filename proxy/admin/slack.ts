// `/slack/actions`: Slack's interactivity request URL for the Approve/Deny buttons the `slack`
// webhook format posts. Every request is verified with Slack's signing secret (the `v0` scheme:
// `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:<timestamp>:<raw body>")>`, the timestamp
// within 5 minutes), and the Slack user who clicked is mapped to a configured approver identity
// (`approvals.slack.users`): an unmapped user decides nothing. The decision then goes through the
// approval store like any other (group, never the requester, first decision wins) and is audited;
// the outcome is posted back to the message's `response_url`.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SlackConfig } from '../config.ts';
import type { Identity } from '../../stdlib/facts.ts';

export const SLACK_TOLERANCE_S = 300;

export type SlackCheck = { ok: true } | { ok: false; reason: string };

export function verifySlackSignature(signingSecret: string, rawBody: string, timestamp: string | undefined, signature: string | undefined, nowMs: number): SlackCheck {
  if (!timestamp || !/^\d+$/.test(timestamp)) return { ok: false, reason: 'missing X-Slack-Request-Timestamp' };
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestamp)) > SLACK_TOLERANCE_S) return { ok: false, reason: 'the request timestamp is more than 5 minutes away (a replay?)' };
  const m = /^v0=([0-9a-f]{64})$/.exec(signature ?? '');
  if (!m) return { ok: false, reason: 'missing or malformed X-Slack-Signature' };
  const want = createHmac('sha256', signingSecret).update(`v0:${timestamp}:${rawBody}`).digest();
  return timingSafeEqual(want, Buffer.from(m[1]!, 'hex')) ? { ok: true } : { ok: false, reason: 'the Slack signature does not verify' };
}

export interface SlackAction {
  decision: 'approve' | 'deny';
  approvalId: string;
  slackUser: { id: string; name?: string };
  responseUrl?: string;
}

/** The block_actions payload of a hoop button, or why it is not one. */
export function parseSlackAction(rawBody: string): SlackAction | string {
  const payload = new URLSearchParams(rawBody).get('payload');
  if (!payload) return 'the body has no `payload`';
  let p: { type?: unknown; user?: { id?: unknown; username?: unknown; name?: unknown }; actions?: { action_id?: unknown; value?: unknown }[]; response_url?: unknown };
  try {
    p = JSON.parse(payload) as typeof p;
  } catch {
    return '`payload` is not JSON';
  }
  if (p.type !== 'block_actions') return `not a button click (type ${JSON.stringify(p.type)})`;
  const action = p.actions?.[0];
  const id = action?.action_id;
  if (id !== 'hoop_approve' && id !== 'hoop_deny') return 'not a hoop button';
  if (typeof action?.value !== 'string' || !/^apr_[A-Za-z0-9_-]+$/.test(action.value)) return 'the button names no approval';
  if (typeof p.user?.id !== 'string') return 'the payload names no Slack user';
  const name = typeof p.user.username === 'string' ? p.user.username : typeof p.user.name === 'string' ? p.user.name : undefined;
  return {
    decision: id === 'hoop_approve' ? 'approve' : 'deny',
    approvalId: action.value,
    slackUser: { id: p.user.id, ...(name ? { name } : {}) },
    ...(typeof p.response_url === 'string' ? { responseUrl: p.response_url } : {}),
  };
}

/** The approver identity a Slack user decides as, if configured. */
export function slackApprover(cfg: SlackConfig, userId: string): Identity | undefined {
  const u = Object.hasOwn(cfg.users, userId) ? cfg.users[userId] : undefined;
  if (!u) return undefined;
  return { sub: u.sub, groups: [...u.groups], claims: { slack_user_id: userId }, issuer: 'slack' };
}

/** Best effort: tells Slack what happened (replacing the buttons when decided). Never awaited by a decision. */
export function postToResponseUrl(url: string | undefined, message: Record<string, unknown>, log: (line: string) => void): void {
  if (!url) return;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return;
  }
  fetch(u, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(message), signal: AbortSignal.timeout(10_000), redirect: 'error' })
    .then((r) => r.arrayBuffer())
    .catch((e: Error) => log(`slack: response_url: ${e.message}`));
}
