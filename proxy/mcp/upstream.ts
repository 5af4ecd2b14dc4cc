// The MCP front door's connections to PostgreSQL resources: pooled per identity and resource, opened
// with the gateway-held credentials (the agent never sees them). A call borrows one connection,
// runs what its permits allow, and gives it back reset: an open transaction is rolled back and
// `DISCARD ALL` drops session state (settings, search_path, temporary tables, prepared statements,
// listens), so no transaction and no session state spans tool calls. A connection that cannot be
// reset is closed instead.
//
// Each statement of a call is its own portal (extended protocol: Parse, Bind, Describe, Execute
// with a row count, Flush), all before one Sync, so the statements still run as one implicit
// transaction, as the simple protocol's multi-statement Query would. Rows are read as text, as they
// come (node-postgres' Submittable interface), in batches: once a result set has its cap of rows
// (`maxRows`) or the call its `maxBytes`, the portal is not executed further and the next
// statement starts, so the server stops producing rows (it produced at most the cap and one row
// more, which says that more exist) and a huge table is never pulled through the gateway. A write's
// RETURNING rows (`readToEnd`) are read to the end and dropped past the cap: the write runs in full
// whatever is read, and its command tag (the rows written) is the count worth reporting.
// `statement_timeout` (from the connection's startup) bounds each statement's time.

import pg from 'pg';
import type { ResourceConfig } from '../config.ts';
import type { ResultField } from '../ports.ts';
import type { UpstreamSession } from './port.ts';

export interface ResultSet {
  fields: ResultField[];
  /** Text values as the server sent them (NULL as null), at most the caps. */
  rows: (string | null)[][];
  /** Rows kept; a write read to the end: the rows its command tag counts (written or returned). */
  rowCount: number;
  /** The command tag (`SELECT 3`, `INSERT 0 1`); a statement stopped at its cap: `SELECT <rows kept>`. */
  command: string;
  /** A cap was reached: more rows existed (a stopped statement) or were dropped (a write read to the end). */
  truncated: boolean;
}

export interface ExecOptions {
  /** Called at each RowDescription, before its rows. */
  onFields?(index: number, fields: ResultField[]): void;
  /** The row cap of statement `index`'s result set. */
  maxRows(index: number): number;
  /** Statement `index`'s rows past the cap are read to the end and dropped instead of stopping it (a write's RETURNING). */
  readToEnd?(index: number): boolean;
  /** Value bytes kept over the whole call. */
  maxBytes: number;
}

export interface UpstreamError {
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
  position?: string;
}

export type ExecResult = { ok: true; results: ResultSet[] } | { ok: false; error: UpstreamError; results: ResultSet[] };

/** Rows asked for per Execute: a stopped statement produced at most this many rows past its cap. */
const BATCH_ROWS = 1000;

/** A pg Submittable: the statements of one call, each its own portal, executed in capped batches, then one Sync. */
class PortalQuery {
  readonly results: ResultSet[] = [];
  private index = 0;
  private current: ResultSet | undefined;
  private bytes = 0;
  private error: UpstreamError | undefined;
  private connection: PgConnection | undefined;
  private synced = false;
  private settled = false;

  constructor(
    private readonly statements: readonly string[],
    private readonly values: (string | null)[] | undefined,
    private readonly opts: ExecOptions,
    private readonly done: (r: ExecResult) => void,
  ) {}

  submit(connection: PgConnection): void {
    this.connection = connection;
    if (this.statements.length === 0) this.sync();
    else this.start(0);
  }

  /** Statement i: its portal, and its first batch. */
  private start(i: number): void {
    const c = this.connection!;
    this.index = i;
    this.current = undefined;
    c.stream.cork?.();
    try {
      c.parse({ text: this.statements[i]!, name: '', types: [] });
      c.bind({ portal: '', statement: '', values: this.values ?? [], binary: false, valueMapper: (v: unknown) => v });
      c.describe({ type: 'P', name: '' });
      c.execute({ portal: '', rows: this.batch() });
      c.flush();
    } finally {
      c.stream.uncork?.();
    }
  }

  /** The next Execute's row count: what the cap still allows and one row more (0: all of them). */
  private batch(): number {
    if (this.opts.readToEnd?.(this.index)) return 0;
    const left = this.opts.maxRows(this.index) - (this.current?.rows.length ?? 0);
    return Math.max(1, Math.min(BATCH_ROWS, left + 1));
  }

  /** The current statement is done (or stopped): the next one, or the Sync that ends the call. */
  private next(): void {
    if (this.index + 1 < this.statements.length) this.start(this.index + 1);
    else this.sync();
  }

  private sync(): void {
    if (this.synced) return;
    this.synced = true;
    this.connection?.sync();
  }

  handleRowDescription(msg: { fields: PgField[] }): void {
    const fields: ResultField[] = msg.fields.map((f) => ({
      name: f.name,
      tableOid: f.tableID,
      columnAttr: f.columnID,
      typeOid: f.dataTypeID,
      typeSize: f.dataTypeSize,
      typeModifier: f.dataTypeModifier,
      format: f.format === 'binary' ? 1 : 0,
    }));
    this.current = { fields, rows: [], rowCount: 0, command: '', truncated: false };
    this.results.push(this.current);
    this.opts.onFields?.(this.index, fields);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    const cur = this.current;
    if (!cur || cur.truncated) return;
    if (cur.rows.length >= this.opts.maxRows(this.index)) {
      cur.truncated = true;
      return;
    }
    let size = 0;
    for (const v of msg.fields) size += v === null ? 4 : v.length;
    if (this.bytes + size > this.opts.maxBytes) {
      cur.truncated = true;
      return;
    }
    this.bytes += size;
    cur.rows.push(msg.fields);
    cur.rowCount++;
  }

  handlePortalSuspended(): void {
    const c = this.connection!;
    if (this.current?.truncated) {
      // Stopped: its portal is closed unexecuted, the server produces nothing more of it.
      this.current.command = `SELECT ${this.current.rowCount}`;
      this.current = undefined;
      c.close({ type: 'P', name: '' });
      this.next();
      return;
    }
    c.execute({ portal: '', rows: this.batch() });
    c.flush();
  }

  handleCommandComplete(msg: { text: string }): void {
    if (this.current) {
      this.current.command = msg.text;
      this.current.rowCount = Math.max(this.current.rowCount, rowsOfTag(msg.text));
    } else this.results.push({ fields: [], rows: [], rowCount: rowsOfTag(msg.text), command: msg.text, truncated: false });
    this.current = undefined;
    this.next();
  }

  handleEmptyQuery(): void {
    this.results.push({ fields: [], rows: [], rowCount: 0, command: '', truncated: false });
    this.current = undefined;
    this.next();
  }

  handleError(err: Error & { code?: string; detail?: string; hint?: string; position?: string }): void {
    this.error ??= { message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.detail ? { detail: err.detail } : {}), ...(err.hint ? { hint: err.hint } : {}), ...(err.position ? { position: err.position } : {}) };
    // The server discards everything up to the Sync; send it now if it was not sent (its
    // ReadyForQuery is the client's: node-postgres ends the query at its error). Settle now:
    // nothing of the call runs after an error, and the implicit transaction is rolled back.
    this.sync();
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('COPY is not available through MCP tools');
  }

  handleCopyData(): void {}

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.done(this.error ? { ok: false, error: this.error, results: this.results } : { ok: true, results: this.results });
  }
}

interface PgField {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: string;
}

interface PgConnection {
  stream: { cork?(): void; uncork?(): void };
  query(text: string): void;
  parse(m: { text: string; name: string; types: number[] }): void;
  bind(m: { portal: string; statement: string; values: (string | null)[]; binary: boolean; valueMapper: (v: unknown) => unknown }): void;
  describe(m: { type: 'P' | 'S'; name: string }): void;
  execute(m: { portal: string; rows: number }): void;
  flush(): void;
  close(m: { type: 'P' | 'S'; name: string }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

function rowsOfTag(tag: string): number {
  const m = /(\d+)$/.exec(tag);
  return m ? Number(m[1]) : 0;
}

/** A borrowed connection: what it resolves names against, and how to run one call on it. */
export interface Borrowed {
  session: UpstreamSession;
  /** The statement_timeout of this call's statements (a policy's `limit time`); DISCARD ALL restores the pool's. */
  statementTimeout(ms: number): Promise<void>;
  /** Runs the statements of one call (each its own text; with `values`, exactly one) before one Sync. */
  run(statements: readonly string[], values: (string | null)[] | undefined, opts: ExecOptions): Promise<ExecResult>;
}

interface PoolEntry {
  pool: pg.Pool;
}

const sessions = new WeakMap<pg.ClientBase, UpstreamSession>();

export interface UpstreamsOptions {
  resources: readonly ResourceConfig[];
  /** Connection settings of a resource (its upstream with the gateway-held credentials). */
  connectionFor(r: ResourceConfig): pg.ClientConfig;
  poolSize: number;
  idleTimeoutMs: number;
  statementTimeoutMs: number;
  log?: (line: string) => void;
}

export class PgUpstreams {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly byName: Map<string, ResourceConfig>;
  private closed = false;

  constructor(private readonly opts: UpstreamsOptions) {
    this.byName = new Map(opts.resources.filter((r) => r.kind === 'postgres').map((r) => [r.name, r]));
  }

  /** Runs `fn` on a connection of this identity's pool for the resource, then resets and returns it. */
  async with<T>(sub: string, resourceName: string, fn: (b: Borrowed) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the gateway is shutting down');
    const r = this.byName.get(resourceName);
    if (!r) throw new Error(`no postgres resource ${resourceName}`);
    const key = `${sub}\u0000${resourceName}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const pool = new pg.Pool({
        ...this.opts.connectionFor(r),
        application_name: 'hoop-mcp',
        statement_timeout: this.opts.statementTimeoutMs,
        max: this.opts.poolSize,
        idleTimeoutMillis: this.opts.idleTimeoutMs,
        // Every value as the server's text: masking and JSON conversion work on the wire's text.
        types: { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig,
      });
      pool.on('error', (e) => this.opts.log?.(`upstream ${resourceName}: ${e.message}`));
      entry = { pool };
      this.pools.set(key, entry);
    }
    const client = await entry.pool.connect();
    let broken: Error | undefined;
    // A connection lost while borrowed: the running call settles through handleError; this keeps
    // the client's 'error' event from being an uncaught exception.
    const onError = (e: Error): void => {
      broken ??= e;
    };
    client.on('error', onError);
    try {
      let session = sessions.get(client);
      if (!session) {
        const probe = await client.query<{ search_path: string; user: string }>("SELECT current_setting('search_path') AS search_path, current_user AS user");
        session = { searchPath: probe.rows[0]!.search_path, user: probe.rows[0]!.user };
        sessions.set(client, session);
      }
      const s = session;
      return await fn({
        session: s,
        statementTimeout: async (ms) => {
          await client.query("SELECT set_config('statement_timeout', $1, false)", [String(Math.max(1, Math.round(ms)))]);
        },
        run: (statements, values, o) =>
          new Promise<ExecResult>((resolve) => {
            client.query(new PortalQuery(statements, values, o, resolve) as unknown as pg.QueryConfig);
          }),
      });
    } catch (e) {
      broken = e as Error;
      throw e;
    } finally {
      // Nothing spans calls: roll back what was left open, then drop the session's state.
      try {
        if (!broken) {
          const tx = (client as unknown as { _txStatus?: string })._txStatus;
          if (tx && tx !== 'I') await client.query('ROLLBACK');
          await client.query('DISCARD ALL');
        }
        client.removeListener('error', onError);
        client.release(broken);
      } catch (e) {
        client.removeListener('error', onError);
        client.release(e as Error);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.end().catch(() => undefined)));
  }
}
