// Frontend (client → server) messages: one decoder and one encoder per message type.
// Codes overlap with backend codes ('C', 'D', 'E', 'S', 'H'), hence a separate module per direction.

import type { Frame } from './framer.ts';
import { ProtocolViolation, Reader, Writer } from './writer.ts';

export const enum FrontendCode {
  Query = 0x51, // Q
  Parse = 0x50, // P
  Bind = 0x42, // B
  Describe = 0x44, // D
  Execute = 0x45, // E
  Sync = 0x53, // S
  Flush = 0x48, // H
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Terminate = 0x58, // X
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share 'p'. */
  Password = 0x70, // p
  FunctionCall = 0x46, // F
}

export type FrontendMessage =
  | { name: 'query'; text: string }
  | { name: 'parse'; statement: string; text: string; paramTypes: number[] }
  | { name: 'bind'; portal: string; statement: string; paramFormats: number[]; params: (Buffer | null)[]; resultFormats: number[] }
  | { name: 'describe'; target: 'S' | 'P'; objectName: string }
  | { name: 'execute'; portal: string; maxRows: number }
  | { name: 'sync' }
  | { name: 'flush' }
  | { name: 'close'; target: 'S' | 'P'; objectName: string }
  | { name: 'copyData'; data: Buffer }
  | { name: 'copyDone' }
  | { name: 'copyFail'; message: string }
  | { name: 'terminate' }
  /** The raw 'p' body; its meaning depends on the authentication exchange in progress. */
  | { name: 'password'; body: Buffer }
  | { name: 'functionCall'; raw: Buffer };

export type Decoded<T> = { ok: true; message: T } | { ok: false; reason: string };

function target(b: number): 'S' | 'P' {
  if (b === 0x53) return 'S';
  if (b === 0x50) return 'P';
  throw new ProtocolViolation(`invalid describe/close target ${b}`);
}

export function decodeFrontend(frame: Frame): Decoded<FrontendMessage> {
  try {
    return { ok: true, message: decodeFrontendUnsafe(frame) };
  } catch (e) {
    if (e instanceof ProtocolViolation) return { ok: false, reason: e.message };
    throw e;
  }
}

function decodeFrontendUnsafe(frame: Frame): FrontendMessage {
  const r = new Reader(frame.raw, frame.bodyStart);
  let m: FrontendMessage;
  switch (frame.code) {
    case FrontendCode.Query:
      m = { name: 'query', text: r.cstring() };
      break;
    case FrontendCode.Parse: {
      const statement = r.cstring();
      const text = r.cstring();
      const n = r.int16();
      if (n < 0) throw new ProtocolViolation('negative parameter count');
      const paramTypes: number[] = [];
      for (let i = 0; i < n; i++) paramTypes.push(r.uint32());
      m = { name: 'parse', statement, text, paramTypes };
      break;
    }
    case FrontendCode.Bind: {
      const portal = r.cstring();
      const statement = r.cstring();
      const nf = r.int16();
      if (nf < 0) throw new ProtocolViolation('negative format count');
      const paramFormats: number[] = [];
      for (let i = 0; i < nf; i++) paramFormats.push(r.int16());
      const np = r.int16();
      if (np < 0) throw new ProtocolViolation('negative parameter count');
      const params: (Buffer | null)[] = [];
      for (let i = 0; i < np; i++) {
        const len = r.int32();
        params.push(len === -1 ? null : r.bytes(len));
      }
      const nr = r.int16();
      if (nr < 0) throw new ProtocolViolation('negative result format count');
      const resultFormats: number[] = [];
      for (let i = 0; i < nr; i++) resultFormats.push(r.int16());
      m = { name: 'bind', portal, statement, paramFormats, params, resultFormats };
      break;
    }
    case FrontendCode.Describe:
      m = { name: 'describe', target: target(r.byte()), objectName: r.cstring() };
      break;
    case FrontendCode.Close:
      m = { name: 'close', target: target(r.byte()), objectName: r.cstring() };
      break;
    case FrontendCode.Execute:
      m = { name: 'execute', portal: r.cstring(), maxRows: r.int32() };
      break;
    case FrontendCode.Sync:
      m = { name: 'sync' };
      break;
    case FrontendCode.Flush:
      m = { name: 'flush' };
      break;
    case FrontendCode.CopyData:
      return { name: 'copyData', data: r.rest() };
    case FrontendCode.CopyDone:
      m = { name: 'copyDone' };
      break;
    case FrontendCode.CopyFail:
      m = { name: 'copyFail', message: r.cstring() };
      break;
    case FrontendCode.Terminate:
      m = { name: 'terminate' };
      break;
    case FrontendCode.Password:
      return { name: 'password', body: r.rest() };
    case FrontendCode.FunctionCall:
      return { name: 'functionCall', raw: frame.raw };
    default:
      throw new ProtocolViolation(`unknown frontend message type ${JSON.stringify(String.fromCharCode(frame.code))}`);
  }
  if (r.remaining !== 0) throw new ProtocolViolation(`trailing bytes in ${m.name} message`);
  return m;
}

export function encodeFrontend(m: FrontendMessage): Buffer {
  const w = new Writer();
  switch (m.name) {
    case 'query':
      return w.cstring(m.text).message(FrontendCode.Query);
    case 'parse':
      w.cstring(m.statement).cstring(m.text).int16(m.paramTypes.length);
      for (const t of m.paramTypes) w.uint32(t);
      return w.message(FrontendCode.Parse);
    case 'bind':
      w.cstring(m.portal).cstring(m.statement).int16(m.paramFormats.length);
      for (const f of m.paramFormats) w.int16(f);
      w.int16(m.params.length);
      for (const p of m.params) {
        if (p === null) w.int32(-1);
        else w.int32(p.length).bytes(p);
      }
      w.int16(m.resultFormats.length);
      for (const f of m.resultFormats) w.int16(f);
      return w.message(FrontendCode.Bind);
    case 'describe':
      return w.byte(m.target.charCodeAt(0)).cstring(m.objectName).message(FrontendCode.Describe);
    case 'close':
      return w.byte(m.target.charCodeAt(0)).cstring(m.objectName).message(FrontendCode.Close);
    case 'execute':
      return w.cstring(m.portal).int32(m.maxRows).message(FrontendCode.Execute);
    case 'sync':
      return w.message(FrontendCode.Sync);
    case 'flush':
      return w.message(FrontendCode.Flush);
    case 'copyData':
      return w.bytes(m.data).message(FrontendCode.CopyData);
    case 'copyDone':
      return w.message(FrontendCode.CopyDone);
    case 'copyFail':
      return w.cstring(m.message).message(FrontendCode.CopyFail);
    case 'terminate':
      return w.message(FrontendCode.Terminate);
    case 'password':
      return w.bytes(m.body).message(FrontendCode.Password);
    case 'functionCall':
      return Buffer.from(m.raw);
  }
}

/** PasswordMessage carrying a cleartext password (or, here, the token). */
export function encodePassword(password: string): Buffer {
  return new Writer().cstring(password).message(FrontendCode.Password);
}

export function decodePasswordBody(body: Buffer): string | undefined {
  const nul = body.indexOf(0);
  if (nul !== body.length - 1) return undefined;
  return body.toString('utf8', 0, nul);
}

export function encodeSaslInitialResponse(mechanism: string, data: string): Buffer {
  const bytes = Buffer.from(data, 'utf8');
  return new Writer().cstring(mechanism).int32(bytes.length).bytes(bytes).message(FrontendCode.Password);
}

export function encodeSaslResponse(data: string): Buffer {
  return new Writer().bytes(Buffer.from(data, 'utf8')).message(FrontendCode.Password);
}
