// The statement-size limit (config `limits.max_statement_size`, issue 14 item 11): a statement the
// gateway would have to classify is measured from its message header, before it is buffered or
// parsed, so one agent cannot make the gateway hold or parse megabytes for everyone else.

import { FrontendCode } from '../wire/frontend.ts';

/**
 * Bytes of statement in a Query or Parse message, from its first bytes: a Query's text; a Parse's
 * text plus its declared parameter types (4 bytes each; the count sits after the text, so the
 * header alone cannot separate them). `head` is the message from its type byte on (it may be cut
 * short); undefined when a Parse's statement name does not end within it, or for other messages.
 */
export function statementSize(head: Buffer): number | undefined {
  if (head.length < 5) return undefined;
  const length = head.readInt32BE(1);
  if (head[0] === FrontendCode.Query) return Math.max(0, length - 4 - 1);
  if (head[0] !== FrontendCode.Parse) return undefined;
  const nul = head.indexOf(0, 5);
  if (nul < 0) return undefined;
  // length counts itself (4), the name and its NUL, the text's NUL and the int16 type count.
  return Math.max(0, length - 4 - (nul - 5 + 1) - 1 - 2);
}

/** The refusal's text (SQLSTATE 54000, program_limit_exceeded). */
export function oversizeMessage(size: number, limit: number): string {
  return `hoop: statement of ${size} bytes exceeds max_statement_size ${limit}`;
}

/** A Parse's statement name, from its first bytes (undefined when it does not end within them). */
export function parseStatementName(head: Buffer): string | undefined {
  const nul = head.indexOf(0, 5);
  return nul < 0 ? undefined : head.toString('utf8', 5, nul);
}
