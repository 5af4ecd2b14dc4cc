// One long raw-protocol session through the gateway for the generative differentials: each
// statement is sent in the simple or the extended protocol, and the result is every byte the
// gateway sent for it (not only the parsed rows), the decoded messages and the first error.
// COPY FROM STDIN is answered with CopyFail, so no statement can leave the session waiting.

import { RawClient } from '../proxy/postgres/raw-client.ts';
import type { BackendMessage } from '../proxy/postgres/wire/backend.ts';
import { encodeFrontend } from '../proxy/postgres/wire/frontend.ts';

/**
 * `extended-chunked`: a named statement and a named portal, executed one row at a time (three
 * Executes of one row, then the rest), then both closed.
 */
export type Protocol = 'simple' | 'extended-text' | 'extended-binary' | 'extended-chunked';

export interface StatementResult {
  bytes: Buffer;
  messages: BackendMessage[];
  /** The first ErrorResponse's fields (`C`, `M`, ...), if any. */
  error?: Record<string, string>;
  /** The gateway closed the connection (the next `run` opens a new one). */
  closed: boolean;
}

export class WireSession {
  private client: RawClient | undefined;
  /** The upstream backend's pid (from BackendKeyData) of the current connection. */
  backendPid = 0;

  constructor(
    private readonly login: () => Promise<RawClient>,
    private readonly timeoutMs = 30_000,
  ) {}

  private async connection(): Promise<RawClient> {
    if (this.client && !this.client.closed) return this.client;
    this.client?.destroy();
    const c = await this.login();
    const key = c.messages.find((m) => m.name === 'backendKeyData');
    this.backendPid = key && key.name === 'backendKeyData' ? key.pid : 0;
    this.client = c;
    return c;
  }

  /** Whether a connection is open now (false after the gateway or server closed it). */
  get open(): boolean {
    return this.client !== undefined && !this.client.closed;
  }

  async run(sql: string, protocol: Protocol = 'simple'): Promise<StatementResult> {
    const c = await this.connection();
    c.messages.splice(0);
    c.rawBytes.splice(0);
    if (protocol === 'simple') c.query(sql);
    else if (protocol === 'extended-chunked') {
      c.send(
        Buffer.concat([
          encodeFrontend({ name: 'parse', statement: 'diff_s', text: sql, paramTypes: [] }),
          encodeFrontend({ name: 'describe', target: 'S', objectName: 'diff_s' }),
          encodeFrontend({ name: 'bind', portal: 'diff_p', statement: 'diff_s', paramFormats: [], params: [], resultFormats: [0] }),
          ...[1, 1, 1, 0].map((maxRows) => encodeFrontend({ name: 'execute', portal: 'diff_p', maxRows })),
          encodeFrontend({ name: 'close', target: 'P', objectName: 'diff_p' }),
          encodeFrontend({ name: 'close', target: 'S', objectName: 'diff_s' }),
          encodeFrontend({ name: 'sync' }),
        ]),
      );
    } else {
      const binary = protocol === 'extended-binary';
      c.send(
        Buffer.concat([
          encodeFrontend({ name: 'parse', statement: '', text: sql, paramTypes: [] }),
          encodeFrontend({ name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: binary ? [1] : [0] }),
          encodeFrontend({ name: 'describe', target: 'P', objectName: '' }),
          encodeFrontend({ name: 'execute', portal: '', maxRows: 0 }),
          encodeFrontend({ name: 'sync' }),
        ]),
      );
    }
    // `until` looks at each message once per call. A Sync sent during COPY IN is ignored, so the
    // extended protocol needs another one after the CopyFail.
    const copyFail = Buffer.concat([
      encodeFrontend({ name: 'copyFail', message: 'the differential sends no COPY data' }),
      ...(protocol === 'simple' ? [] : [encodeFrontend({ name: 'sync' })]),
    ]);
    const done = await c.until((m) => {
      if (m.name === 'copyInResponse') c.send(copyFail);
      return m.name === 'readyForQuery';
    }, this.timeoutMs);
    const bytes = Buffer.concat(c.rawBytes);
    const messages = [...c.messages];
    const err = messages.find((m) => m.name === 'error');
    const error = err && err.name === 'error' ? Object.fromEntries(err.fields) : undefined;
    if (!done && !c.closed) throw new Error(`no ReadyForQuery within ${this.timeoutMs} ms for: ${sql}`);
    return { bytes, messages, ...(error ? { error } : {}), closed: c.closed };
  }

  /** A FunctionCall message (the fast-path protocol): the function by OID, text arguments. */
  async functionCall(oid: number, args: (string | null)[]): Promise<StatementResult> {
    const c = await this.connection();
    c.messages.splice(0);
    c.rawBytes.splice(0);
    const parts: Buffer[] = [];
    const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
    const i16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
    parts.push(u32(oid), i16(1), i16(0), i16(args.length));
    for (const a of args) {
      if (a === null) parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
      else parts.push(u32(Buffer.byteLength(a)), Buffer.from(a, 'utf8'));
    }
    parts.push(i16(0));
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head.write('F', 0);
    head.writeUInt32BE(body.length + 4, 1);
    c.send(Buffer.concat([head, body]));
    const done = await c.until((m) => m.name === 'readyForQuery', this.timeoutMs);
    const messages = [...c.messages];
    const err = messages.find((m) => m.name === 'error');
    const error = err && err.name === 'error' ? Object.fromEntries(err.fields) : undefined;
    if (!done && !c.closed) throw new Error(`no ReadyForQuery within ${this.timeoutMs} ms for FunctionCall ${oid}`);
    return { bytes: Buffer.concat(c.rawBytes), messages, ...(error ? { error } : {}), closed: c.closed };
  }

  close(): void {
    this.client?.destroy();
    this.client = undefined;
  }
}
