// Coalesces outgoing bytes for one socket. Pass-through frames that sit next to each other in the
// same received chunk go out as one view of that chunk (no copy); gateway-made messages are
// appended in order. One write (or one corked batch) per pump keeps syscalls down.

import type { Socket } from 'node:net';

/** Queued pieces smaller than this in total are copied into one buffer for a single write. */
const COPY_BELOW = 16 * 1024;

export class Outbox {
  private parts: Buffer[] = [];
  private runAb: ArrayBufferLike | null = null;
  private runOff = 0;
  private runLen = 0;

  /** Relays `raw` unchanged. */
  pass(raw: Buffer): void {
    if (this.runLen > 0 && raw.buffer === this.runAb && raw.byteOffset === this.runOff + this.runLen) {
      this.runLen += raw.length;
      return;
    }
    this.endRun();
    this.runAb = raw.buffer;
    this.runOff = raw.byteOffset;
    this.runLen = raw.length;
  }

  /** Sends a buffer the gateway made (or a copy it owns). */
  push(b: Buffer): void {
    this.endRun();
    this.parts.push(b);
  }

  get empty(): boolean {
    return this.runLen === 0 && this.parts.length === 0;
  }

  private endRun(): void {
    if (this.runLen > 0) {
      this.parts.push(Buffer.from(this.runAb as ArrayBuffer, this.runOff, this.runLen));
      this.runLen = 0;
      this.runAb = null;
    }
  }

  /** Writes everything queued; false when the socket's buffer is full (the caller applies backpressure). */
  flush(sock: Socket): boolean {
    this.endRun();
    const parts = this.parts;
    if (parts.length === 0) return true;
    if (sock.destroyed) {
      parts.length = 0;
      return true;
    }
    let ok = true;
    if (parts.length === 1) ok = sock.write(parts[0]!);
    else {
      let total = 0;
      for (const p of parts) total += p.length;
      if (total <= COPY_BELOW) {
        // A few small pieces (a masked row between pass-through runs): one copy and a plain write
        // cost less than cork + writev.
        ok = sock.write(Buffer.concat(parts, total));
      } else {
        sock.cork();
        for (const p of parts) ok = sock.write(p);
        sock.uncork();
      }
    }
    this.parts = [];
    return ok;
  }
}
