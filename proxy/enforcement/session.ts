// One session's enforcement: decisions, approvals, mask guards, the audit records and the
// recording. The front door owns the connection; this owns everything the policy says about it.

import type { Decision, Masks, RateLimit } from '../../engine/response.ts';
import { sessionMasks } from './session-masks.ts';
import { formatDurationMs } from '../../language/ast.ts';
import { withEstimate, type Action, type Identity, type Request, type Resource } from '../../stdlib/facts.ts';
import type { RateVerdict } from '../state/rate-limits.ts';
import { shadowDisagreement, type ShadowRecord } from './shadow.ts';
import type { ApprovalMode, ApprovalParam, ApprovalRecord, AuditOutcome, ChannelCast, ChannelCastStart, AuditRecordInput, AuditSink, ErrorTextPolicy, MaskPlan, ResultField, SessionRecording } from '../ports.ts';
import { resolveApproval, type ApprovalContext, type ApprovalResult } from './approvals.ts';
import { canChangeState, staysInBlock } from '../audit/durability.ts';
import { decideItems, decidingIndex, hasMasks, LazyContext, limitsOf, refusalOf } from './decide.ts';
import { SessionRecords, statementEvent } from './records.ts';
import type { EnforcerServices } from './enforcer.ts';
import type { Completion, EnforcementRequest, FrontDoor, Forward, Hold, Outcome, Permit, PolicyEvaluator, RefusalText, Refuse, RefuseReason, RequestItem, SessionHooks, SessionOpen } from './types.ts';

/** The audit reason of an action approved per execution: the approvals come with each execution. */
const APPROVAL_PER_EXECUTION = 'approval is requested at each Bind, for the values it binds';

/** The audit reason of a held request refused because its token expired during the wait. */
const TOKEN_EXPIRED_WHILE_HELD = 'token_expired: the token expired while the statement waited for approval';

const AUDIT_FAILED = 'hoop: the audit log could not be written; the statement was not run';

/** SQL kinds that may change what the catalog says (a DO block or procedure can run DDL). */
const SCHEMA_CHANGING: ReadonlySet<string> = new Set(['ddl', 'do', 'call', 'unknown']);

/** SQL kinds whose results can carry table data (DML through RETURNING; unknown and call: anything). */
const RETURNS_DATA: ReadonlySet<string> = new Set(['select', 'insert', 'update', 'delete', 'merge', 'copy_to', 'explain', 'call', 'unknown']);

function changesSchema(a: Action): boolean {
  return a.type === 'sql' && SCHEMA_CHANGING.has(a.kind);
}

const noop = (): void => undefined;

/** What one execution approved per execution binds (`EnforcementSession.approve`). */
export interface Execution {
  readonly params?: { readonly params: ApprovalParam[]; readonly digest: string } | undefined;
  readonly started: number;
}

/**
 * One session through one front door. Made by `Enforcer.openSession` (which wrote its
 * `session_start` record and opened its recording); ended by `close`.
 */
export class EnforcementSession<T extends RequestItem = RequestItem> {
  readonly id: string;
  readonly protocol: FrontDoor;
  readonly identity: Identity;
  readonly resource: Resource;
  readonly clientAddr: string;
  readonly approvalMode: ApprovalMode;
  readonly #expiresAt: number;
  readonly #svc: EnforcerServices;
  readonly #audit: AuditSink;
  readonly #hooks: SessionHooks<T>;
  readonly #records: SessionRecords;
  readonly #ended = new AbortController();
  readonly #approvals: ApprovalContext;
  #recording: SessionRecording | undefined;
  #closed = false;
  /** A schema-changing statement ran and its transaction has not ended (`transactionEnded`). */
  #schemaChangedInTx = false;
  /** The last audit record this session wrote (an fsync failing from it on ends the session). */
  #lastAuditSeq = 0;
  #unwatchAudit: (() => void) | undefined;
  #durableUpTo = 0;
  /**
   * The front door said a transaction block is open (`beforeReady(true)`), and no answer since may
   * have ended it: answers of statements that stay in the block need not wait for their records.
   */
  #blockOpen = false;
  /** The last record whose answer went out inside the block before it was durable: the block's end waits for it. */
  #owedUpTo = 0;
  #sessionMasks: { policy: PolicyEvaluator | undefined; masks: Masks | undefined } | undefined;

  /** @internal Made by `Enforcer.openSession`. */
  constructor(svc: EnforcerServices, open: SessionOpen<T>, id: string) {
    this.id = id;
    this.protocol = open.protocol;
    this.identity = open.identity;
    this.resource = open.resource;
    this.clientAddr = open.clientAddr;
    this.approvalMode = open.approvalMode;
    this.#expiresAt = open.expiresAt;
    this.#svc = svc;
    this.#audit = svc.audit;
    this.#hooks = open.hooks ?? {};
    this.#records = new SessionRecords(id, open.identity, open.resource, open.clientAddr, open.protocol);
    this.#approvals = {
      service: svc.approvals,
      mode: open.approvalMode,
      timeoutMs: svc.approvalTimeoutMs,
      identity: open.identity,
      resource: open.resource,
      sessionId: id,
      expiresAt: open.expiresAt,
      ended: this.#ended.signal,
      waits: { current: undefined },
    };
  }

  /** @internal */
  get records(): SessionRecords {
    return this.#records;
  }

  /** @internal A record of this session was written with this sequence number. */
  wrote(seq: number): void {
    if (seq > this.#lastAuditSeq) this.#lastAuditSeq = seq;
  }

  /** @internal From the session's opening on: an fsync failing while its records are in doubt ends it. */
  watchAudit(): void {
    this.#unwatchAudit = this.#audit.onSyncFailure((_err, fromSeq) => {
      if (this.#lastAuditSeq >= fromSeq && !this.#closed) this.#hooks.auditLost?.();
    });
  }

  /**
   * Before the answer to a forwarded permit goes out (its completion, its error): undefined when it
   * may go out now; otherwise a promise that resolves once its record is durable and rejects when
   * the fsync failed (then the answer must not go out: end the connection with an error).
   *
   * Inside an open transaction block (`beforeReady(true)`), a statement that stays in the block
   * (durability.ts `staysInBlock`) changes nothing until the block commits: its answer goes out at
   * once and its record is owed. Any other answer may end the block (COMMIT, a procedure...): it
   * waits for its own record and every owed one, and nothing after it is deferred until the front
   * door says again that a block is open. `p` undefined: an answer to something the session did not
   * forward as a permit (treated as one that may end the block).
   */
  beforeAnswer(p: Permit<T> | undefined): Promise<void> | undefined {
    const own = p?.answerAfter ?? 0;
    if (this.#blockOpen) {
      if (p !== undefined && staysInBlock(p.action)) {
        if (own > this.#owedUpTo) this.#owedUpTo = own;
        return undefined;
      }
      this.#blockOpen = false;
    }
    return this.#untilDurable(own > this.#owedUpTo ? own : this.#owedUpTo);
  }

  /**
   * The front door is about to tell the client whether a transaction block is open (PostgreSQL:
   * ReadyForQuery, 'T' open; 'I' idle and 'E' failed are not). When none is, the answer waits for
   * every record owed by the block that ended (as `beforeAnswer`). From an open one on, answers of
   * statements that stay in the block are not held.
   */
  beforeReady(blockOpen: boolean): Promise<void> | undefined {
    if (!blockOpen) {
      this.#blockOpen = false;
      return this.#untilDurable(this.#owedUpTo);
    }
    this.#blockOpen = true;
    return undefined;
  }

  #untilDurable(seq: number): Promise<void> | undefined {
    // Records up to #durableUpTo are known durable: an answer held for one of them was released.
    if (seq <= this.#durableUpTo) return undefined;
    const wait = this.#audit.beforeAnswer(seq);
    if (!wait) {
      this.#durableUpTo = seq;
      return undefined;
    }
    return wait.then(() => {
      if (seq > this.#durableUpTo) this.#durableUpTo = seq;
    });
  }

  /** @internal Set by `Enforcer.openSession` once the recording is open. */
  attachRecording(r: SessionRecording | undefined): void {
    this.#recording = r;
  }

  /** The identity's token has expired: nothing more may run (end the session, `close` with the reason). */
  expired(): boolean {
    return Date.now() >= this.#expiresAt;
  }

  /**
   * The policy's decision on each item, without acting on it (no audit, no approval): for a front
   * door that must know the verdict before it can build the request (PostgreSQL collects a long
   * function call whole only when it needs approval). Pass the result to `decide`.
   */
  evaluate(req: EnforcementRequest<T>): Decision[] {
    return decideItems(req.items, this.#svc.policy(), this, req.text, req.unmaskable);
  }

  /** @internal decideItems reads these. */
  get sessionId(): string {
    return this.id;
  }

  /**
   * Decide a request and act on the decision: resolve an approval, check that masks can be
   * guaranteed, write the decision records (before anything runs: a failed write refuses), record
   * refusals. Resolves to the outcome to apply; never rejects but on a broken invariant.
   */
  decide(req: EnforcementRequest<T>, decisions?: readonly Decision[]): Promise<Outcome<T>> {
    if (decisions === undefined) {
      // Cost facts first, when a rule that may apply reads them (the upstream's EXPLAIN).
      const wanted = this.#estimatesWanted(req);
      if (wanted) return this.#estimated(req, wanted).then((actions) => this.#decided(req, decideItems(req.items, this.#svc.policy(), this, req.text, req.unmaskable, actions), actions));
      decisions = this.evaluate(req);
    }
    return this.#decided(req, decisions, undefined);
  }

  #decided(req: EnforcementRequest<T>, decisions: readonly Decision[], actions: readonly Action[] | undefined): Promise<Outcome<T>> {
    const at = decidingIndex(decisions);
    if (at >= 0 && decisions[at]!.verdict === 'approve' && !perExecution(req, decisions)) {
      const d = decisions[at]!;
      return this.#held(d, (onHeld) => this.#enforce(req, decisions, at, onHeld, actions));
    }
    return this.#enforce(req, decisions, at, noop, actions);
  }

  /**
   * A `per_execution` rate permit is about to run once more: count it against its `limit rate`
   * budgets. Undefined when it may run; otherwise the refusal (audited as a decision of its own).
   */
  async admit(p: Permit<T>): Promise<Refuse<T> | undefined> {
    const rate = p.limits.rate;
    if (rate.length === 0) return undefined;
    const verdict = await this.#admit(rate);
    if (verdict.ok) return undefined;
    const { text, audit } = rateRefusal(verdict);
    try {
      this.wrote(await this.#audit.append(this.#records.decision(p.action, p.decision, 'blocked', p.approvalId, audit)));
    } catch {
      return refusal(p.item, { message: AUDIT_FAILED, sqlstate: '58000' }, 'audit_failed', [], p.approvalId, false);
    }
    this.#recordRefused({ started: performance.now(), protocol: p.protocol, paramTypes: p.paramTypes }, p.item, p.decision, 'blocked', p.approvalId, text.message);
    return refusal(p.item, text, 'rate_limited', [verdict.rule], p.approvalId, false);
  }

  /** Admit under these rate limits; a missing or failing store refuses (fail closed). Never rejects. */
  async #admit(rate: readonly RateLimit[]): Promise<RateVerdict | { ok: false; error: string; rule: string }> {
    const limiter = this.#svc.rateLimiter;
    if (!limiter) return { ok: false, error: 'no rate-limit store is configured', rule: rate[0]!.rule };
    try {
      return await limiter.admit(this.identity.sub, rate);
    } catch (e) {
      return { ok: false, error: `the rate-limit store failed: ${(e as Error).message}`, rule: rate[0]!.rule };
    }
  }

  /** Per item: whether a rule (of the active or the shadow set) that may apply reads `sql.estimate`; undefined when none does. */
  #estimatesWanted(req: EnforcementRequest<T>): boolean[] | undefined {
    const policy = this.#svc.policy();
    const shadow = this.#svc.shadowPolicy?.();
    if (!policy?.needsEstimate && !shadow?.needsEstimate) return undefined;
    let wanted: boolean[] | undefined;
    const context = new LazyContext(this.clientAddr, this.id, Date.now());
    for (let i = 0; i < req.items.length; i++) {
      const action = req.items[i]!.action;
      if (action.type !== 'sql' || req.items[i]!.refused) continue;
      const r: Request = { identity: this.identity, resource: this.resource, action, context };
      if (policy?.needsEstimate?.(r) || shadow?.needsEstimate?.(r)) (wanted ??= new Array<boolean>(req.items.length).fill(false))[i] = true;
    }
    return wanted;
  }

  /** The items' actions, those wanted with the upstream's estimate (or why there is none). Never rejects. */
  async #estimated(req: EnforcementRequest<T>, wanted: readonly boolean[]): Promise<Action[]> {
    const estimator = this.#svc.estimator;
    return Promise.all(req.items.map(async (item, i) => {
      const action = item.action;
      if (!wanted[i] || action.type !== 'sql') return action;
      let e: Awaited<ReturnType<NonNullable<typeof estimator>['estimate']>>;
      if (!estimator) e = { error: 'the gateway has no estimator for this resource' };
      else {
        try {
          e = await estimator.estimate(this.resource, action, this.#hooks.searchPath?.(item));
        } catch (err) {
          e = { error: `EXPLAIN failed: ${(err as Error).message}` };
        }
      }
      return withEstimate(action, e);
    }));
  }

  /** The shadow set's disagreement on each item (undefined: no shadow set, or it agreed on all). */
  #shadow(req: EnforcementRequest<T>, decisions: readonly Decision[], actions: readonly Action[] | undefined): (ShadowRecord | undefined)[] | undefined {
    const shadow = this.#svc.shadowPolicy?.();
    if (!shadow) return undefined;
    let out: (ShadowRecord | undefined)[] | undefined;
    try {
      const theirs = decideItems(req.items, shadow, this, req.text, req.unmaskable, actions);
      const metrics = this.#svc.metrics;
      for (let i = 0; i < decisions.length; i++) {
        const d = shadowDisagreement(decisions[i]!, theirs[i]!, shadow.hash);
        metrics?.shadowDecision?.(decisions[i]!.verdict, d?.verdict);
        if (d) (out ??= new Array<ShadowRecord | undefined>(decisions.length))[i] = d;
      }
    } catch {
      // The shadow set never changes what is enforced.
    }
    return out;
  }

  /**
   * An execution of a permit that `needsApproval` (`per_execution`): an approval of its own for
   * these values, audited as a decision of its own. Forward carries a permit for this execution only.
   */
  approve(permit: Permit<T>, ex: Execution): Promise<Outcome<T>> {
    return this.#held(permit.decision, (onHeld) => this.#approveExecution(permit, ex, onHeld));
  }

  /** Stop the approval wait in progress, if any (a client's cancel): the held request is refused. */
  cancel(): void {
    this.#approvals.waits.current?.abort();
  }

  /**
   * A forwarded action ended: its result record (linked to its decision record; not waited for:
   * it already ran, there is nothing left to refuse) and its recording event.
   */
  complete(p: Permit<T>, c: Completion): void {
    void this.#audit.append(this.#records.result(p.action, p.decision.verdict, c.outcome, c.rows, c.durationMs, p.auditSeq, c.error), { deferred: true }).catch(noop);
    statementEvent(this.#recording, {
      text: p.text,
      protocol: p.protocol,
      paramTypes: p.paramTypes,
      action: p.action,
      decision: p.decision,
      approvalId: p.approvalId,
      outcome: c.outcome,
      error: c.error,
      rows: c.rows,
      durationMs: c.durationMs,
      maskedColumns: c.maskedColumns,
      ssh: c.ssh,
    });
  }

  /**
   * An asciicast v2 recording of one forwarded channel's output (what the client was sent, already
   * masked), or undefined when output is not recorded (`recording.results` off). Name its file in
   * the completion (`ssh.cast`).
   */
  cast(start: ChannelCastStart): ChannelCast | undefined {
    return this.#recording?.cast?.(start);
  }

  /**
   * A request the front door refused before it could be classified (a name it never saw decided,
   * a message too large to read): its decision record, written before the client hears of the
   * refusal. Never rejects (a failed write still refuses).
   */
  refuse(message: string): Promise<void> {
    this.#svc.metrics?.decision('block', 0);
    return this.#audit.append(this.#records.refusedRequest(message)).then(noop, noop);
  }

  /**
   * The session's transaction ended (committed or rolled back): masks follow the committed catalog
   * again. The front door calls it whenever it learns the session is outside a transaction.
   */
  transactionEnded(): void {
    if (!this.#schemaChangedInTx) return;
    this.#schemaChangedInTx = false;
    this.#svc.masker?.invalidate?.(this.resource.name);
  }

  /** The plan for one result of a masked permit, once its columns are known. Never rejects. */
  async planMasks(p: Permit<T>, fields: ResultField[]): Promise<MaskPlan> {
    const masker = this.#svc.masker;
    if (!masker) return { ok: false, reason: 'masking is required but no masker is configured' };
    try {
      return await masker.plan({ resource: this.resource, statementText: p.item.lineageText ?? p.text, fields, masks: p.decision.masks, ...this.#relationSchemas(p.item) });
    } catch (e) {
      return { ok: false, reason: `masking failed: ${(e as Error).message}` };
    }
  }

  /**
   * How text the client gets under these masks may reach it (the server's error or notice about a
   * masked statement, whose data flow `statementText` is; another session's notification): relayed,
   * masked, or withheld. Never rejects (a failure withholds).
   */
  async textPolicy(masks: Masks, statementText: string): Promise<ErrorTextPolicy> {
    const masker = this.#svc.masker;
    if (!masker?.errorText) return { mode: 'withhold', reason: 'the masker cannot check error text' };
    try {
      return await masker.errorText({ resource: this.resource, statementText, masks });
    } catch (e) {
      return { mode: 'withhold', reason: `the error text could not be checked (${(e as Error).message})` };
    }
  }

  /**
   * Every mask the policy in force could apply to this session, whatever it runs (for what reaches
   * the client outside any request's answer: PostgreSQL's notifications); undefined when that
   * cannot be told (no policy, one without explanations). Computed once per policy.
   */
  sessionMasks(): Masks | undefined {
    const p = this.#svc.policy();
    if (!this.#sessionMasks || this.#sessionMasks.policy !== p) this.#sessionMasks = { policy: p, masks: sessionMasks(p, this) };
    return this.#sessionMasks.masks;
  }

  /**
   * The session ends: its `session_end` record (with `end`'s outcome and reason when the gateway
   * ended it), the recording closed, any approval wait stopped. Idempotent.
   */
  close(end?: { outcome: 'refused'; reason: string }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ended.abort();
    this.#unwatchAudit?.();
    this.#svc.metrics?.sessionClosed();
    const rec = this.#records.base('session_end');
    if (end) {
      rec.outcome = end.outcome;
      rec.reason = end.reason;
      void this.#audit.append(rec).catch(noop);
    } else void this.#audit.append(rec, { deferred: true }).catch(noop);
    void this.#recording?.close(new Date().toISOString()).catch(noop);
  }

  get closed(): boolean {
    return this.#closed;
  }

  // -----------------------------------------------------------------------------------------

  #relationSchemas(item: T): { relationSchemas?: NonNullable<ReturnType<NonNullable<SessionHooks<T>['relationSchemas']>>> } {
    const map = this.#hooks.relationSchemas?.(item);
    return map ? { relationSchemas: map } : {};
  }

  /**
   * Hold mode: resolves with a Hold as soon as the approval is recorded (or with the final outcome
   * if it never was), the Hold's `outcome` carrying the rest.
   */
  #held(d: Decision, run: (onHeld: (rec: ApprovalRecord) => void) => Promise<Forward<T> | Refuse<T>>): Promise<Outcome<T>> {
    if (this.approvalMode !== 'hold') return run(noop);
    return new Promise<Outcome<T>>((resolve, reject) => {
      let settled = false;
      const box: { outcome?: Promise<Forward<T> | Refuse<T>> } = {};
      const onHeld = (rec: ApprovalRecord): void => {
        if (settled) return;
        settled = true;
        const rules = d.reasons.map((r) => r.id);
        const hold: Hold<T> = {
          kind: 'hold',
          approvalId: rec.id,
          approvers: d.approvers,
          rules,
          message: `hoop: waiting for approval ${rec.id} from ${d.approvers.join(', ')} (rule ${rules.join(', ')})`,
          detail: `approval id: ${rec.id}`,
          // Assigned before onHeld can run: the approval is recorded asynchronously.
          outcome: box.outcome!,
          cancel: () => this.cancel(),
        };
        resolve(hold);
      };
      box.outcome = run(onHeld);
      box.outcome.then(
        (o) => {
          if (!settled) {
            settled = true;
            resolve(o);
          }
        },
        (e: unknown) => {
          if (!settled) {
            settled = true;
            reject(e);
          }
        },
      );
    });
  }

  async #enforce(req: EnforcementRequest<T>, decisions: readonly Decision[], at: number, onHeld: (rec: ApprovalRecord) => void, actions: readonly Action[] | undefined): Promise<Forward<T> | Refuse<T>> {
    const items = req.items;
    const shadow = this.#shadow(req, decisions, actions);
    const actionOf = (i: number): Action => actions?.[i] ?? items[i]!.action;
    const perExec = perExecution(req, decisions);
    let approvalId: string | undefined;
    let refusedAt = -1;
    let text: RefusalText | undefined;
    let outcome: AuditOutcome = 'executed';
    let reason: RefuseReason = 'blocked';
    /** The token expired while the request was held: refused, and the session ends. */
    let expiredWhileHeld = false;
    /** The audit reason of a rate refusal. */
    let rateReason: string | undefined;
    let rateRule: string | undefined;

    if (at >= 0) {
      const d = decisions[at]!;
      if (d.verdict === 'block') {
        refusedAt = at;
        text = this.#refusalText(items[at]!, refusalOf(items[at]!.action, d));
        outcome = 'blocked';
      } else if (!perExec) {
        const a: ApprovalResult = await resolveApproval(this.#approvals, { action: items[at]!.action, decision: d, text: req.text, params: req.params, onHeld });
        approvalId = a.id;
        if (!a.ok) {
          refusedAt = at;
          text = { message: a.message, ...(a.detail ? { detail: a.detail } : {}), ...(a.sqlstate ? { sqlstate: a.sqlstate } : {}) };
          outcome = a.tokenExpired ? 'refused' : a.pending ? 'pending_approval' : 'blocked';
          reason = approvalReason(a, this.approvalMode);
          expiredWhileHeld = a.tokenExpired === true;
        }
      }
    }
    if (refusedAt < 0) {
      let guard = this.#maskGuard(items, decisions);
      if (guard instanceof Promise) guard = await guard;
      if (guard) {
        refusedAt = guard.at;
        text = guard.text;
        outcome = 'blocked';
        reason = 'masks';
      }
    }
    // `limit rate`: counted as it is decided (unless the front door counts each execution). The
    // statements of one message are admitted together, each one a request under its limits: all
    // of them or none, so a message refused at its third statement spends nothing.
    if (refusedAt < 0 && req.rate !== 'per_execution') {
      let rate: RateLimit[] | readonly RateLimit[] | undefined;
      for (let i = 0; i < items.length; i++) {
        const own = decisions[i]!.limits?.rate;
        if (!own || own.length === 0) continue;
        rate = rate === undefined ? own : [...rate, ...own];
      }
      const verdict = rate === undefined ? undefined : await this.#admit(rate);
      if (verdict !== undefined && !verdict.ok) {
        // The refusal is the first statement under the spent budget's rule.
        const at = decisions.findIndex((d) => d.limits?.rate?.some((l) => l.rule === verdict.rule));
        refusedAt = at < 0 ? 0 : at;
        ({ text, audit: rateReason } = rateRefusal(verdict));
        rateRule = verdict.rule;
        outcome = 'blocked';
        reason = 'rate_limited';
      }
    }

    // Audit every decision before anything is forwarded; a failed write means nothing runs. A
    // refusal or an approval is answered only once durable; a forwarded action's record is written
    // first, and the answer of one that can change state waits for its fsync (`beforeAnswer`).
    const refusing = refusedAt >= 0;
    const durableFirst = refusing || approvalId !== undefined;
    const pendingNote = expiredWhileHeld ? TOKEN_EXPIRED_WHILE_HELD : undefined;
    let seqs: number[];
    try {
      if (items.length === 1) {
        const rec = !refusing && perExec ? this.#records.decision(actionOf(0), decisions[0]!, 'pending_approval', undefined, APPROVAL_PER_EXECUTION) : this.#records.decision(actionOf(0), decisions[0]!, outcome, approvalId, rateReason ?? pendingNote);
        if (shadow?.[0]) rec.shadow = shadow[0];
        seqs = [await this.#write(rec, durableFirst, items[0]!.action)];
      } else {
        const writes: Promise<number>[] = [];
        for (let i = 0; i < items.length; i++) {
          const other = refusing && i !== refusedAt;
          const rec = this.#records.decision(actionOf(i), decisions[i]!, other ? 'blocked' : outcome, approvalId, other ? 'another statement in the same message was refused' : rateReason ?? pendingNote);
          if (shadow?.[i]) rec.shadow = shadow[i];
          writes.push(this.#write(rec, durableFirst, items[i]!.action));
        }
        seqs = await Promise.all(writes);
      }
    } catch {
      for (let i = 0; i < items.length; i++) this.#recordRefused(req, items[i]!, decisions[i]!, 'failed', approvalId, 'audit write failed');
      return refusal(items[refusedAt] ?? items[0], { message: AUDIT_FAILED, sqlstate: '58000' }, 'audit_failed', [], approvalId, false);
    }
    const metrics = this.#svc.metrics;
    if (metrics) {
      const latency = (performance.now() - req.started) / 1000;
      for (const d of decisions) metrics.decision(d.verdict, latency);
    }
    if (refusing) {
      for (let i = 0; i < items.length; i++) {
        const it = i === refusedAt;
        this.#recordRefused(req, items[i]!, decisions[i]!, it ? outcome : 'blocked', approvalId, it ? text!.message : 'another statement in the same message was refused');
      }
      return refusal(items[refusedAt], text!, reason, rateRule !== undefined ? [rateRule] : decisions[refusedAt]!.reasons.map((r) => r.id), approvalId, expiredWhileHeld);
    }
    // Statements that run may change the schema: masks re-read the catalog once their transaction ends.
    for (const item of items) if (changesSchema(item.action)) this.#schemaChangedInTx = true;
    const permits = new Array<Permit<T>>(items.length);
    for (let i = 0; i < items.length; i++) permits[i] = this.#permit(req, items[i]!, actionOf(i), decisions[i]!, approvalId, seqs[i]!, !durableFirst && canChangeState(items[i]!.action), perExec);
    return { kind: 'forward', permits, approvalId };
  }

  async #approveExecution(p: Permit<T>, ex: Execution, onHeld: (rec: ApprovalRecord) => void): Promise<Forward<T> | Refuse<T>> {
    const a = await resolveApproval(this.#approvals, { action: p.action, decision: p.decision, text: p.text, params: ex.params, onHeld });
    const outcome: AuditOutcome = a.ok ? 'executed' : a.tokenExpired ? 'refused' : a.pending ? 'pending_approval' : 'blocked';
    let seq: number | undefined;
    try {
      seq = await this.#audit.append(this.#records.decision(p.action, p.decision, outcome, a.id, !a.ok && a.tokenExpired ? TOKEN_EXPIRED_WHILE_HELD : undefined));
      this.wrote(seq);
    } catch {
      seq = undefined;
    }
    if (a.ok && seq !== undefined) {
      const approved: Permit<T> = { ...p, approvalId: a.id, auditSeq: seq, needsApproval: false };
      return { kind: 'forward', permits: [approved], approvalId: a.id };
    }
    const rules = p.decision.reasons.map((r) => r.id);
    const req = { started: ex.started, protocol: p.protocol, paramTypes: p.paramTypes };
    if (a.ok) {
      this.#recordRefused(req, p.item, p.decision, 'failed', a.id, AUDIT_FAILED);
      return refusal(p.item, { message: AUDIT_FAILED, sqlstate: '58000' }, 'audit_failed', rules, a.id, false);
    }
    this.#recordRefused(req, p.item, p.decision, outcome, a.id, a.message);
    const text: RefusalText = { message: a.message, ...(a.detail ? { detail: a.detail } : {}), sqlstate: a.sqlstate ?? '42501' };
    return refusal(p.item, text, approvalReason(a, this.approvalMode), rules, a.id, a.tokenExpired === true);
  }

  /**
   * Masks need a masker and a data flow the masker can follow. Column masks follow lineage through
   * the catalog, which the masker reads on its own connection: it cannot see a schema change this
   * session made in a transaction that is still open (nor one earlier in the same request), so such
   * a statement is refused until that transaction ends.
   */
  #maskGuard(items: readonly T[], decisions: readonly Decision[]): { at: number; text: RefusalText } | undefined | Promise<{ at: number; text: RefusalText } | undefined> {
    let schemaChanged = this.#schemaChangedInTx;
    let anyMasks = false;
    for (let i = 0; i < items.length; i++) {
      const a = items[i]!.action;
      const d = decisions[i]!;
      if (schemaChanged && d.masks.columns.length > 0 && a.type === 'sql' && RETURNS_DATA.has(a.kind)) {
        return {
          at: i,
          text: {
            message: 'hoop: blocked: column masks cannot be guaranteed after a schema change in the same transaction',
            detail: 'the gateway resolves masked columns through the committed catalog; commit or roll back the transaction that changed the schema, then run this statement again',
          },
        };
      }
      schemaChanged ||= changesSchema(a);
      anyMasks ||= hasMasks(d);
    }
    return anyMasks ? this.#precheck(items, decisions) : undefined;
  }

  async #precheck(items: readonly T[], decisions: readonly Decision[]): Promise<{ at: number; text: RefusalText } | undefined> {
    const masker = this.#svc.masker;
    for (let i = 0; i < items.length; i++) {
      const d = decisions[i]!;
      if (!hasMasks(d)) continue;
      const item = items[i]!;
      let pre: { ok: true } | { ok: false; reason: string };
      // Content detectors on a command's output are the front door's to apply (proxy/ssh streams them): no result masker needed.
      if (item.action.type !== 'sql') pre = d.masks.columns.length > 0 ? { ok: false, reason: 'column masks apply to SQL results only' } : { ok: true };
      else if (!masker) pre = { ok: false, reason: 'masking is required but no masker is configured' };
      else {
        try {
          pre = await masker.precheck({ resource: this.resource, statementText: item.lineageText ?? item.action.text, masks: d.masks, ...this.#relationSchemas(item) });
        } catch (e) {
          pre = { ok: false, reason: `masking precheck failed: ${(e as Error).message}` };
        }
      }
      if (!pre.ok) return { at: i, text: { message: `hoop: blocked: ${pre.reason}`, detail: 'the gateway cannot guarantee the masks for this statement' } };
    }
    return undefined;
  }

  #refusalText(item: T, base: RefusalText): RefusalText {
    const hook = this.#hooks.refusalText;
    return hook ? hook(item, base) : base;
  }

  /** A decision record: durable before it resolves (a refusal, an approval), or written before its action is forwarded. */
  async #write(rec: AuditRecordInput, durable: boolean, action: Action): Promise<number> {
    const seq = durable ? await this.#audit.append(rec) : await this.#audit.beforeForward(rec, { changes: canChangeState(action) });
    this.wrote(seq);
    return seq;
  }

  #permit(req: EnforcementRequest<T>, item: T, action: Action, d: Decision, approvalId: string | undefined, seq: number, answerAfter: boolean, needsApproval: boolean): Permit<T> {
    const masked = hasMasks(d);
    return {
      item,
      action,
      decision: d,
      masks: d.masks,
      masked,
      limits: limitsOf(d),
      approvalId,
      auditSeq: seq,
      answerAfter: answerAfter ? seq : undefined,
      text: req.recordedText ?? item.action.text,
      protocol: req.protocol,
      paramTypes: req.paramTypes,
      needsApproval,
    };
  }

  /** The recording of an action that never ran (named by its own text). */
  #recordRefused(req: Pick<EnforcementRequest<T>, 'started' | 'protocol' | 'paramTypes'>, item: T, d: Decision, outcome: AuditOutcome, approvalId: string | undefined, error: string): void {
    statementEvent(this.#recording, {
      text: item.action.text,
      protocol: req.protocol,
      paramTypes: req.paramTypes,
      action: item.action,
      decision: d,
      approvalId,
      outcome,
      error,
      rows: undefined,
      durationMs: performance.now() - req.started,
      maskedColumns: undefined,
    });
  }
}

function perExecution(req: EnforcementRequest, decisions: readonly Decision[]): boolean {
  return req.approval === 'per_execution' && decisions.length === 1 && decisions[0]!.verdict === 'approve';
}

function approvalReason(a: Extract<ApprovalResult, { ok: false }>, mode: ApprovalMode): RefuseReason {
  if (a.tokenExpired) return 'token_expired';
  return mode === 'return' && a.pending ? 'approval_required' : 'approval';
}

/** The refusal of a request over its rate budget (SQLSTATE 53400, naming the rule and when to retry). */
function rateRefusal(v: Exclude<RateVerdict, { ok: true }> | { ok: false; error: string; rule: string }): { text: RefusalText; audit: string } {
  if ('error' in v) {
    return { text: { message: `hoop: blocked: rule ${v.rule} limits the rate of requests and ${v.error}`, sqlstate: '53400' }, audit: `rate limit: ${v.error}` };
  }
  const retry = formatRetry(v.retryAfterMs);
  return {
    text: {
      message: `hoop: rate limit exceeded: rule ${v.rule} allows ${v.count} request${v.count === 1 ? '' : 's'} per ${formatDurationMs(v.windowMs)}; retry in ${retry}`,
      detail: `limit rate ${v.count} per ${formatDurationMs(v.windowMs)} (rule ${v.rule}), counted per identity`,
      hint: `retry after ${retry}`,
      sqlstate: '53400',
    },
    audit: `rate limit: rule ${v.rule} (${v.count} per ${formatDurationMs(v.windowMs)}); retry in ${retry}`,
  };
}

/** `0.6s`, `12s`, `3m 20s`. */
function formatRetry(ms: number): string {
  if (ms < 60_000) return `${Math.max(0.001, Math.ceil(ms) / 1000).toString().replace(/(\.\d{3})\d+$/, '$1')}s`;
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}m ${s % 60}s`;
}

function refusal<T extends RequestItem>(item: T | undefined, text: RefusalText, reason: RefuseReason, rules: readonly string[], approvalId: string | undefined, endSession: boolean): Refuse<T> {
  return { kind: 'refuse', reason, rules, item, approvalId, endSession, ...text };
}
