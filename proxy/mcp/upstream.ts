// The MCP front door's connections to PostgreSQL resources: pooled per identity and resource, opened
// with the gateway-held credentials (the agent never sees them). A call borrows one connection,
// runs what its permits allow, and gives it back reset: an open transaction is rolled back and
// `DISCARD ALL` drops session state (settings, search_path, temporary tables, prepared statements,
// listens), so no transaction and no session state spans tool calls. A connection that cannot be
// reset is closed instead.
//
// Rows are read as text, as they come (node-postgres' Submittable interface): at most `maxRows` per
// result set and `maxBytes` per call are kept, the rest counted and dropped, so a huge result
// costs bounded memory; `statement_timeout` (from the connection's startup) bounds its time.

import pg from 'pg';
import type { ResourceConfig } from '../config.ts';
import type { ResultField } from '../ports.ts';
import type { UpstreamSession } from './port.ts';

export interface ResultSet {
  fields: ResultField[];
  /** Text values as the server sent them (NULL as null), at most the caps. */
  rows: (string | null)[][];
  /** Rows the server returned (all of them, kept or not). */
  rowCount: number;
  /** The command tag (`SELECT 3`, `INSERT 0 1`). */
  command: string;
  /** Rows were dropped: a cap was reached. */
  truncated: boolean;
}

export interface ExecOptions {
  /** Called at each RowDescription, before its rows; returns the row cap for this result set. */
  onFields?(index: number, fields: ResultField[]): void;
  maxRows(index: number): number;
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

/** A pg Submittable: the rows of one simple Query (several statements) or one extended statement with parameters. */
class CappedQuery {
  readonly results: ResultSet[] = [];
  private current: ResultSet | undefined;
  private bytes = 0;
  private error: UpstreamError | undefined;

  constructor(
    private readonly text: string,
    private readonly values: (string | null)[] | undefined,
    private readonly opts: ExecOptions,
    private readonly done: (r: ExecResult) => void,
  ) {}

  submit(connection: PgConnection): void {
    if (this.values === undefined) {
      connection.query(this.text);
      return;
    }
    connection.stream.cork?.();
    try {
      connection.parse({ text: this.text, name: '', types: [] });
      connection.bind({ portal: '', statement: '', values: this.values, binary: false, valueMapper: (v: unknown) => v });
      connection.describe({ type: 'P', name: '' });
      connection.execute({ portal: '', rows: 0 });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
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
    this.opts.onFields?.(this.results.length - 1, fields);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    const cur = this.current;
    if (!cur) return;
    cur.rowCount++;
    if (cur.truncated) return;
    if (cur.rows.length >= this.opts.maxRows(this.results.length - 1)) {
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
  }

  handleCommandComplete(msg: { text: string }): void {
    if (this.current) this.current.command = msg.text;
    else this.results.push({ fields: [], rows: [], rowCount: rowsOfTag(msg.text), command: msg.text, truncated: false });
    if (this.current) this.current.rowCount = Math.max(this.current.rowCount, rowsOfTag(msg.text));
    this.current = undefined;
  }

  handleEmptyQuery(): void {
    this.current = undefined;
  }

  handlePortalSuspended(): void {}

  handleError(err: Error & { code?: string; detail?: string; hint?: string; position?: string }): void {
    this.error ??= { message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.detail ? { detail: err.detail } : {}), ...(err.hint ? { hint: err.hint } : {}), ...(err.position ? { position: err.position } : {}) };
    // node-postgres ends the query at its error (the ReadyForQuery that follows is the client's,
    // not this query's): settle now. Nothing of the message runs after an error.
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('COPY is not available through MCP tools');
  }

  handleCopyData(): void {}

  private settled = false;
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
  run(text: string, values: (string | null)[] | undefined, opts: ExecOptions): Promise<ExecResult>;
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
        run: (text, values, o) =>
          new Promise<ExecResult>((resolve) => {
            client.query(new CappedQuery(text, values, o, resolve) as unknown as pg.QueryConfig);
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
