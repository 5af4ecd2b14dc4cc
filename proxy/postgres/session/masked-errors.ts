// Error and notice text of a statement whose verdict carries masks (issue 14 item 5).
//
// An ErrorResponse or NoticeResponse can quote a value the statement read: a cast's
// `invalid input syntax for type integer: "alice@example.com"`, a function that names its bad
// argument, a constraint's `Failing row contains (...)`. The masker says, per statement, whether
// the server's text may pass (`relay`), must go through the content detectors field by field like
// row values (`mask`), or must be withheld (`withhold`: column masks apply and the statement reads a
// masked column, so any field may hold a masked value the gateway cannot recognise). Withheld text
// becomes a generic message that keeps the severity, the SQLSTATE, the position in the client's own
// statement and the server's source location (none of which carries data). Anything that fails
// here withholds (fail closed).

import type { ErrorTextPolicy } from '../../ports.ts';
import { BackendCode, decodeBackend, encodeBackend, errorField, type ErrorFields } from '../wire/backend.ts';

/** Fields that carry no text from data: severity, SQLSTATE, position, the server's source file/line/routine. */
const STRUCTURAL: ReadonlySet<string> = new Set(['S', 'V', 'C', 'P', 'F', 'L', 'R']);

/**
 * The frame to send instead of `raw` (an ErrorResponse or NoticeResponse from the upstream), or
 * `undefined` to send nothing (a notice that cannot be read).
 */
export async function maskServerText(raw: Buffer, how: Promise<ErrorTextPolicy>): Promise<Buffer | undefined> {
  const isError = raw[0] === BackendCode.ErrorResponse;
  const d = decodeBackend({ code: raw[0]!, raw, bodyStart: 5 });
  if (!d.ok || (d.message.name !== 'error' && d.message.name !== 'notice')) {
    return isError ? encodeBackend({ name: 'error', fields: withheld([], 'the server\'s message could not be read') }) : undefined;
  }
  // What the masker says of this statement's text (EnforcementSession.textPolicy: never rejects).
  const policy = await how;
  const fields = d.message.fields;
  if (policy.mode === 'relay') return raw;
  let out: ErrorFields;
  if (policy.mode === 'mask') {
    try {
      out = fields.map(([c, v]) => [c, STRUCTURAL.has(c) ? v : policy.mask(v)]);
    } catch {
      out = withheld(fields, 'the error text could not be masked');
    }
  } else out = withheld(fields, policy.reason);
  return encodeBackend({ name: isError ? 'error' : 'notice', fields: out });
}

const DETAIL = 'column masks apply to this statement, and the text of an error or notice could quote a masked value; run it without masked columns to see the message';

/**
 * Messages of the FATALs the server sends about the connection itself (administrator command,
 * timeouts, a crash): they never quote a value. Any other FATAL can: `exit_on_error` turns every
 * ERROR, a cast's included, into a FATAL with the same text.
 */
const CONNECTION_FATALS: ReadonlySet<string> = new Set([
  'terminating connection due to administrator command',
  'terminating connection due to idle-in-transaction timeout',
  'terminating connection due to idle-session timeout',
  'terminating connection because of crash of another server process',
  'terminating connection due to unexpected postmaster exit',
  'terminating connection due to conflict with recovery',
]);

/**
 * A FATAL (or PANIC) answering a masked statement, decided at once (the server closes the
 * connection right after it): a connection-level message keeps its text (its detail and hint
 * dropped), any other is withheld.
 */
export function maskFatalText(raw: Buffer): Buffer {
  const d = decodeBackend({ code: raw[0]!, raw, bodyStart: 5 });
  const fields = d.ok && d.message.name === 'error' ? d.message.fields : [];
  const message = errorField(fields, 'M');
  if (message !== undefined && CONNECTION_FATALS.has(message)) {
    return encodeBackend({ name: 'error', fields: fields.filter(([c]) => c === 'M' || STRUCTURAL.has(c)) });
  }
  return encodeBackend({ name: 'error', fields: withheld(fields, 'the statement reads masked columns') });
}

function withheld(fields: ErrorFields, reason: string): ErrorFields {
  const sqlstate = errorField(fields, 'C') ?? 'XX000';
  const severity = errorField(fields, 'S') ?? 'ERROR';
  const out: ErrorFields = [];
  if (!fields.some(([c]) => c === 'S')) out.push(['S', severity]);
  for (const [c, v] of fields) {
    if (c === 'M') out.push(['M', `hoop: the server's message is withheld (SQLSTATE ${sqlstate}): ${reason}`], ['D', DETAIL]);
    else if (STRUCTURAL.has(c)) out.push([c, v]);
  }
  if (!fields.some(([c]) => c === 'C')) out.push(['C', sqlstate]);
  if (!fields.some(([c]) => c === 'M')) out.push(['M', `hoop: the server's message is withheld (SQLSTATE ${sqlstate}): ${reason}`], ['D', DETAIL]);
  return out;
}

/**
 * The error text the audit log and the recording keep for a failed statement: the server's message,
 * or for a masked statement only its SQLSTATE (the message could quote a masked value, and results
 * are recorded only masked).
 */
export function recordedErrorText(fields: ErrorFields | undefined, masked: boolean): string {
  if (!fields) return 'error';
  if (masked) return `the server's message is withheld (SQLSTATE ${errorField(fields, 'C') ?? 'XX000'})`;
  return errorField(fields, 'M') ?? 'error';
}
