// Facts → decision: ask the current policy about each action of a request, and fail closed if
// anything goes wrong. Pure: no audit, no approval, no I/O.

import { withReadView } from '../../engine/index.ts';
import type { Decision } from '../../engine/response.ts';
import { readView } from '../../stdlib/sql/read-view.ts';
import type { Action, Identity, RequestContext, Resource, SqlAction } from '../../stdlib/facts.ts';
import type { Limits } from '../../engine/response.ts';
import type { PolicyEvaluator, RequestItem } from './types.ts';

const NO_MASKS = Object.freeze({ columns: Object.freeze([]) as never[], detectors: Object.freeze([]) as never[] });
/** No limit applies (the engine leaves `limits` out then). */
export const NO_LIMITS: Limits = Object.freeze({ rate: Object.freeze([]) as never[] });

/**
 * Masks are applied to requests up to this long (the default `max_statement_size`, so by default
 * never refused for this): the masker follows a statement's data flow on the event loop, up to
 * ~150 ms per MiB of dense expressions. A longer request whose verdict carries masks is refused
 * rather than stall every session for seconds.
 */
export const MAX_MASKED_STATEMENT = 1024 * 1024;

/** A block made by the gateway itself (engine failure, classification failure...). */
export function gatewayBlock(message: string): Decision {
  return { verdict: 'block', masks: NO_MASKS, approvers: [], message, reasons: [], defaulted: false, errors: [] };
}

export function hasMasks(d: Decision): boolean {
  return d.masks.columns.length > 0 || d.masks.detectors.length > 0;
}

/** The decision's limits (NO_LIMITS when none applies). */
export function limitsOf(d: Decision): Limits {
  return d.limits ?? NO_LIMITS;
}

/**
 * A request's context. `time` is formatted only when read — by a rule whose condition uses
 * `context.time` — instead of for every statement (the formatting cost more than the decision).
 */
export class LazyContext implements RequestContext {
  #time: string | undefined;

  constructor(
    readonly client_addr: string,
    readonly session_id: string,
    private readonly at: number,
  ) {}

  get time(): string {
    return (this.#time ??= new Date(this.at).toISOString());
  }

  toJSON(): RequestContext {
    return { time: this.time, client_addr: this.client_addr, session_id: this.session_id };
  }
}

export interface DecideContext {
  identity: Identity;
  resource: Resource;
  clientAddr: string;
  sessionId: string;
}

/** The decision on each item, in order. Never throws. */
export function decideItems(
  items: readonly RequestItem[], policy: PolicyEvaluator | undefined, ctx: DecideContext, text: string, unmaskable: string | undefined,
  /** The items' actions with their cost facts (`sql.estimate`), when asked for; else each item's own. */
  actions?: readonly Action[],
): Decision[] {
  const out = new Array<Decision>(items.length);
  if (items.length === 0) return out;
  const context = new LazyContext(ctx.clientAddr, ctx.sessionId, Date.now());
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    let decision: Decision;
    if (item.refused) decision = gatewayBlock(item.refused);
    else if (!policy) decision = gatewayBlock('no policy is loaded');
    else {
      try {
        const action = actions?.[i] ?? item.action;
        decision = policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action, context });
        const other = item.alsoAs;
        if (other && decision.verdict !== 'block') {
          // The call it may be is code whose reads cannot be known: decided with its read view too.
          const asCall = policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action: other, context });
          const otherRead = other.type === 'sql' ? readView(other, item.ast) : undefined;
          decision = bothWays(decision, withReadView(asCall, otherRead, (r) => policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action: r, context }), policy.tableScopes));
        }
        // A statement that reads (a call, RETURNING, INSERT ... SELECT, a row write: stdlib/sql/read-view.ts)
        // is also decided as that read, and its masks added: a mask scoped to reads covers it too.
        // (The closure is made only for a statement that has a read view: off the plain SELECT's path.)
        const read = action.type === 'sql' ? readView(action, item.ast) : undefined;
        if (read) decision = withReadView(decision, read, (r) => policy.evaluate({ identity: ctx.identity, resource: ctx.resource, action: r, context }), policy.tableScopes);
      } catch (e) {
        // The engine never throws by contract; fail closed if it does.
        decision = gatewayBlock(`policy evaluation failed: ${(e as Error).message}`);
      }
    }
    if (hasMasks(decision)) {
      if (unmaskable !== undefined) decision = gatewayBlock(unmaskable);
      else if (text.length > MAX_MASKED_STATEMENT) decision = gatewayBlock(`masks are applied to statements of up to ${MAX_MASKED_STATEMENT} characters; this one has ${text.length}`);
    }
    out[i] = decision;
  }
  return out;
}

/**
 * An action that may mean something else (a built-in name a user's function shadows) is decided
 * both ways: the same answer both ways stands; otherwise (a mask scoped to reads, an approval for
 * calls only) it is refused rather than lose either rule.
 */
function bothWays(asCall: Decision, asWritten: Decision): Decision {
  const same = asCall.verdict === asWritten.verdict && JSON.stringify(asCall.masks) === JSON.stringify(asWritten.masks) && JSON.stringify(asCall.approvers) === JSON.stringify(asWritten.approvers);
  if (same) return asCall;
  if (asWritten.verdict === 'block') return asWritten;
  return gatewayBlock('this statement calls a built-in name (a function or operator) that a function outside pg_catalog on the search_path also has, and the policy decides the call it may be and the statement as written differently (e.g. a mask for reads): refused rather than lose either rule; qualify the built-in or drop the shadowing function');
}

/** An action standing for text that could not be classified: `unknown`, never allowed unless a rule says so. */
export function unknownSql(text: string, reason: string): SqlAction {
  return {
    type: 'sql', kind: 'unknown', effects: ['unknown'], reads: [], writes: [], columns: [], functions: [],
    has_where: true, limit: null, text, normalized: text, fingerprint: '', reason,
  };
}

/** Which decision decides a request of several actions: the first block, else the first approve; -1 when all may run. */
export function decidingIndex(decisions: readonly Decision[]): number {
  let approve = -1;
  for (let i = 0; i < decisions.length; i++) {
    const v = decisions[i]!.verdict;
    if (v === 'block') return i;
    if (v === 'approve' && approve < 0) approve = i;
  }
  return approve;
}

/** The refusal text for a block: names the rule(s) and carries the rule's message. */
export function blockText(d: Decision): { message: string; detail?: string } {
  const rules = d.reasons.map((r) => r.id);
  const msg = d.message ?? 'blocked by policy';
  if (rules.length === 0) return { message: `hoop: blocked: ${msg}`, ...(d.defaulted ? { detail: 'no rule allows this statement (default block)' } : {}) };
  return { message: `hoop: blocked by ${rules.join(', ')}: ${msg}`, detail: `rule${rules.length > 1 ? 's' : ''}: ${rules.join(', ')}` };
}

/** A block of this action, saying why an `unknown` action is unknown (e.g. which table a name means cannot be told). */
export function refusalOf(action: Action, d: Decision): { message: string; detail?: string } {
  const block = blockText(d);
  const why = action.kind === 'unknown' && 'reason' in action ? action.reason : undefined;
  if (!why) return block;
  return { ...block, detail: `${block.detail ? `${block.detail}; ` : ''}the statement is unknown: ${why}` };
}
