// The admin HTTP API (listen.admin): health, Prometheus metrics and the approvals workflow.
//
//   GET  /healthz                      200 {"status":"ok"} | 503 {"status":"unavailable",...}
//   GET  /metrics                      Prometheus text format
//   GET  /approvals[?status=pending]   {"approvals":[...]}  (Bearer token)
//   GET  /approvals/:id                {"approval":{...}}   (Bearer token)
//   POST /approvals/:id/approve        {"approval":{...}}   (Bearer token; body {"reason":"..."} optional)
//   POST /approvals/:id/deny           same
//   /mcp, /.well-known/oauth-protected-resource   the MCP front door (proxy/mcp/http.ts), when configured
//   GET  /approvals/events             Server-Sent Events: `approval` ({id, event}) whenever one the caller sees changes
//   GET  /ui/                          the approvals page (static HTML, CSS and JS from proxy/admin/ui/)
//   POST /ui/session                   {"token": JWT} or {"code": one-time code} → {"session": "hoopui_...", identity, expires_at}
//   DELETE /ui/session                 signs the page's session out
//   POST /ui/links                     (Bearer token) → {"path": "/ui/#code=...", expires_at}: a one-time sign-in link
//   POST /slack/actions                Slack's interactivity requests (Approve/Deny buttons), signed with its signing secret (slack.ts)
//
// Approvals endpoints authenticate with a Bearer token verified by the gateway's own
// TokenVerifier: the approver's identity is the token's, exactly like an agent's. A caller sees the
// approvals it requested and those it may decide (it is in an approver group); the approval
// service enforces who may decide. Every decision is written to the audit log. Each approval in a
// list carries `can_decide` (and `why_not`) for the caller, so the page never offers a requester
// its own approval. The page's session tokens (ui-sessions.ts) are accepted wherever a token is.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Identity } from '../../stdlib/facts.ts';
import type { ApprovalRecord, ApprovalService, ApprovalStatus, AuditSink, GatewayMetrics, TokenVerifier } from '../ports.ts';
import { auditIdentity } from '../audit/identity.ts';
import { checkDecision, isRequester, type ApprovalStore } from '../approvals/rules.ts';
import { SESSION_PREFIX, UiSessions } from './ui-sessions.ts';
import { serveUi } from './ui.ts';
import { parseSlackAction, postToResponseUrl, slackApprover, verifySlackSignature } from './slack.ts';
import type { SlackConfig } from '../config.ts';
import { parseHostPort, type HostPort } from '../config.ts';
import { jsonForTerminal } from '../../stdlib/terminal-text.ts';

export interface HealthStatus {
  ok: boolean;
  /** Named checks, e.g. {policy: 'ok', audit: 'ok', upstream_prod_main: 'unreachable'}. */
  checks?: Record<string, string>;
}

export interface AdminServerOptions {
  address: HostPort | string;
  approvals: ApprovalService & Pick<ApprovalStore, 'subscribe'>;
  verifier: TokenVerifier;
  metrics: GatewayMetrics;
  health?: () => HealthStatus | Promise<HealthStatus>;
  audit?: AuditSink;
  /** Serve HTTPS with these PEM files (the gateway's `tls`); required off loopback. */
  tls?: { cert: string; key: string };
  /** Routes served before the admin API's own (the MCP front door's `/mcp`): true when it answered. */
  routes?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** `approvals.slack`: enables `/slack/actions`. */
  slack?: SlackConfig;
  log?: (line: string) => void;
  /** Clock, epoch ms (tests). */
  now?: () => number;
  /** Seconds between SSE keep-alive comments (default 15). */
  sseKeepAliveS?: number;
}

export interface AdminServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const STATUSES: ApprovalStatus[] = ['pending', 'approved', 'denied', 'expired', 'consumed'];
const MAX_BODY = 16 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const parsed = typeof opts.address === 'string' ? parseHostPort(opts.address) : opts.address;
  if (typeof parsed === 'string') throw new Error(`internal error: admin address ${String(opts.address)}: ${parsed}`);
  const { host, port } = parsed;
  const ctx: Ctx = { opts, sessions: new UiSessions(opts.now), now: opts.now ?? Date.now, streams: new Set() };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, ctx).catch((err: unknown) => {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
      sendJson(res, 500, { error: { code: 'internal', message: 'internal error, please report' } });
      process.stderr.write(`hoop: admin API: ${(err as Error)?.stack ?? err}\n`);
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, onRequest)
    : createServer(onRequest);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${shownHost}:${addr.port}`,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of [...ctx.streams]) end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Ctx {
  opts: AdminServerOptions;
  sessions: UiSessions;
  now: () => number;
  /** Open event streams: ended when the server closes. */
  streams: Set<() => void>;
}

interface Caller {
  identity: Identity;
  /** epoch ms */
  expiresAt: number;
  /** The page's session token, when the caller used one. */
  session?: string;
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
  const { opts } = ctx;
  if (opts.routes && (await opts.routes(req, res))) return;
  const url = new URL(req.url ?? '/', 'http://admin');
  const raw = url.pathname;
  const path = raw.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';

  if (path === '/healthz') {
    allow(method, ['GET', 'HEAD']);
    const h = opts.health ? await opts.health() : { ok: true };
    return sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unavailable', ...(h.checks ? { checks: h.checks } : {}) });
  }
  if (path === '/metrics') {
    allow(method, ['GET', 'HEAD']);
    const body = opts.metrics.render();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    return void res.end(method === 'HEAD' ? undefined : body);
  }
  if (path === '/ui/session') {
    allow(method, ['POST', 'DELETE']);
    if (method === 'DELETE') {
      const caller = await authenticate(req, ctx);
      if (caller.session) ctx.sessions.close(caller.session);
      return sendJson(res, 200, { signed_out: true });
    }
    const body = await readJsonBody(req);
    let identity: Identity;
    let expiresAt: number;
    let session: string;
    if (typeof body.code === 'string') {
      const r = ctx.sessions.redeem(body.code);
      if (!r) throw new HttpError(401, 'bad_link', 'this sign-in link is unknown, used or expired: run `hoop approvals open` again');
      ({ identity, expiresAt } = r.session);
      session = r.token;
    } else if (typeof body.token === 'string') {
      if (body.token.trim().startsWith(SESSION_PREFIX)) throw new HttpError(400, 'bad_request', 'paste your identity token (a JWT), not a page session');
      const v = await opts.verifier.verify(body.token);
      if (!v.ok) throw new HttpError(401, v.code, v.reason);
      ({ identity, expiresAt } = v);
      session = ctx.sessions.open(identity, expiresAt);
    } else {
      throw new HttpError(400, 'bad_request', 'send {"token": "<your JWT>"} or {"code": "<one-time code>"}');
    }
    return sendJson(res, 200, { session, identity: whoView(identity), expires_at: new Date(expiresAt).toISOString() });
  }
  if (path === '/ui/links') {
    allow(method, ['POST']);
    const caller = await authenticate(req, ctx);
    const link = ctx.sessions.link(caller.identity, caller.expiresAt);
    return sendJson(res, 200, { path: `/ui/#code=${link.code}`, expires_at: new Date(link.expiresAt).toISOString() });
  }
  if (raw === '/ui' || raw.startsWith('/ui/')) {
    allow(method, ['GET', 'HEAD']);
    if (raw === '/ui') {
      res.writeHead(308, { location: '/ui/' });
      return void res.end();
    }
    if (!serveUi(raw.slice('/ui/'.length), method, res)) throw new HttpError(404, 'not_found', `no page ${raw}`);
    return;
  }
  if (path === '/slack/actions') {
    allow(method, ['POST']);
    return slackAction(req, res, ctx);
  }
  if (path === '/approvals/events') {
    allow(method, ['GET']);
    const caller = await authenticate(req, ctx);
    return streamEvents(req, res, ctx, caller);
  }
  if (path === '/approvals') {
    allow(method, ['GET']);
    const caller = await authenticate(req, ctx);
    const status = url.searchParams.get('status') ?? undefined;
    if (status !== undefined && !STATUSES.includes(status as ApprovalStatus)) {
      throw new HttpError(400, 'bad_status', `status must be one of ${STATUSES.join(', ')}`);
    }
    const all = await opts.approvals.list(status ? { status: status as ApprovalStatus } : undefined);
    return sendJson(res, 200, { approvals: all.filter((a) => visibleTo(a, caller.identity)).map((a) => forCaller(a, caller.identity)) });
  }
  const m = /^\/approvals\/([A-Za-z0-9_-]+)(?:\/(approve|deny))?$/.exec(path);
  if (m) {
    const [, id, action] = m;
    if (!action) {
      allow(method, ['GET']);
      const caller = await authenticate(req, ctx);
      const found = (await opts.approvals.list()).find((a) => a.id === id);
      if (!found || !visibleTo(found, caller.identity)) throw new HttpError(404, 'not_found', `no approval ${id}`);
      return sendJson(res, 200, { approval: forCaller(found, caller.identity) });
    }
    allow(method, ['POST']);
    const caller = (await authenticate(req, ctx)).identity;
    const body = await readJsonBody(req);
    const reason = body.reason;
    if (reason !== undefined && typeof reason !== 'string') throw new HttpError(400, 'bad_request', '`reason` must be a string');
    if (typeof reason === 'string' && reason.length > 2000) throw new HttpError(400, 'bad_request', '`reason` must be at most 2000 characters');
    const decision = action === 'approve' ? 'approve' : 'deny';
    const r = await opts.approvals.decide(id, caller, decision, reason || undefined);
    if (!r.ok) {
      const status = r.code === 'not_found' ? 404 : r.code === 'requester_cannot_approve' || r.code === 'not_an_approver' ? 403 : 409;
      throw new HttpError(status, r.code, r.reason);
    }
    await opts.audit?.append({
      type: 'approval',
      approval_id: id,
      identity: auditIdentity(caller),
      token: { jti: caller.token_id, iss: caller.issuer },
      client_addr: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      outcome: decision === 'approve' ? 'executed' : 'denied',
      reason: `${decision === 'approve' ? 'approved' : 'denied'} ${r.record.sub}'s statement on ${r.record.resource}${reason ? `: ${reason}` : ''}`,
    });
    return sendJson(res, 200, { approval: forCaller(r.record, caller) });
  }
  throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
}

async function slackAction(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
  const { opts } = ctx;
  const log = opts.log ?? ((line: string) => process.stderr.write(`hoop gateway: ${line}\n`));
  if (!opts.slack) throw new HttpError(404, 'not_found', 'Slack actions are not configured (approvals.slack)');
  const raw = (await readRawBody(req, 1024 * 1024)).toString('utf8'); // Slack sends the whole message back
  const header = (n: string) => (typeof req.headers[n] === 'string' ? (req.headers[n] as string) : undefined);
  const check = verifySlackSignature(opts.slack.signingSecret, raw, header('x-slack-request-timestamp'), header('x-slack-signature'), ctx.now());
  if (!check.ok) {
    opts.metrics.connectionRefused('slack_bad_signature');
    throw new HttpError(401, 'bad_signature', check.reason);
  }
  const action = parseSlackAction(raw);
  if (typeof action === 'string') throw new HttpError(400, 'bad_request', action);
  const approver = slackApprover(opts.slack, action.slackUser.id);
  // Slack wants its answer within 3 s; what happened goes to the message's response_url.
  if (!approver) {
    sendJson(res, 200, {});
    return postToResponseUrl(action.responseUrl, { response_type: 'ephemeral', replace_original: false, text: `hoop: your Slack user (${action.slackUser.id}) is not mapped to an approver (approvals.slack.users)` }, log);
  }
  const reason = `via Slack${action.slackUser.name ? ` (${action.slackUser.name})` : ''}`;
  const r = await opts.approvals.decide(action.approvalId, approver, action.decision, reason);
  if (!r.ok) {
    sendJson(res, 200, {});
    return postToResponseUrl(action.responseUrl, { response_type: 'ephemeral', replace_original: false, text: `hoop: ${r.code}: ${r.reason}` }, log);
  }
  await opts.audit?.append({
    type: 'approval',
    approval_id: action.approvalId,
    identity: auditIdentity(approver),
    token: { iss: 'slack' },
    client_addr: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    outcome: action.decision === 'approve' ? 'executed' : 'denied',
    reason: `${action.decision === 'approve' ? 'approved' : 'denied'} ${r.record.sub}'s statement on ${r.record.resource} ${reason} (Slack user ${action.slackUser.id})`,
  });
  sendJson(res, 200, {});
  postToResponseUrl(action.responseUrl, { replace_original: true, text: `hoop: approval ${r.record.id} ${r.record.status} by ${approver.sub} ${reason} (${r.record.sub} on ${r.record.resource})` }, log);
}

/**
 * `text/event-stream`: `ready` once subscribed, then `approval` with `{id, event}` for every change
 * to an approval the caller may see (requested, decided, consumed; here or on another replica),
 * a comment every `sseKeepAliveS`, and `signed_out` when the caller's token expires.
 */
function streamEvents(req: IncomingMessage, res: ServerResponse, ctx: Ctx, caller: Caller): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
  const send = (event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${jsonForTerminal(data)}\n\n`);
  };
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    stop();
    clearInterval(keepAlive);
    clearTimeout(expiry);
    ctx.streams.delete(end);
    res.end();
  };
  const stop = ctx.opts.approvals.subscribe((change) => {
    // Visibility needs the record: a new approval's requester and approver groups.
    ctx.opts.approvals
      .list()
      .then((all) => {
        const a = all.find((x) => x.id === change.id);
        if (!ended && a && visibleTo(a, caller.identity)) send('approval', { id: change.id, event: change.event });
      })
      .catch(() => undefined);
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), (ctx.opts.sseKeepAliveS ?? 15) * 1000);
  const expiry = setTimeout(() => {
    send('signed_out', { reason: 'your token expired: sign in again' });
    end();
  }, Math.min(2 ** 31 - 1, Math.max(0, caller.expiresAt - ctx.now())));
  ctx.streams.add(end);
  req.on('close', end);
  res.on('error', end);
  send('ready', { sub: caller.identity.sub });
}

/** What the page shows of who is signed in. */
function whoView(i: Identity): Record<string, unknown> {
  return { sub: i.sub, groups: i.groups, ...(i.actor ? { actor: i.actor } : {}), ...(i.actors ? { actors: i.actors } : {}) };
}

/** An approval as this caller sees it: whether they may decide it, and why not. */
function forCaller(a: ApprovalRecord, caller: Identity): ApprovalRecord & { can_decide: boolean; why_not?: string; requested_by_you: boolean } {
  const check = checkDecision(a, caller);
  return { ...a, can_decide: check.ok, ...(check.ok ? {} : { why_not: check.reason }), requested_by_you: isRequester(a, caller) };
}

function visibleTo(a: ApprovalRecord, caller: Identity): boolean {
  return isRequester(a, caller) || caller.groups.some((g) => a.approvers.includes(g));
}

async function authenticate(req: IncomingMessage, ctx: Ctx): Promise<Caller> {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) throw new HttpError(401, 'missing_token', 'send the approver\'s token as `Authorization: Bearer <token>` (hoop reads it from HOOP_TOKEN)');
  if (m[1].startsWith(SESSION_PREFIX)) {
    const s = ctx.sessions.get(m[1]);
    if (!s) throw new HttpError(401, 'signed_out', 'the page\'s session ended (the token expired, or the gateway restarted): sign in again');
    return { identity: s.identity, expiresAt: s.expiresAt, session: m[1] };
  }
  const r = await ctx.opts.verifier.verify(m[1]);
  if (!r.ok) throw new HttpError(401, r.code, r.reason);
  return { identity: r.identity, expiresAt: r.expiresAt };
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, 'method_not_allowed', `use ${methods.join(' or ')}`);
}

async function readRawBody(req: IncomingMessage, max = MAX_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new HttpError(413, 'body_too_large', `the body must be under ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readRawBody(req)).toString('utf8').trim();
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be a JSON object');
  }
}

/**
 * Every JSON answer goes through jsonForTerminal: statements, identities and reasons came from
 * agents, and an approver may read the response with curl on a terminal. DEL, C1, bidi controls,
 * U+2028–2029 and zero-width characters are written as \uXXXX (JSON.stringify escapes only C0);
 * the parsed value is the same.
 */
function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  const text = jsonForTerminal(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}
