// The admin HTTP API (listen.admin): health, Prometheus metrics and the approvals workflow.
//
//   GET  /healthz                      200 {"status":"ok"} | 503 {"status":"unavailable",...}
//   GET  /metrics                      Prometheus text format
//   GET  /approvals[?status=pending]   {"approvals":[...]}  (Bearer token)
//   GET  /approvals/:id                {"approval":{...}}   (Bearer token)
//   POST /approvals/:id/approve        {"approval":{...}}   (Bearer token; body {"reason":"..."} optional)
//   POST /approvals/:id/deny           same
//   /mcp, /.well-known/oauth-protected-resource   the MCP front door (proxy/mcp/http.ts), when configured
//
// Approvals endpoints authenticate with a Bearer token verified by the gateway's own
// TokenVerifier: the approver's identity is the token's, exactly like an agent's. A caller sees the
// approvals it requested and those it may decide (it is in an approver group); the approval
// service enforces who may decide. Every decision is written to the audit log.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Identity } from '../../stdlib/facts.ts';
import type { ApprovalRecord, ApprovalService, ApprovalStatus, AuditSink, GatewayMetrics, TokenVerifier } from '../ports.ts';
import { auditIdentity } from '../audit/identity.ts';
import { parseHostPort, type HostPort } from '../config.ts';
import { jsonForTerminal } from '../../stdlib/terminal-text.ts';

export interface HealthStatus {
  ok: boolean;
  /** Named checks, e.g. {policy: 'ok', audit: 'ok', upstream_prod_main: 'unreachable'}. */
  checks?: Record<string, string>;
}

export interface AdminServerOptions {
  address: HostPort | string;
  approvals: ApprovalService;
  verifier: TokenVerifier;
  metrics: GatewayMetrics;
  health?: () => HealthStatus | Promise<HealthStatus>;
  audit?: AuditSink;
  /** Serve HTTPS with these PEM files (the gateway's `tls`); required off loopback. */
  tls?: { cert: string; key: string };
  /** Routes served before the admin API's own (the MCP front door's `/mcp`): true when it answered. */
  routes?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
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
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, opts).catch((err: unknown) => {
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
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: AdminServerOptions): Promise<void> {
  if (opts.routes && (await opts.routes(req, res))) return;
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname.replace(/\/+$/, '') || '/';
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
  if (path === '/approvals') {
    allow(method, ['GET']);
    const caller = await authenticate(req, opts.verifier);
    const status = url.searchParams.get('status') ?? undefined;
    if (status !== undefined && !STATUSES.includes(status as ApprovalStatus)) {
      throw new HttpError(400, 'bad_status', `status must be one of ${STATUSES.join(', ')}`);
    }
    const all = await opts.approvals.list(status ? { status: status as ApprovalStatus } : undefined);
    return sendJson(res, 200, { approvals: all.filter((a) => visibleTo(a, caller)) });
  }
  const m = /^\/approvals\/([A-Za-z0-9_-]+)(?:\/(approve|deny))?$/.exec(path);
  if (m) {
    const [, id, action] = m;
    if (!action) {
      allow(method, ['GET']);
      const caller = await authenticate(req, opts.verifier);
      const found = (await opts.approvals.list()).find((a) => a.id === id);
      if (!found || !visibleTo(found, caller)) throw new HttpError(404, 'not_found', `no approval ${id}`);
      return sendJson(res, 200, { approval: found });
    }
    allow(method, ['POST']);
    const caller = await authenticate(req, opts.verifier);
    const body = await readJsonBody(req);
    const reason = body.reason;
    if (reason !== undefined && typeof reason !== 'string') throw new HttpError(400, 'bad_request', '`reason` must be a string');
    const decision = action === 'approve' ? 'approve' : 'deny';
    const r = await opts.approvals.decide(id, caller, decision, reason);
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
    return sendJson(res, 200, { approval: r.record });
  }
  throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
}

function visibleTo(a: ApprovalRecord, caller: Identity): boolean {
  return a.sub === caller.sub || caller.groups.some((g) => a.approvers.includes(g));
}

async function authenticate(req: IncomingMessage, verifier: TokenVerifier): Promise<Identity> {
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) throw new HttpError(401, 'missing_token', 'send the approver\'s token as `Authorization: Bearer <token>` (hoop reads it from HOOP_TOKEN)');
  const r = await verifier.verify(m[1]);
  if (!r.ok) throw new HttpError(401, r.code, r.reason);
  return r.identity;
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, 'method_not_allowed', `use ${methods.join(' or ')}`);
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'body_too_large', `the body must be under ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
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
