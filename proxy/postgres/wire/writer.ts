// Builds outgoing messages into one growing buffer. One Writer per encode call keeps encoders
// simple; the hot path (pass-through) never encodes at all.

export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Finishes a typed message: code byte + int32 length (which counts itself, not the code). */
  message(code: number): Buffer {
    const out = Buffer.allocUnsafe(this.pos + 5);
    out[0] = code;
    out.writeInt32BE(this.pos + 4, 1);
    this.buf.copy(out, 5, 0, this.pos);
    return out;
  }

  /** Finishes a startup packet: int32 length (counting itself), no code. */
  packet(): Buffer {
    const out = Buffer.allocUnsafe(this.pos + 4);
    out.writeInt32BE(this.pos + 4, 0);
    this.buf.copy(out, 4, 0, this.pos);
    return out;
  }
}

/** Sequential reader over a message body; every read is bounds-checked (bad input is a coded error). */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new ProtocolViolation('message truncated');
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  cstring(): string {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) throw new ProtocolViolation('unterminated string');
    const s = this.buf.toString('utf8', this.pos, nul);
    this.pos = nul + 1;
    return s;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }

  get remaining(): number {
    return this.end - this.pos;
  }
}

/**
 * Malformed bytes from a peer. Decoders throw it internally and the public `decode*` functions
 * turn it into a coded `{ ok: false }` value, so callers never see an exception for bad input.
 */
export class ProtocolViolation extends Error {}
