// Which messages the session relays in pieces instead of holding them whole (issue 14 item 15).
//
// PostgreSQL accepts a field of up to 1 GB; the gateway decodes only what a decision needs. A
// DataRow (unless its statement's rows are masked), a Bind (the decision was made at Parse; the
// portal and statement names sit at its start), a FunctionCall (decided by the function OID and
// argument count at its start, unless an approval needs its values) and CopyData (never
// classified: COPY is decided by its statement) stream through without a size cap. Query and Parse are decoded whole, up to
// `limits.max_statement_size`, and refused from their header beyond it; everything else keeps the
// whole-message cap (`limits.max_message_size`).

import { BackendCode, encodeBackend, type ErrorFields } from '../wire/backend.ts';
import { FrontendCode } from '../wire/frontend.ts';
import type { GatewayLimits } from '../../limits.ts';
import { statementSize } from './statement-limit.ts';
import { functionCallHead } from './function-call-head.ts';

/** Messages longer than this (of the codes below) are handed out as a head and pieces. */
export const STREAM_ABOVE = 1024 * 1024;

export const CLIENT_STREAMED: ReadonlySet<number> = new Set([FrontendCode.Query, FrontendCode.Parse, FrontendCode.Bind, FrontendCode.CopyData, FrontendCode.FunctionCall]);
export const SERVER_STREAMED: ReadonlySet<number> = new Set([BackendCode.DataRow, BackendCode.CopyData, BackendCode.ErrorResponse, BackendCode.NoticeResponse]);

/** The client side's streaming: a statement longer than the limit is seen at its head, never buffered. */
export function clientStreaming(limits: GatewayLimits): { codes: ReadonlySet<number>; above: number } {
  return { codes: CLIENT_STREAMED, above: Math.min(STREAM_ABOVE, limits.maxStatementSize) };
}

export function serverStreaming(): { codes: ReadonlySet<number>; above: number } {
  return { codes: SERVER_STREAMED, above: STREAM_ABOVE };
}

/**
 * What the session does with the head of a streamed client message: `whole` (decode it: a
 * statement within the limit, or a Bind whose names do not end within the head), `oversized` (a
 * statement over the limit: refused, its pieces dropped) or `stream` (relay the pieces as they come).
 */
export function clientHead(head: Buffer, limits: GatewayLimits): 'whole' | 'oversized' | 'stream' {
  switch (head[0]) {
    case FrontendCode.Query:
    case FrontendCode.Parse: {
      const size = statementSize(head);
      return size === undefined || size > limits.maxStatementSize ? 'oversized' : 'whole';
    }
    case FrontendCode.Bind: {
      const portalEnd = head.indexOf(0, 5);
      return portalEnd >= 0 && head.indexOf(0, portalEnd + 1) >= 0 ? 'stream' : 'whole';
    }
    case FrontendCode.FunctionCall:
      // Decided by its function OID and argument count (function-call-head.ts), then its arguments stream.
      return functionCallHead(head) ? 'stream' : 'whole';
    default:
      return 'stream';
  }
}

/**
 * An ErrorResponse or NoticeResponse longer than the gateway decodes (the server quotes a 70 MB
 * value in "invalid input syntax for type integer: ..."): replaced by one with the server's
 * severity and SQLSTATE (read from the head; PostgreSQL sends them first) and a message saying so.
 * Its text is never relayed, so nothing a mask would cover can pass in it.
 */
export function oversizedServerText(head: Buffer, size: number, limit: number): Buffer {
  const got = new Map<string, string>();
  let p = 5;
  while (p < head.length && head[p] !== 0) {
    const end = head.indexOf(0, p + 1);
    if (end < 0) break;
    const code = String.fromCharCode(head[p]!);
    if (code === 'S' || code === 'V' || code === 'C') got.set(code, head.toString('utf8', p + 1, end));
    p = end + 1;
  }
  const severity = got.get('V') ?? got.get('S') ?? (head[0] === BackendCode.ErrorResponse ? 'ERROR' : 'NOTICE');
  const fields: ErrorFields = [
    ['S', got.get('S') ?? severity],
    ['V', severity],
    ['C', got.get('C') ?? (head[0] === BackendCode.ErrorResponse ? 'XX000' : '00000')],
    ['M', `hoop: the server's ${head[0] === BackendCode.ErrorResponse ? 'error' : 'notice'} (${size - 1} bytes) is longer than the gateway relays (limits.max_message_size ${limit})`],
  ];
  return encodeBackend(head[0] === BackendCode.ErrorResponse ? { name: 'error', fields } : { name: 'notice', fields });
}
