// The framer: turns a byte stream into whole PostgreSQL messages, whatever the chunking.
//
// Pattern from node-postgres pg-protocol (parser.ts): a doubling buffer with start/end offsets and
// leftover bytes kept by offset. Unlike pg-protocol it caps message length (pgbouncer's
// max_packet_size) and knows the two framings: typed messages (1-byte code + int32 length) and
// startup packets (int32 length only).
//
// Frames are zero-copy `subarray`s. The framer never writes over bytes it has handed out: it only
// appends into the free tail of its buffer or copies into a fresh one, so a frame stays valid
// while the session awaits (audit, approvals) and more data arrives.

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

export interface Frame {
  /** Message code (0 for startup packets). */
  code: number;
  /** The whole message, header included, exactly as received. */
  raw: Buffer;
  /** Offset of the body within `raw` (5 for typed messages, 4 for startup packets). */
  bodyStart: number;
}

export type FrameResult = Frame | { error: 'too_large' | 'bad_length'; length: number } | null;

export class Framer {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Startup framing (no type byte) until switched to typed framing. */
  startup: boolean;
  /** Messages longer than this are a protocol error (checked at the header, before buffering). */
  maxMessageSize: number;

  constructor(options: { startup?: boolean; maxMessageSize?: number } = {}) {
    this.startup = options.startup ?? false;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.start === this.end) {
      // Nothing pending: frame straight out of the chunk (the common case, no copy).
      this.buf = chunk;
      this.ownsBuffer = false;
      this.start = 0;
      this.end = chunk.length;
      return;
    }
    const pending = this.end - this.start;
    const needed = pending + chunk.length;
    if (this.buf.length - this.end >= chunk.length && this.ownsBuffer) {
      chunk.copy(this.buf, this.end);
      this.end += chunk.length;
      return;
    }
    let size = Math.max(this.buf.length * 2, 1024);
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, this.start, this.end);
    chunk.copy(next, pending);
    this.buf = next;
    this.ownsBuffer = true;
    this.start = 0;
    this.end = needed;
  }

  // A socket's chunk is never written into (it may share memory with other chunks).
  private ownsBuffer = false;

  /** The next whole message, an error (the stream is unusable after it), or null (need more bytes). */
  next(): FrameResult {
    const avail = this.end - this.start;
    const headerLen = this.startup ? 4 : 5;
    if (avail < headerLen) return this.drained();
    const b = this.buf;
    const s = this.start;
    const code = this.startup ? 0 : b[s]!;
    const length = b.readInt32BE(this.startup ? s : s + 1);
    // The length counts itself: at least 4 (typed) or 8 (startup: length + code/version).
    if (length < (this.startup ? 8 : 4)) return { error: 'bad_length', length };
    if (length > this.maxMessageSize) return { error: 'too_large', length };
    const total = this.startup ? length : length + 1;
    if (avail < total) return null;
    this.start = s + total;
    return { code, raw: b.subarray(s, s + total), bodyStart: headerLen };
  }

  /** Bytes received but not yet framed (used when a stream changes hands, e.g. after startup). */
  takeRest(): Buffer {
    const rest = this.buf.subarray(this.start, this.end);
    this.start = this.end;
    return rest;
  }

  private drained(): null {
    if (this.start === this.end && this.ownsBuffer && this.start > 0) {
      // Empty: the next chunk can be used directly; drop our buffer to avoid holding memory.
      this.buf = Buffer.alloc(0);
      this.ownsBuffer = false;
      this.start = this.end = 0;
    }
    return null;
  }
}
