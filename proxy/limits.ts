// The gateway's resource limits (config key `limits`): what one connection may make the gateway
// hold or do before and after it authenticates. Unauthenticated connections get small limits
// (a token is a few KiB; PostgreSQL's own authentication_timeout is 60 s, its startup packet limit
// 10,000 bytes), so a peer without a token cannot pin memory or sockets.

import { parseDuration } from './duration.ts';

export interface GatewayLimits {
  /** A connection that has not authenticated after this long is closed (like `authentication_timeout`). */
  authenticationTimeoutMs: number;
  /** The password message carrying the token. */
  maxPasswordMessage: number;
  /** Everything a connection may send before it is authenticated (startup packet, token, pipelined bytes). */
  maxUnauthenticatedBytes: number;
  /** Connections from one client address that may be unauthenticated at the same time. */
  maxUnauthenticatedPerClient: number;
  /** A message the gateway must decode whole (Query, Parse, FunctionCall, a masked DataRow). */
  maxMessageSize: number;
  /**
   * The longest statement the gateway classifies (a Query's text; a Parse's text plus its declared
   * parameter types); a longer one is refused with 54000 before it is buffered or parsed.
   */
  maxStatementSize: number;
  /** Worker threads that classify long statements off the event loop. */
  classifierWorkers: number;
  /** A statement whose classification takes longer is refused (its worker is replaced). */
  classificationTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<GatewayLimits> = Object.freeze({
  authenticationTimeoutMs: 30_000,
  maxPasswordMessage: 16 * 1024,
  maxUnauthenticatedBytes: 256 * 1024,
  maxUnauthenticatedPerClient: 128,
  maxMessageSize: 64 * 1024 * 1024,
  maxStatementSize: 1024 * 1024,
  classifierWorkers: 1,
  classificationTimeoutMs: 10_000,
});

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1000, kib: 1024, mb: 1000 ** 2, mib: 1024 ** 2, gb: 1000 ** 3, gib: 1024 ** 3 };

/** Bytes, from a number or `16KiB`, `64MiB`, `1GB`; undefined when not a size. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return n > 0 ? n : undefined;
}

const KEYS: Record<string, { field: keyof GatewayLimits; kind: 'size' | 'duration' | 'count' }> = {
  authentication_timeout: { field: 'authenticationTimeoutMs', kind: 'duration' },
  max_password_message: { field: 'maxPasswordMessage', kind: 'size' },
  max_unauthenticated_bytes: { field: 'maxUnauthenticatedBytes', kind: 'size' },
  max_unauthenticated_per_client: { field: 'maxUnauthenticatedPerClient', kind: 'count' },
  max_message_size: { field: 'maxMessageSize', kind: 'size' },
  max_statement_size: { field: 'maxStatementSize', kind: 'size' },
  classifier_workers: { field: 'classifierWorkers', kind: 'count' },
  classification_timeout: { field: 'classificationTimeoutMs', kind: 'duration' },
};

/** The `limits` mapping of hoop.yaml, defaults filled in; problems reported through `err`. */
export function parseLimits(raw: unknown, err: (path: string, message: string) => void): GatewayLimits {
  const limits: GatewayLimits = { ...DEFAULT_LIMITS };
  if (raw === undefined) return limits;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    err('limits', 'expected a mapping');
    return limits;
  }
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = KEYS[k];
    if (!key) {
      err(`limits.${k}`, `unknown key (known: ${Object.keys(KEYS).join(', ')})`);
      continue;
    }
    const value =
      key.kind === 'size' ? parseSize(v) : key.kind === 'duration' ? (typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined) : Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined;
    if (value === undefined || value <= 0) {
      const want = key.kind === 'size' ? 'a size like 16KiB or 64MiB' : key.kind === 'duration' ? 'a duration like 30s' : 'a positive integer';
      err(`limits.${k}`, `expected ${want}, got ${JSON.stringify(v)}`);
      continue;
    }
    limits[key.field] = value;
  }
  if (limits.maxStatementSize > limits.maxMessageSize) {
    err('limits.max_statement_size', `must not exceed limits.max_message_size (${limits.maxMessageSize} bytes): a statement is decoded whole`);
  }
  return limits;
}
