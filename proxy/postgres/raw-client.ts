// A minimal protocol-level client for tests that must send what no real driver would (random
// bytes, truncated or oversized messages) or stop reading on purpose (backpressure).

import { connect, type Socket } from 'node:net';
import { decodeBackend, type BackendMessage } from './wire/backend.ts';
import { Framer } from './wire/framer.ts';
import { encodeFrontend, encodePassword } from './wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from './wire/startup.ts';

export class RawClient {
  readonly messages: BackendMessage[] = [];
  private readonly framer = new Framer();
  private waiters: (() => void)[] = [];
  closed = false;
  /** Bytes received before framing (for single-byte answers like 'N' to SSLRequest). */
  rawBytes: Buffer[] = [];
  framing = true;

  private constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => {
      this.rawBytes.push(b);
      if (this.framing) {
        this.framer.push(b);
        for (;;) {
          const f = this.framer.next();
          if (f === null || 'error' in f) break;
          const d = decodeBackend(f);
          if (d.ok) this.messages.push(d.message);
        }
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /** Connects and authenticates with the token; resolves once ReadyForQuery arrived. */
  static async login(port: number, token: string, database: string): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.send(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params: { user: 'raw', database } }));
    await c.until((m) => m.name === 'authenticationCleartextPassword');
    c.send(encodePassword(token));
    await c.until((m) => m.name === 'readyForQuery');
    return c;
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  query(text: string): void {
    this.send(encodeFrontend({ name: 'query', text }));
  }

  /** Waits until some message satisfies `pred` (or the socket closes, or the timeout passes). */
  async until(pred: (m: BackendMessage) => boolean, timeoutMs = 10_000): Promise<BackendMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.messages.length; seen++) if (pred(this.messages[seen]!)) return this.messages[seen];
      if (this.closed || Date.now() > deadline) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  /** The first error's fields as an object (`C`, `M`, `S`...). */
  error(): Record<string, string> | undefined {
    const e = this.messages.find((m) => m.name === 'error');
    return e && e.name === 'error' ? Object.fromEntries(e.fields) : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
