// NotificationResponse (LISTEN/NOTIFY) under the session's masks (issue 14 item 5, "every byte
// sent to the client").
//
// A notification is not an answer to any statement of the session: another session's
// `NOTIFY c, '<card number>'` or `pg_notify('c', email)` reaches every session listening on `c`,
// asynchronously. Its payload can carry any value any statement could read, so it is checked
// against every mask the policy could apply to this session, not the masks of one statement:
//
//   - the session's masks are the union of the mask effects of every rule whose `on` (resource)
//     and `when` (identity) selectors hold for the session, whatever its `match` and `if` say
//     (a rule masking `select on tables ["public.people"]` still says what of that data this
//     identity may see): EnforcementSession.sessionMasks (proxy/enforcement/session-masks.ts),
//     computed once per policy (a reload recomputes it);
//   - content detectors: the channel name and the payload go through them, as row values do;
//   - column masks: which masked value a payload holds cannot be recognised (a detector finding
//     nothing proves nothing), so a non-empty payload becomes `[REDACTED]`; the channel name is the
//     listener's own (a session only hears channels it named in LISTEN) and keeps its text;
//   - the process ID of the notifying backend carries no data and is kept.
//
// Anything that fails (a policy that cannot be explained, no masker, an unreadable frame) withholds:
// a notification whose channel cannot be scanned is dropped.

import type { Masks } from '../../../engine/response.ts';
import type { ErrorTextPolicy } from '../../ports.ts';
import { decodeBackend, encodeBackend } from '../wire/backend.ts';

/** What a payload is replaced with when column masks apply (the `redact` masker's output). */
export const WITHHELD_PAYLOAD = '[REDACTED]';

/** What a session's notifications need of its enforcement (EnforcementSession). */
export interface NotificationSource {
  /** Every mask the policy could apply to the session; undefined when that cannot be told. */
  sessionMasks(): Masks | undefined;
  /** How text under these masks may reach the client. */
  textPolicy(masks: Masks, statementText: string): Promise<ErrorTextPolicy>;
}

/** One session's notifications. */
export class NotificationMasking {
  constructor(private readonly source: NotificationSource) {}

  /** The frame to send instead of `raw` (a NotificationResponse), or `undefined` to send nothing. */
  relay(raw: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    const masks = this.source.sessionMasks();
    if (masks && masks.columns.length === 0 && masks.detectors.length === 0) return raw;
    return this.masked(raw, masks);
  }

  private async masked(raw: Buffer, masks: Masks | undefined): Promise<Buffer | undefined> {
    const d = decodeBackend({ code: raw[0]!, raw, bodyStart: 5 });
    if (!d.ok || d.message.name !== 'notification') return undefined;
    const { pid } = d.message;
    let { channel, payload } = d.message;
    // Masks that cannot be told: as if column masks applied, and the channel cannot be scanned.
    if (!masks) return undefined;
    if (masks.detectors.length > 0) {
      try {
        const policy = await this.source.textPolicy({ columns: [], detectors: masks.detectors }, '');
        if (policy.mode !== 'mask') return undefined;
        channel = policy.mask(channel);
        payload = policy.mask(payload);
      } catch {
        return undefined;
      }
    }
    if (masks.columns.length > 0 && payload !== '') payload = WITHHELD_PAYLOAD;
    return encodeBackend({ name: 'notification', pid, channel, payload });
  }
}
