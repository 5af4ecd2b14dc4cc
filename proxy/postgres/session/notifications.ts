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
//     identity may see); computed once per policy (a reload recomputes it) from the engine's
//     explanation of a synthetic request and the compiled rules;
//   - content detectors: the channel name and the payload go through them, as row values do;
//   - column masks: which masked value a payload holds cannot be recognised (a detector finding
//     nothing proves nothing), so a non-empty payload becomes `[REDACTED]`; the channel name is the
//     listener's own (a session only hears channels it named in LISTEN) and keeps its text;
//   - the process ID of the notifying backend carries no data and is kept.
//
// Anything that fails (a policy that cannot be explained, no masker, an unreadable frame) withholds:
// a notification whose channel cannot be scanned is dropped.

import type { Masks } from '../../../engine/response.ts';
import type { CompiledPolicyIR } from '../../../engine/tree.ts';
import type { Request, SqlAction } from '../../../stdlib/facts.ts';
import type { ResultMasker } from '../../ports.ts';
import type { DecideContext as DecisionContext, PolicyEvaluator } from '../../enforcement/index.ts';
import { decodeBackend, encodeBackend } from '../wire/backend.ts';

/** What a payload is replaced with when column masks apply (the `redact` masker's output). */
export const WITHHELD_PAYLOAD = '[REDACTED]';

/** A compiled policy (engine `PreparedPolicy`): per-rule outcomes and the rules' effects. */
interface ExplainablePolicy extends PolicyEvaluator {
  explain(req: Request): { rules: readonly { id: string; outcome: { status: string; selector?: string } }[] };
  readonly ir: CompiledPolicyIR;
}

function explainable(p: PolicyEvaluator): p is ExplainablePolicy {
  const q = p as Partial<ExplainablePolicy>;
  return typeof q.explain === 'function' && typeof q.ir === 'object' && q.ir !== null && Array.isArray(q.ir.rules);
}

/** The action of the synthetic request: only the rules' `on` and `when` outcomes are read. */
const LISTEN_ACTION: SqlAction = Object.freeze({
  type: 'sql', kind: 'utility', effects: ['utility'], reads: [], writes: [], columns: [], functions: [],
  has_where: true, limit: null, text: 'LISTEN', normalized: 'LISTEN', fingerprint: '',
}) as SqlAction;

/**
 * Every mask a rule could apply to this identity on this resource, or `undefined` when that cannot
 * be told (no policy, a policy without explanations, an explanation that does not cover every rule).
 */
export function sessionMasks(policy: PolicyEvaluator | undefined, ctx: DecisionContext): Masks | undefined {
  if (!policy || !explainable(policy)) return undefined;
  try {
    const req: Request = { identity: ctx.identity, resource: ctx.resource, action: LISTEN_ACTION, context: { time: new Date().toISOString(), client_addr: ctx.clientAddr, session_id: ctx.sessionId } };
    const outcomes = policy.explain(req).rules;
    const rules = new Map(policy.ir.rules.map((r) => [r.id, r]));
    if (outcomes.length !== rules.size) return undefined;
    const masks: Masks = { columns: [], detectors: [] };
    for (const { id, outcome } of outcomes) {
      const rule = rules.get(id);
      if (!rule) return undefined;
      // Skipped by its resource or identity selector: the rule is not about this session.
      if (outcome.status === 'skipped' && (outcome.selector === 'on' || outcome.selector === 'when')) continue;
      for (const c of rule.effects.columnMasks) masks.columns.push({ column: c.column, masker: c.masker, rule: id });
      for (const d of rule.effects.detectorMasks) masks.detectors.push({ detectors: d.detectors, masker: d.masker, rule: id });
    }
    return masks;
  } catch {
    return undefined;
  }
}

/** One session's notifications: its masks, kept until the policy is swapped. */
export class NotificationMasking {
  #policy: PolicyEvaluator | undefined;
  #masks: Masks | undefined;
  #computed = false;

  constructor(
    private readonly policy: () => PolicyEvaluator | undefined,
    private readonly context: () => DecisionContext,
    private readonly masker: ResultMasker | undefined,
  ) {}

  private masks(): Masks | undefined {
    const p = this.policy();
    if (!this.#computed || p !== this.#policy) {
      this.#policy = p;
      this.#masks = sessionMasks(p, this.context());
      this.#computed = true;
    }
    return this.#masks;
  }

  /** The frame to send instead of `raw` (a NotificationResponse), or `undefined` to send nothing. */
  relay(raw: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    const masks = this.masks();
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
        const policy = this.masker?.errorText ? await this.masker.errorText({ resource: this.context().resource, statementText: '', masks: { columns: [], detectors: masks.detectors } }) : undefined;
        if (policy?.mode !== 'mask') return undefined;
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
