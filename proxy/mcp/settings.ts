// The `mcp` mapping of hoop.yaml: what the MCP front door (`/mcp` on the admin address, and `hoop
// mcp` on stdio, which relays to it) lets one tool call cost. Defaults filled in; problems reported
// through `err` with their key path.
//
//   mcp:
//     max_rows: 1000            # rows one result set returns to the agent; more → `truncated: true`
//     max_result_bytes: 1MiB    # bytes of values one call returns; more → `truncated: true`
//     statement_timeout: 30s    # PostgreSQL statement_timeout of the gateway's upstream connections
//     max_wait: 50s             # longest wait_for_approval may block (MCP clients time out at 60 s)
//     pool_size: 2              # upstream connections per identity and resource
//     idle_timeout: 5m          # an idle pooled connection is closed after this
//     session_idle: 30m         # an HTTP MCP session nobody used for this long is closed

import { parseDuration } from '../duration.ts';
import { parseSize } from '../limits.ts';

export interface McpSettings {
  maxRows: number;
  maxResultBytes: number;
  statementTimeoutMs: number;
  maxWaitMs: number;
  poolSize: number;
  idleTimeoutMs: number;
  sessionIdleMs: number;
}

export const DEFAULT_MCP_SETTINGS: Readonly<McpSettings> = Object.freeze({
  maxRows: 1000,
  maxResultBytes: 1024 * 1024,
  statementTimeoutMs: 30_000,
  maxWaitMs: 50_000,
  poolSize: 2,
  idleTimeoutMs: 5 * 60_000,
  sessionIdleMs: 30 * 60_000,
});

const KEYS: Record<string, { field: keyof McpSettings; kind: 'count' | 'size' | 'duration' }> = {
  max_rows: { field: 'maxRows', kind: 'count' },
  max_result_bytes: { field: 'maxResultBytes', kind: 'size' },
  statement_timeout: { field: 'statementTimeoutMs', kind: 'duration' },
  max_wait: { field: 'maxWaitMs', kind: 'duration' },
  pool_size: { field: 'poolSize', kind: 'count' },
  idle_timeout: { field: 'idleTimeoutMs', kind: 'duration' },
  session_idle: { field: 'sessionIdleMs', kind: 'duration' },
};

export function parseMcpSettings(raw: unknown, err: (path: string, message: string) => void): McpSettings {
  const out: McpSettings = { ...DEFAULT_MCP_SETTINGS };
  if (raw === undefined) return out;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    err('mcp', 'expected a mapping');
    return out;
  }
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = KEYS[k];
    if (!key) {
      err(`mcp.${k}`, `unknown key (known: ${Object.keys(KEYS).join(', ')})`);
      continue;
    }
    const value =
      key.kind === 'size'
        ? parseSize(v)
        : key.kind === 'duration'
          ? typeof v === 'string' || typeof v === 'number'
            ? parseDuration(v)
            : undefined
          : Number.isInteger(v) && (v as number) > 0
            ? (v as number)
            : undefined;
    if (value === undefined || value <= 0) {
      const want = key.kind === 'size' ? 'a size like 1MiB' : key.kind === 'duration' ? 'a duration like 30s' : 'a positive integer';
      err(`mcp.${k}`, `expected ${want}, got ${JSON.stringify(v)}`);
      continue;
    }
    out[key.field] = value;
  }
  if (out.maxWaitMs > 55_000) err('mcp.max_wait', 'must be under 55s: MCP clients give up on a request after 60 s by default');
  return out;
}
