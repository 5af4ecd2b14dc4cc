// Which messages the session relays in pieces instead of holding them whole (issue 14 item 15).
//
// PostgreSQL accepts a field of up to 1 GB; the gateway decodes only what a decision needs. A
// DataRow (unless its statement's rows are masked), a Bind (the decision was made at Parse; the
// portal and statement names sit at its start) and CopyData (never classified: COPY is decided by
// its statement) stream through without a size cap. Query and Parse are decoded whole, up to
// `limits.max_statement_size`, and refused from their header beyond it; everything else keeps the
// whole-message cap (`limits.max_message_size`).

import { BackendCode } from '../wire/backend.ts';
import { FrontendCode } from '../wire/frontend.ts';
import type { GatewayLimits } from '../../limits.ts';
import { statementSize } from './statement-limit.ts';

/** Messages longer than this (of the codes below) are handed out as a head and pieces. */
export const STREAM_ABOVE = 1024 * 1024;

export const CLIENT_STREAMED: ReadonlySet<number> = new Set([FrontendCode.Query, FrontendCode.Parse, FrontendCode.Bind, FrontendCode.CopyData]);
export const SERVER_STREAMED: ReadonlySet<number> = new Set([BackendCode.DataRow, BackendCode.CopyData]);

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
    default:
      return 'stream';
  }
}
