// `/mcp` on the admin address: the MCP Streamable HTTP transport (the SDK's), one MCP session per
// client, every HTTP request authenticated with a bearer token the gateway verifies itself.
//
//   GET  /.well-known/oauth-protected-resource[/mcp]   RFC 9728 protected-resource metadata: the
//        resource (this /mcp URL) and the authorization server(s) that issue its tokens (the
//        configured identity issuer), so a client can discover where to get a token.
//   POST /mcp, GET /mcp, DELETE /mcp                    the MCP transport. Without a valid token:
//        401 with `WWW-Authenticate: Bearer resource_metadata="…"` (and `error="invalid_token"`
//        for a bad one), as the MCP authorization spec says.
//
// A session is bound to the identity (issuer and subject) that opened it: a request carrying the
// session id with another identity's token is refused (404, as for an unknown session). Each
// request's token is verified again, so expiry is checked on every call, and a refreshed token of
// the same identity carries on. A session nobody used for `mcp.session_idle` is closed.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Identity, Resource } from '../../stdlib/facts.ts';
import type { TokenVerifier } from '../ports.ts';
import type { McpCaller, McpEnforcement } from './port.ts';
import type { McpSettings } from './settings.ts';
import { createToolServer } from './tools.ts';
import type { PgUpstreams } from './upstream.ts';
import type { SshRunner } from './ssh-run.ts';

export const MCP_PATH = '/mcp';
const METADATA_PATHS = new Set(['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']);

export interface McpHttpOptions {
  verifier: TokenVerifier;
  resources: readonly Resource[];
  enforcement: McpEnforcement & { endSession?(sessionId: string): Promise<void> };
  upstreams: PgUpstreams;
  settings: McpSettings;
  ssh?: SshRunner | undefined;
  /** The issuers whose tokens the gateway accepts (the metadata's `authorization_servers`). */
  issuers: readonly string[];
  /** The admin API serves HTTPS. */
  tls: boolean;
  log?: (line: string) => void;
}

interface Session {
  id: string;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  owner: string;
  caller: McpCaller;
  lastUsed: number;
}

export interface McpHttp {
  /** Serves the request if it is the MCP front door's (true), else leaves it to the admin API (false). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  readonly sessions: number;
  close(): Promise<void>;
}

function ownerOf(id: Identity): string {
  return `${id.issuer ?? ''}\u0000${id.sub}`;
}

function baseUrl(req: IncomingMessage, tls: boolean): string {
  return `${tls ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** A JSON-RPC error answer (the transport's own shape), for refusals before the transport sees the request. */
function rpcError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code: -32001, message }, id: null }, headers);
}

export function createMcpHttp(opts: McpHttpOptions): McpHttp {
  const sessions = new Map<string, Session>();
  const log = opts.log ?? (() => undefined);

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const s of [...sessions.values()]) if (now - s.lastUsed > opts.settings.sessionIdleMs) void s.transport.close();
  }, Math.min(60_000, opts.settings.sessionIdleMs));
  sweep.unref();

  function metadata(req: IncomingMessage): Record<string, unknown> {
    return {
      resource: `${baseUrl(req, opts.tls)}${MCP_PATH}`,
      authorization_servers: [...opts.issuers],
      bearer_methods_supported: ['header'],
      resource_name: 'hoop-policy gateway (MCP)',
    };
  }

  function challenge(req: IncomingMessage, error?: { code: string; description: string }): Record<string, string> {
    const parts = [`resource_metadata="${baseUrl(req, opts.tls)}/.well-known/oauth-protected-resource/mcp"`];
    if (error) parts.push(`error="${error.code}"`, `error_description="${error.description.replace(/["\\]/g, "'")}"`);
    return { 'www-authenticate': `Bearer ${parts.join(', ')}` };
  }

  /** Browsers send Origin: only this server's own origin may call it (DNS rebinding). Non-browser clients send none. */
  function originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  async function handleMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!originAllowed(req)) return rpcError(res, 403, `hoop: origin ${String(req.headers.origin)} may not call this MCP server`);
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return rpcError(res, 401, 'hoop: send the agent\'s token as `Authorization: Bearer <token>`', challenge(req));
    const token = m[1]!;
    const verified = await opts.verifier.verify(token);
    if (!verified.ok) return rpcError(res, 401, `hoop: token refused (${verified.code}): ${verified.reason}`, challenge(req, { code: 'invalid_token', description: `${verified.code}: ${verified.reason}` }));
    const identity = verified.identity;
    const clientAddr = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    (req as IncomingMessage & { auth?: unknown }).auth = { token, clientId: identity.sub, scopes: [], expiresAt: Math.floor(verified.expiresAt / 1000), extra: { sub: identity.sub } };

    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const s = sessions.get(sid);
      // Another identity's session is as good as none: it cannot be told apart from a guess.
      if (!s || s.owner !== ownerOf(identity)) return rpcError(res, 404, 'hoop: no such MCP session (it ended, or it belongs to another identity); initialize a new one');
      s.caller = { identity, expiresAt: verified.expiresAt, clientAddr, sessionId: s.id };
      s.lastUsed = Date.now();
      await s.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') return rpcError(res, 400, 'hoop: no MCP session: POST an initialize request first');

    const pending: { session?: Session } = {};
    let caller: McpCaller = { identity, expiresAt: verified.expiresAt, clientAddr, sessionId: '' };
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        caller = { ...caller, sessionId: id };
        const s: Session = { id, transport, server, owner: ownerOf(identity), caller, lastUsed: Date.now() };
        pending.session = s;
        sessions.set(id, s);
      },
    });
    const server = createToolServer({
      caller: () => pending.session?.caller ?? caller,
      resources: opts.resources,
      enforcement: opts.enforcement,
      upstreams: opts.upstreams,
      settings: opts.settings,
      ssh: opts.ssh,
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id && sessions.get(id)?.transport === transport) {
        sessions.delete(id);
        void opts.enforcement.endSession?.(id).catch((e: Error) => log(`MCP session ${id}: ${e.message}`));
      }
    };
    await server.connect(transport);
    await transport.handleRequest(req, res);
    // An initialize that failed leaves no session behind.
    if (!transport.sessionId) await server.close();
  }

  return {
    async handle(req, res) {
      const path = new URL(req.url ?? '/', 'http://mcp').pathname.replace(/\/+$/, '') || '/';
      if (METADATA_PATHS.has(path)) {
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'use GET' } });
          return true;
        }
        sendJson(res, 200, metadata(req), { 'access-control-allow-origin': '*' });
        return true;
      }
      if (path !== MCP_PATH) return false;
      try {
        await handleMcp(req, res);
      } catch (e) {
        log(`MCP request failed: ${(e as Error).stack ?? e}`);
        if (!res.headersSent) rpcError(res, 500, 'hoop: internal error, please report');
        else res.end();
      }
      return true;
    },
    get sessions() {
      return sessions.size;
    },
    async close() {
      clearInterval(sweep);
      for (const s of [...sessions.values()]) await s.transport.close().catch(() => undefined);
      sessions.clear();
    },
  };
}
