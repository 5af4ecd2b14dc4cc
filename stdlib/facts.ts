// The request a decision is made over: `{ identity, resource, action, context }`
// (DESIGN.md "Requests and facts"). Classifiers in stdlib produce `action`; the proxy fills
// identity (from the verified token), resource (from config) and context. The engine reads them.
//
// Field names are snake_case on purpose: they are exactly the names policies see in CEL
// (`sql.has_where`, `identity.sub`, `shell.redirects`).

import { SQL_KINDS, type ResourceKind, type SqlKind } from '../language/ast.ts';

export type { SqlKind, ResourceKind };

export interface Identity {
  sub: string;
  groups: string[];
  /** RFC 8693 `act.sub`: the human or workflow on whose behalf the agent acts. */
  actor?: string;
  /** The whole RFC 8693 `act` chain, outermost first (`actor` is its first entry). */
  actors?: string[];
  /** The OAuth client the token was issued to (`azp`, else `client_id`). */
  client_id?: string;
  /** Every claim of the token, verbatim. */
  claims: Record<string, unknown>;
  /** `jti` */
  token_id?: string;
  /** `iss` */
  issuer?: string;
}

export interface Resource {
  kind: ResourceKind;
  name: string;
  labels: Record<string, string>;
}

export interface RequestContext {
  /** ISO-8601 timestamp of the request. */
  time: string;
  client_addr: string;
  session_id: string;
}

/** Facts about one SQL statement. */
export interface SqlAction {
  type: 'sql';
  /** The worst effect, by SQL_KINDS order. */
  kind: SqlKind;
  /** Every effect found anywhere in the statement (CTEs, subqueries, function bodies), deduplicated, worst first. */
  effects: SqlKind[];
  /** Tables read, `schema.table`, lower-cased unless quoted; default schema `public`. */
  reads: string[];
  /** Tables written (INSERT/UPDATE/DELETE/MERGE/TRUNCATE/COPY FROM/DDL targets, locks). */
  writes: string[];
  /** Columns referenced, `schema.table.column` where resolvable, else `column`. `*` as `schema.table.*`. */
  columns: string[];
  /** Functions called, lower-cased, schema-qualified only when written so. */
  functions: string[];
  /** UPDATE/DELETE: whether a WHERE clause is present (true for other kinds). */
  has_where: boolean;
  /** A constant LIMIT, or null when absent or not constant. */
  limit: number | null;
  /** The statement text exactly as sent (one statement). */
  text: string;
  /** Normalised text with constants replaced by `$n` (for audit and approvals). */
  normalized: string;
  /** Stable fingerprint of the normalised statement (libpg-query fingerprint). */
  fingerprint: string;
  /** Why the kind is `unknown`/`do`, when it is (parse error, dynamic SQL, ...). */
  reason?: string;
  /**
   * The planner's estimate (`sql.estimate` in CEL), added by the gateway from the upstream's
   * `EXPLAIN (FORMAT JSON)` only when a rule's condition reads it; absent otherwise.
   */
  estimate?: SqlEstimate;
  /** Why there is no estimate, when the gateway asked for one and could not get it. */
  estimateError?: string;
}

/**
 * The action with an estimate (or the reason there is none) attached. The classifier's actions
 * copy themselves (their lazy `normalized` and `fingerprint` live in private fields an object
 * spread would drop); a plain object is spread.
 */
export function withEstimate(action: SqlAction, estimate: SqlEstimate | { error: string }): SqlAction {
  const extra = 'error' in estimate ? { estimateError: estimate.error } : { estimate: { rows: estimate.rows, cost: estimate.cost } };
  const own = (action as { withEstimate?: (e: typeof extra) => SqlAction }).withEstimate;
  return own ? own.call(action, extra) : { ...action, ...extra };
}

/** `rows`: the rows the plan expects to return (UPDATE/DELETE/MERGE: to touch); `cost`: its total cost. */
export interface SqlEstimate {
  rows: number;
  cost: number;
}

/** Facts about one shell command line. */
export interface ShellAction {
  type: 'shell';
  /** `unknown` on a parse error or a non-literal program name; `command` otherwise. */
  kind: 'command' | 'unknown';
  /** Every program that would run, normalised (path stripped, quotes/escapes decoded), in order of appearance, deduplicated. */
  programs: string[];
  /** One entry per invocation: the program and its literal arguments. */
  invocations: { program: string; args: string[] }[];
  /** Flattened args of all invocations (convenience for CEL). */
  args: string[];
  /** Write redirection targets (`> f`, `>> f`, `&> f`, `tee` targets are NOT included). */
  redirects: string[];
  /** True when some program name is not a literal (`$CMD`, `eval "$x"`). */
  dynamic: boolean;
  /** Programs that interpret code from their arguments (`python -c`, `awk`, `perl -e`). */
  interpreters: string[];
  text: string;
  reason?: string;
}

/** SFTP operations (DESIGN.md "Requests and facts", SSH): `write` in a policy covers every op that changes the file system. */
export const SFTP_OPS = ['read', 'write', 'list', 'stat', 'remove', 'rename', 'mkdir', 'rmdir', 'symlink', 'setstat'] as const;
export type SftpOp = (typeof SFTP_OPS)[number];
/** The ops `match sftp read` covers. */
export const SFTP_READ_OPS: ReadonlySet<SftpOp> = new Set<SftpOp>(['read', 'list', 'stat']);
/** The ops `match sftp write` covers: every one that changes the file system. */
export const SFTP_WRITE_OPS: ReadonlySet<SftpOp> = new Set<SftpOp>(['write', 'remove', 'rename', 'mkdir', 'rmdir', 'symlink', 'setstat']);

/**
 * One file operation on an ssh resource: an SFTP request, or a legacy `scp -t/-f` or
 * `rsync --server` exec (a write or read of its path).
 */
export interface SftpAction {
  type: 'sftp';
  /** The operation (`sftp.op` in CEL). */
  kind: SftpOp;
  /** Normalised absolute path (`.`/`..` resolved, repeated `/` collapsed). */
  path: string;
  /** rename/symlink: the second path, normalised the same way. */
  target?: string;
  /** How the operation reached the gateway: `sftp`, `scp` (legacy `scp -t/-f`) or `rsync`. */
  via: 'sftp' | 'scp' | 'rsync';
  text: string;
}

/**
 * A channel request on an ssh resource that is neither a command nor a file operation:
 * `interactive` (a shell, with or without a PTY), `forward` (direct-tcpip), and `unknown` for
 * agent/X11 forwarding and subsystems the gateway does not understand (refused unless a rule says so).
 */
export interface SshAction {
  type: 'ssh';
  kind: 'interactive' | 'forward' | 'unknown';
  pty: boolean;
  /** The client's TERM, when it asked for a PTY. */
  term?: string;
  forward?: { host: string; port: number };
  /** `agent`, `x11`, `subsystem:NAME`, ... for kind unknown. */
  request?: string;
  text: string;
}

export type Action = SqlAction | ShellAction | SftpAction | SshAction;

export interface Request {
  identity: Identity;
  resource: Resource;
  action: Action;
  context: RequestContext;
}

/** Rank of a kind: 0 is the worst (`unknown`). */
export function kindRank(kind: SqlKind): number {
  return SQL_KINDS.indexOf(kind);
}

/** The worse of two kinds. */
export function worseKind(a: SqlKind, b: SqlKind): SqlKind {
  return kindRank(a) <= kindRank(b) ? a : b;
}

/**
 * Kinds that change (or may change) data, schema or privileges: what `match sql write` means.
 * `unknown` is deliberately absent: no selector matches `unknown` unless it names it.
 */
export const WRITE_KINDS: ReadonlySet<SqlKind> = new Set<SqlKind>([
  'do', 'call', 'grant', 'ddl', 'truncate', 'delete', 'merge', 'update', 'insert', 'copy_from',
]);

/** Kinds that only read: what `match sql read` means. */
export const READ_KINDS: ReadonlySet<SqlKind> = new Set<SqlKind>(['select']);

/** Every classifier satisfies this; the proxy sees only these interfaces. */
export interface SqlClassifier {
  /** One action per statement in `text`. Never throws: unparseable input is one `unknown` action. */
  classify(text: string, options?: SqlClassifyOptions): SqlAction[];
}

export interface SqlClassifyOptions {
  /** SQL-level prepared statements of the session (`PREPARE name AS ...`), so `EXECUTE name` takes their kind. */
  prepared?: ReadonlyMap<string, SqlAction>;
  /** SQL-level cursors (and portals) of the session, by name: `FETCH`/`MOVE name` takes the facts of the cursor's query. */
  cursors?: ReadonlyMap<string, SqlAction>;
}

export interface ShellClassifier {
  /** Never throws: unparseable input is an `unknown` action. */
  classify(text: string): ShellAction;
}
