// An upstream ErrorResponse that ends the session. PostgreSQL sends FATAL (or PANIC) and then
// closes the connection: pg_terminate_backend, idle_in_transaction_session_timeout, a shutdown.
// The client then has the server's own reason, so the gateway relays it and closes quietly when
// the upstream socket ends, instead of adding a FATAL of its own (node-postgres would emit a second
// `error` event, and fail queued queries with the gateway's message instead of
// "Connection terminated unexpectedly" as it does against PostgreSQL itself).

import { BackendCode, decodeBackend, encodeBackend, errorField } from '../wire/backend.ts';
import type { Frame } from '../wire/framer.ts';

/** True for an ErrorResponse of severity FATAL or PANIC (the non-localized `V` field, else `S`). */
export function endsSession(f: Frame): boolean {
  const d = decodeBackend(f);
  if (!d.ok || d.message.name !== 'error') return false;
  const severity = errorField(d.message.fields, 'V') ?? errorField(d.message.fields, 'S');
  return severity === 'FATAL' || severity === 'PANIC';
}

/**
 * The gateway's own ErrorResponse with severity FATAL: what the client gets when the server
 * answered a refused statement's stand-in with FATAL (`exit_on_error`): the gateway's reason, and
 * the news that the session is over, never the stand-in's own error.
 */
export function asFatal(error: Buffer): Buffer {
  const d = decodeBackend({ code: BackendCode.ErrorResponse, raw: error, bodyStart: 5 });
  if (!d.ok || d.message.name !== 'error') return error;
  const fields = d.message.fields.map(([k, v]): [string, string] => (k === 'S' || k === 'V' ? [k, 'FATAL'] : [k, v]));
  return encodeBackend({ name: 'error', fields });
}
