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
//
// Streaming (pgbouncer's sbuf callback at each packet header: pass through, skip, or fetch whole):
// with `stream` set, a message of one of its codes longer than `stream.above` is handed out as its
// head (the first bytes, `rest` set to what is still to come) and then as pieces of whatever bytes
// arrive (`piece` set), so a 70 MB DataRow or Bind is relayed without being held. Right after the
// head the caller may ask for the message whole instead (`whole()`: the cap applies again), for a
// message it must decode.

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

export interface Frame {
  /** Message code (0 for startup packets). */
  code: number;
  /** The whole message, header included, exactly as received. */
  raw: Buffer;
  /** Offset of the body within `raw` (5 for typed messages, 4 for startup packets; 0 for a piece). */
  bodyStart: number;
  /** A streamed message: bytes of it not handed out yet (set on its head and on every piece). */
  rest?: number;
  /** A streamed message's continuation: `raw` is just its next bytes, `code` the message's. */
  piece?: boolean;
}

/** PostgreSQL's own limit for the messages it accepts long (PQ_LARGE_MESSAGE_LIMIT, 1 GB - 1): longer is a protocol violation. */
export const MAX_STREAMED_LENGTH = 0x3fffffff;

/** A streamed message's head holds this many bytes (or `stream.above`, if smaller): enough for its names. */
export const STREAM_HEAD_BYTES = 64 * 1024;

export type FrameResult = Frame | { error: 'too_large' | 'bad_length'; length: number } | null;

export class Framer {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Startup framing (no type byte) until switched to typed framing. */
  startup: boolean;
  /** Messages longer than this are a protocol error (checked at the header, before buffering). */
  maxMessageSize: number;

  /** Codes that are streamed when longer than `above` (off when undefined). */
  stream: { codes: ReadonlySet<number>; above: number } | undefined;
  /** The head just handed out (its message's total size and the head's), until the next call. */
  private head: { total: number; headLen: number; code: number } | undefined;
  /** The caller asked for the message whose head it just got, whole. */
  private wantWhole = false;
  /** Bytes of a streamed message still to hand out as pieces, and its code. */
  private streamLeft = 0;
  private streamCode = 0;

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

  /** After a streamed message's head: hand that message out whole (or `too_large`) instead of in pieces. */
  whole(): void {
    if (!this.head) return;
    this.wantWhole = true;
    // Its size is known: one buffer of that size instead of doubling copies on the way there.
    const pending = this.end - this.start;
    if (this.head.total <= this.maxMessageSize + 1 && this.head.total > this.buf.length - this.start) {
      const next = Buffer.allocUnsafe(this.head.total);
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.ownsBuffer = true;
      this.start = 0;
      this.end = pending;
    }
  }

  /**
   * The next whole message, a streamed message's head or piece, an error (the stream is unusable
   * after it), or null (need more bytes).
   */
  next(): FrameResult {
    if (this.head) {
      // The caller has seen the head: unless it asked for the message whole, the rest streams.
      const h = this.head;
      this.head = undefined;
      if (!this.wantWhole) {
        this.start += h.headLen;
        this.streamLeft = h.total - h.headLen;
        this.streamCode = h.code;
      }
    }
    const avail = this.end - this.start;
    if (this.streamLeft > 0) {
      if (avail === 0) return this.drained();
      const n = Math.min(avail, this.streamLeft);
      const raw = this.buf.subarray(this.start, this.start + n);
      this.start += n;
      this.streamLeft -= n;
      return { code: this.streamCode, raw, bodyStart: 0, rest: this.streamLeft, piece: true };
    }
    const headerLen = this.startup ? 4 : 5;
    if (avail < headerLen) return this.drained();
    const b = this.buf;
    const s = this.start;
    const code = this.startup ? 0 : b[s]!;
    const length = b.readInt32BE(this.startup ? s : s + 1);
    // The length counts itself: at least 4 (typed) or 8 (startup: length + code/version).
    if (length < (this.startup ? 8 : 4)) return { error: 'bad_length', length };
    const total = this.startup ? length : length + 1;
    const st = this.stream;
    if (st && !this.startup && !this.wantWhole && length > st.above && length <= MAX_STREAMED_LENGTH && st.codes.has(code)) {
      const headLen = Math.min(STREAM_HEAD_BYTES, st.above, total);
      if (avail < headLen) return null;
      this.head = { total, headLen, code };
      return { code, raw: b.subarray(s, s + headLen), bodyStart: headerLen, rest: total - headLen };
    }
    if (length > this.maxMessageSize) {
      this.wantWhole = false;
      return { error: 'too_large', length };
    }
    if (avail < total) return null;
    this.wantWhole = false;
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
