// Backend (server → client) messages: one decoder and one encoder per message type.
// The gateway decodes only what it must (ReadyForQuery, errors, RowDescription when masking...);
// everything else is relayed as the exact bytes received.

import type { ResultField } from '../../ports.ts';
import type { Frame } from './framer.ts';
import type { Decoded } from './frontend.ts';
import { ProtocolViolation, Reader, Writer } from './writer.ts';

export const enum BackendCode {
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  BackendKeyData = 0x4b, // K
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
  DataRow = 0x44, // D
  CommandComplete = 0x43, // C
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  ParameterDescription = 0x74, // t
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  EmptyQueryResponse = 0x49, // I
  NegotiateProtocolVersion = 0x76, // v
  FunctionCallResponse = 0x56, // V
}

export type TransactionStatus = 'I' | 'T' | 'E';

/** A RowDescription field: the same shape the masking port consumes. */
export type Field = ResultField;

/** ErrorResponse/NoticeResponse fields in wire order: [field code ('S', 'C', 'M', ...), value]. */
export type ErrorFields = [string, string][];

export type BackendMessage =
  | { name: 'authenticationOk' }
  | { name: 'authenticationCleartextPassword' }
  | { name: 'authenticationMD5Password'; salt: Buffer }
  | { name: 'authenticationSASL'; mechanisms: string[] }
  | { name: 'authenticationSASLContinue'; data: Buffer }
  | { name: 'authenticationSASLFinal'; data: Buffer }
  | { name: 'authenticationOther'; type: number; data: Buffer }
  | { name: 'parameterStatus'; key: string; value: string }
  | { name: 'backendKeyData'; pid: number; secret: number }
  | { name: 'readyForQuery'; status: TransactionStatus }
  | { name: 'rowDescription'; fields: Field[] }
  | { name: 'dataRow'; values: (Buffer | null)[] }
  | { name: 'commandComplete'; tag: string }
  | { name: 'error'; fields: ErrorFields }
  | { name: 'notice'; fields: ErrorFields }
  | { name: 'notification'; pid: number; channel: string; payload: string }
  | { name: 'copyInResponse' | 'copyOutResponse' | 'copyBothResponse'; format: number; columnFormats: number[] }
  | { name: 'copyData'; data: Buffer }
  | { name: 'copyDone' }
  | { name: 'parseComplete' }
  | { name: 'bindComplete' }
  | { name: 'closeComplete' }
  | { name: 'parameterDescription'; types: number[] }
  | { name: 'noData' }
  | { name: 'portalSuspended' }
  | { name: 'emptyQuery' }
  | { name: 'negotiateProtocolVersion'; minor: number; options: string[] }
  | { name: 'functionCallResponse'; value: Buffer | null };

const COPY_CODES = {
  copyInResponse: BackendCode.CopyInResponse,
  copyOutResponse: BackendCode.CopyOutResponse,
  copyBothResponse: BackendCode.CopyBothResponse,
} as const;

export function decodeBackend(frame: Frame): Decoded<BackendMessage> {
  try {
    return { ok: true, message: decodeBackendUnsafe(frame) };
  } catch (e) {
    if (e instanceof ProtocolViolation) return { ok: false, reason: e.message };
    throw e;
  }
}

function errorFields(r: Reader): ErrorFields {
  const fields: ErrorFields = [];
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    fields.push([String.fromCharCode(code), r.cstring()]);
  }
  return fields;
}

function decodeBackendUnsafe(frame: Frame): BackendMessage {
  const r = new Reader(frame.raw, frame.bodyStart);
  let m: BackendMessage;
  switch (frame.code) {
    case BackendCode.Authentication: {
      const type = r.int32();
      if (type === 0) m = { name: 'authenticationOk' };
      else if (type === 3) m = { name: 'authenticationCleartextPassword' };
      else if (type === 5) m = { name: 'authenticationMD5Password', salt: r.bytes(4) };
      else if (type === 10) {
        const mechanisms: string[] = [];
        for (;;) {
          const s = r.cstring();
          if (s === '') break;
          mechanisms.push(s);
        }
        m = { name: 'authenticationSASL', mechanisms };
      } else if (type === 11) m = { name: 'authenticationSASLContinue', data: r.rest() };
      else if (type === 12) m = { name: 'authenticationSASLFinal', data: r.rest() };
      else m = { name: 'authenticationOther', type, data: r.rest() };
      break;
    }
    case BackendCode.ParameterStatus:
      m = { name: 'parameterStatus', key: r.cstring(), value: r.cstring() };
      break;
    case BackendCode.BackendKeyData:
      m = { name: 'backendKeyData', pid: r.int32(), secret: r.int32() };
      break;
    case BackendCode.ReadyForQuery: {
      const s = String.fromCharCode(r.byte());
      if (s !== 'I' && s !== 'T' && s !== 'E') throw new ProtocolViolation(`invalid transaction status ${s}`);
      m = { name: 'readyForQuery', status: s };
      break;
    }
    case BackendCode.RowDescription:
      m = { name: 'rowDescription', fields: decodeFields(r) };
      break;
    case BackendCode.DataRow: {
      const n = r.int16();
      if (n < 0) throw new ProtocolViolation('negative column count');
      const values: (Buffer | null)[] = [];
      for (let i = 0; i < n; i++) {
        const len = r.int32();
        values.push(len === -1 ? null : r.bytes(len));
      }
      m = { name: 'dataRow', values };
      break;
    }
    case BackendCode.CommandComplete:
      m = { name: 'commandComplete', tag: r.cstring() };
      break;
    case BackendCode.ErrorResponse:
      m = { name: 'error', fields: errorFields(r) };
      break;
    case BackendCode.NoticeResponse:
      m = { name: 'notice', fields: errorFields(r) };
      break;
    case BackendCode.NotificationResponse:
      m = { name: 'notification', pid: r.int32(), channel: r.cstring(), payload: r.cstring() };
      break;
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.CopyBothResponse: {
      const name = frame.code === BackendCode.CopyInResponse ? 'copyInResponse' : frame.code === BackendCode.CopyOutResponse ? 'copyOutResponse' : 'copyBothResponse';
      const format = r.byte();
      const n = r.int16();
      if (n < 0) throw new ProtocolViolation('negative column count');
      const columnFormats: number[] = [];
      for (let i = 0; i < n; i++) columnFormats.push(r.int16());
      m = { name, format, columnFormats };
      break;
    }
    case BackendCode.CopyData:
      return { name: 'copyData', data: r.rest() };
    case BackendCode.CopyDone:
      m = { name: 'copyDone' };
      break;
    case BackendCode.ParseComplete:
      m = { name: 'parseComplete' };
      break;
    case BackendCode.BindComplete:
      m = { name: 'bindComplete' };
      break;
    case BackendCode.CloseComplete:
      m = { name: 'closeComplete' };
      break;
    case BackendCode.ParameterDescription: {
      const n = r.int16();
      if (n < 0) throw new ProtocolViolation('negative parameter count');
      const types: number[] = [];
      for (let i = 0; i < n; i++) types.push(r.uint32());
      m = { name: 'parameterDescription', types };
      break;
    }
    case BackendCode.NoData:
      m = { name: 'noData' };
      break;
    case BackendCode.PortalSuspended:
      m = { name: 'portalSuspended' };
      break;
    case BackendCode.EmptyQueryResponse:
      m = { name: 'emptyQuery' };
      break;
    case BackendCode.NegotiateProtocolVersion: {
      const minor = r.int32();
      const n = r.int32();
      if (n < 0) throw new ProtocolViolation('negative option count');
      const options: string[] = [];
      for (let i = 0; i < n; i++) options.push(r.cstring());
      m = { name: 'negotiateProtocolVersion', minor, options };
      break;
    }
    case BackendCode.FunctionCallResponse: {
      const len = r.int32();
      m = { name: 'functionCallResponse', value: len === -1 ? null : r.bytes(len) };
      break;
    }
    default:
      throw new ProtocolViolation(`unknown backend message type ${JSON.stringify(String.fromCharCode(frame.code))}`);
  }
  if (r.remaining !== 0) throw new ProtocolViolation(`trailing bytes in ${m.name} message`);
  return m;
}

export function decodeFields(r: Reader): Field[] {
  const n = r.int16();
  if (n < 0) throw new ProtocolViolation('negative field count');
  const fields: Field[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.uint32();
    const columnAttr = r.int16();
    const typeOid = r.uint32();
    const typeSize = r.int16();
    const typeModifier = r.int32();
    const format = r.int16();
    if (format !== 0 && format !== 1) throw new ProtocolViolation(`invalid format code ${format}`);
    fields.push({ name, tableOid, columnAttr, typeOid, typeSize, typeModifier, format });
  }
  return fields;
}

function writeErrorFields(w: Writer, fields: ErrorFields): void {
  for (const [code, value] of fields) w.byte(code.charCodeAt(0)).cstring(value);
  w.byte(0);
}

export function encodeBackend(m: BackendMessage): Buffer {
  const w = new Writer();
  switch (m.name) {
    case 'authenticationOk':
      return w.int32(0).message(BackendCode.Authentication);
    case 'authenticationCleartextPassword':
      return w.int32(3).message(BackendCode.Authentication);
    case 'authenticationMD5Password':
      return w.int32(5).bytes(m.salt).message(BackendCode.Authentication);
    case 'authenticationSASL':
      w.int32(10);
      for (const mech of m.mechanisms) w.cstring(mech);
      return w.byte(0).message(BackendCode.Authentication);
    case 'authenticationSASLContinue':
      return w.int32(11).bytes(m.data).message(BackendCode.Authentication);
    case 'authenticationSASLFinal':
      return w.int32(12).bytes(m.data).message(BackendCode.Authentication);
    case 'authenticationOther':
      return w.int32(m.type).bytes(m.data).message(BackendCode.Authentication);
    case 'parameterStatus':
      return w.cstring(m.key).cstring(m.value).message(BackendCode.ParameterStatus);
    case 'backendKeyData':
      return w.int32(m.pid).int32(m.secret).message(BackendCode.BackendKeyData);
    case 'readyForQuery':
      return w.byte(m.status.charCodeAt(0)).message(BackendCode.ReadyForQuery);
    case 'rowDescription':
      w.int16(m.fields.length);
      for (const f of m.fields) {
        w.cstring(f.name).uint32(f.tableOid).int16(f.columnAttr).uint32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
      }
      return w.message(BackendCode.RowDescription);
    case 'dataRow':
      return encodeDataRow(m.values);
    case 'commandComplete':
      return w.cstring(m.tag).message(BackendCode.CommandComplete);
    case 'error':
      writeErrorFields(w, m.fields);
      return w.message(BackendCode.ErrorResponse);
    case 'notice':
      writeErrorFields(w, m.fields);
      return w.message(BackendCode.NoticeResponse);
    case 'notification':
      return w.int32(m.pid).cstring(m.channel).cstring(m.payload).message(BackendCode.NotificationResponse);
    case 'copyInResponse':
    case 'copyOutResponse':
    case 'copyBothResponse':
      w.byte(m.format).int16(m.columnFormats.length);
      for (const f of m.columnFormats) w.int16(f);
      return w.message(COPY_CODES[m.name]);
    case 'copyData':
      return w.bytes(m.data).message(BackendCode.CopyData);
    case 'copyDone':
      return w.message(BackendCode.CopyDone);
    case 'parseComplete':
      return w.message(BackendCode.ParseComplete);
    case 'bindComplete':
      return w.message(BackendCode.BindComplete);
    case 'closeComplete':
      return w.message(BackendCode.CloseComplete);
    case 'parameterDescription':
      w.int16(m.types.length);
      for (const t of m.types) w.uint32(t);
      return w.message(BackendCode.ParameterDescription);
    case 'noData':
      return w.message(BackendCode.NoData);
    case 'portalSuspended':
      return w.message(BackendCode.PortalSuspended);
    case 'emptyQuery':
      return w.message(BackendCode.EmptyQueryResponse);
    case 'negotiateProtocolVersion':
      w.int32(m.minor).int32(m.options.length);
      for (const o of m.options) w.cstring(o);
      return w.message(BackendCode.NegotiateProtocolVersion);
    case 'functionCallResponse':
      if (m.value === null) w.int32(-1);
      else w.int32(m.value.length).bytes(m.value);
      return w.message(BackendCode.FunctionCallResponse);
  }
}

/** DataRow encoder, separate because masking calls it once per transformed row. */
export function encodeDataRow(values: (Buffer | null)[]): Buffer {
  let size = 2;
  for (const v of values) size += 4 + (v === null ? 0 : v.length);
  const out = Buffer.allocUnsafe(size + 5);
  out[0] = BackendCode.DataRow;
  out.writeInt32BE(size + 4, 1);
  out.writeInt16BE(values.length, 5);
  let pos = 7;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, pos);
      pos += 4;
    } else {
      out.writeInt32BE(v.length, pos);
      v.copy(out, pos + 4);
      pos += 4 + v.length;
    }
  }
  return out;
}

/** Field lookup in an ErrorResponse/NoticeResponse. */
export function errorField(fields: ErrorFields, code: string): string | undefined {
  for (const [c, v] of fields) if (c === code) return v;
  return undefined;
}

/** An ErrorResponse made by the gateway itself (pgbouncer's send_pooler_error). */
export function gatewayError(severity: 'ERROR' | 'FATAL', sqlstate: string, message: string, detail?: string, hint?: string, position?: number): Buffer {
  const fields: ErrorFields = [
    ['S', severity],
    ['V', severity],
    ['C', sqlstate],
    ['M', message],
  ];
  if (detail) fields.push(['D', detail]);
  if (hint) fields.push(['H', hint]);
  // P: the cursor position in the statement text, 1-based characters (as PostgreSQL sends it).
  if (position !== undefined) fields.push(['P', String(position)]);
  return encodeBackend({ name: 'error', fields });
}

export function gatewayNotice(message: string, detail?: string): Buffer {
  const fields: ErrorFields = [
    ['S', 'NOTICE'],
    ['V', 'NOTICE'],
    ['C', '00000'],
    ['M', message],
  ];
  if (detail) fields.push(['D', detail]);
  return encodeBackend({ name: 'notice', fields });
}

export const READY_IDLE = encodeBackend({ name: 'readyForQuery', status: 'I' });
