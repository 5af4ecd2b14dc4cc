// Startup packets: no type byte, an int32 length then an int32 code or protocol version.

import type { Frame } from './framer.ts';
import type { Decoded } from './frontend.ts';
import { ProtocolViolation, Reader, Writer } from './writer.ts';

export const PROTOCOL_V3 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export type StartupPacket =
  | { name: 'startup'; version: number; params: Record<string, string> }
  | { name: 'sslRequest' }
  | { name: 'gssEncRequest' }
  | { name: 'cancelRequest'; pid: number; secret: number };

export function decodeStartup(frame: Frame): Decoded<StartupPacket> {
  try {
    return { ok: true, message: decodeStartupUnsafe(frame) };
  } catch (e) {
    if (e instanceof ProtocolViolation) return { ok: false, reason: e.message };
    throw e;
  }
}

function decodeStartupUnsafe(frame: Frame): StartupPacket {
  const r = new Reader(frame.raw, frame.bodyStart);
  const code = r.int32();
  let m: StartupPacket;
  if (code === SSL_REQUEST_CODE) m = { name: 'sslRequest' };
  else if (code === GSSENC_REQUEST_CODE) m = { name: 'gssEncRequest' };
  else if (code === CANCEL_REQUEST_CODE) m = { name: 'cancelRequest', pid: r.int32(), secret: r.int32() };
  else if (code >> 16 === 3) {
    // Parameters: name/value pairs of C strings, ended by an empty name.
    const params: Record<string, string> = Object.create(null) as Record<string, string>;
    for (;;) {
      const key = r.cstring();
      if (key === '') break;
      params[key] = r.cstring();
    }
    m = { name: 'startup', version: code, params };
  } else throw new ProtocolViolation(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
  if (r.remaining !== 0) throw new ProtocolViolation(`trailing bytes in ${m.name} packet`);
  return m;
}

export function encodeStartup(m: StartupPacket): Buffer {
  const w = new Writer();
  switch (m.name) {
    case 'sslRequest':
      return w.int32(SSL_REQUEST_CODE).packet();
    case 'gssEncRequest':
      return w.int32(GSSENC_REQUEST_CODE).packet();
    case 'cancelRequest':
      return w.int32(CANCEL_REQUEST_CODE).int32(m.pid).int32(m.secret).packet();
    case 'startup':
      w.int32(m.version);
      for (const [k, v] of Object.entries(m.params)) w.cstring(k).cstring(v);
      return w.byte(0).packet();
  }
}
