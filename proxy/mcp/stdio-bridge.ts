// `hoop mcp`: the MCP front door on stdio, for clients that spawn their servers (Claude Code,
// Cursor, the SDKs' stdio clients). It holds no credentials and decides nothing: it relays each
// JSON-RPC message, unchanged, to the gateway's `/mcp` (Streamable HTTP) with the agent's token as
// the bearer token, and relays the answers back. So the gateway's one audit chain, its policy,
// approvals and upstream credentials stay in the gateway process; an agent that can read its own
// MCP server's environment finds only its own token there.

import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface BridgeOptions {
  /** The gateway's MCP endpoint, e.g. http://127.0.0.1:6480/mcp. */
  url: URL;
  /** The agent's token, read again for every request (a token file may be refreshed meanwhile). */
  token(): string;
  log(line: string): void;
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
}

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: string } {
  return 'method' in m && 'id' in m && m.id !== undefined;
}

/** Runs until stdin ends; resolves then. */
export async function runStdioBridge(opts: BridgeOptions): Promise<void> {
  const stdio = new StdioServerTransport(opts.stdin as never, opts.stdout as never);
  const http = new StreamableHTTPClientTransport(opts.url, {
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${opts.token()}`);
      return fetch(url, { ...init, headers });
    },
  });
  const initializeIds = new Set<string | number>();
  let ended: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (ended = resolve));

  stdio.onmessage = (message) => {
    if (isRequest(message) && message.method === 'initialize') initializeIds.add(message.id);
    http.send(message).catch((e: Error) => {
      const reason = e.message.replace(/^Streamable HTTP error: /, '');
      opts.log(`gateway ${opts.url.href}: ${reason}`);
      // A request must get an answer: the client would wait for it forever.
      if (isRequest(message)) void stdio.send({ jsonrpc: '2.0', id: message.id, error: { code: -32001, message: `hoop mcp: the gateway refused or could not be reached: ${reason}` } });
    });
  };
  http.onmessage = (message) => {
    // The protocol version the gateway agreed goes on every later request, as the SDK client does.
    if ('id' in message && message.id !== undefined && initializeIds.delete(message.id) && 'result' in message) {
      const v = (message.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof v === 'string') http.setProtocolVersion(v);
    }
    void stdio.send(message);
  };
  http.onerror = (e) => opts.log(`gateway ${opts.url.href}: ${e.message}`);
  stdio.onerror = (e) => opts.log(`stdio: ${e.message}`);
  stdio.onclose = () => {
    void http.terminateSession().catch(() => undefined).finally(() => {
      void http.close();
      ended();
    });
  };
  await http.start();
  await stdio.start();
  (opts.stdin ?? process.stdin).once('end', () => void stdio.close());
  return done;
}
