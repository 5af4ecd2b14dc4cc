// What every approval store enforces the same way (the file store and the PostgreSQL store):
// the binding key, id generation, and who may decide.

import { createHash, randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Identity } from '../../stdlib/facts.ts';
import type { ApprovalRecord, ApprovalRequest, ApprovalService, ApprovalStatus } from '../ports.ts';

/** An approval store: the port plus what the gateway process needs to run it. */
export interface ApprovalStore extends ApprovalService {
  consume(id: string): Promise<boolean>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  lasting(req: ApprovalRequest): Promise<ApprovalRecord | undefined>;
  /**
   * Calls `listener` whenever an approval is requested, decided or consumed, here or in another
   * process sharing the store (`local` tells which), until the returned function is called.
   * Expiry is not an event: it follows from `expires_at`.
   */
  subscribe(listener: (change: ApprovalChange) => void): () => void;
  close(): Promise<void>;
}

export interface ApprovalChange {
  id: string;
  event: 'requested' | 'decided' | 'consumed';
  /** This process made the change (the others learn of it from the store). */
  local: boolean;
}

/** The subscribers of a store's change feed; a listener that throws does not stop the others. */
export class ChangeFeed {
  private readonly listeners = new Set<(c: ApprovalChange) => void>();

  constructor(private readonly onFirst: () => void = () => undefined, private readonly onLast: () => void = () => undefined) {}

  get size(): number {
    return this.listeners.size;
  }

  subscribe(listener: (c: ApprovalChange) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.onFirst();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.onLast();
    };
  }

  emit(c: ApprovalChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(c);
      } catch {
        /* a subscriber's own failure */
      }
    }
  }
}

/**
 * An approval binds one identity `sub`, one resource and one exact statement text, and in the
 * extended protocol the exact parameter values of one Bind (their digest).
 */
export function approvalKey(req: ApprovalRequest): string {
  const params = req.paramsDigest !== undefined ? `\0params:${req.paramsDigest}` : '';
  return createHash('sha256').update(`${req.identity.sub}\0${req.resource.kind}/${req.resource.name}\0${req.statement}${params}`).digest('hex');
}

/** 120 random bits: unguessable, short enough to paste. */
export function newApprovalId(): string {
  return `apr_${randomBytes(15).toString('base64url')}`;
}

export function newNonce(): string {
  return randomBytes(8).toString('hex');
}

export type DecisionCheck = { ok: true } | { ok: false; code: string; reason: string };

/** Whether `approver` may decide approval `a` (whose status is already computed against the clock). */
export function checkDecision(
  a: { id: string; sub: string; actor?: string; actors?: string[]; approvers: string[]; status: ApprovalStatus; expires_at: string; decided_by?: string; approved_by?: string[] },
  approver: Identity,
): DecisionCheck {
  if (isRequester(a, approver)) {
    return { ok: false, code: 'requester_cannot_approve', reason: 'the requester (or anyone it acts for) cannot decide its own approval' };
  }
  // A quorum counts distinct approvers: the same one twice is once.
  if (a.status === 'pending' && a.approved_by?.includes(approver.sub)) {
    return { ok: false, code: 'already_approved', reason: `you already approved ${a.id}; it needs another approver` };
  }
  if (!approver.groups.some((g) => a.approvers.includes(g))) {
    return { ok: false, code: 'not_an_approver', reason: `only members of ${a.approvers.map((g) => `"${g}"`).join(', ')} can decide this approval` };
  }
  if (a.status === 'expired') return { ok: false, code: 'expired', reason: `approval ${a.id} expired at ${a.expires_at}` };
  if (a.status !== 'pending') return { ok: false, code: 'already_decided', reason: `approval ${a.id} is already ${a.status}${a.decided_by ? ` (by ${a.decided_by})` : ''}` };
  return { ok: true };
}

/** Whether `who` is the requester of `a` or anyone in the requester's RFC 8693 chain. */
export function isRequester(a: { sub: string; actor?: string; actors?: string[] }, who: Identity): boolean {
  return who.sub === a.sub || who.sub === a.actor || (a.actors ?? []).includes(who.sub);
}

/** The chain an approval records: the whole `act` chain when it is longer than the one actor. */
export function requesterActors(identity: Identity): string[] | undefined {
  return identity.actors && identity.actors.length > 1 ? [...identity.actors] : undefined;
}

/** Lasting approvals match on who, where and the statement's fingerprint (not its exact text). */
export function lastingKey(req: ApprovalRequest): string {
  return createHash('sha256').update(`lasting\0${req.identity.sub}\0${req.resource.kind}/${req.resource.name}\0${req.fingerprint}`).digest('hex');
}

/** What a stored status means now: a pending or approved approval past its expiry is expired. */
export function effectiveStatus(status: ApprovalStatus, expiresAtMs: number, nowMs: number): ApprovalStatus {
  return (status === 'pending' || status === 'approved') && nowMs > expiresAtMs ? 'expired' : status;
}

export interface SettleWait<T> {
  id: string;
  /** Emits the approval id when the store learns something about it (a write, a NOTIFY, a poll). */
  changes: EventEmitter;
  expiresAtMs: number;
  now: () => number;
  /** The store's own look at the approval: calls `settle` once it is no longer pending. */
  check: (settle: () => void) => void;
  /** What the wait resolves with, read when it settles. */
  result: () => T;
  signal?: AbortSignal;
  /** The store's backstop poll, kept running while this wait is. */
  poll: PollWhileWaiting;
}

/**
 * Runs `tick` every `ms` while at least one wait is in progress: a backstop for wake-ups that never
 * came (another process's write, a lost NOTIFY). Nobody waiting, nothing runs.
 */
export class PollWhileWaiting {
  private timer: NodeJS.Timeout | undefined;
  private waiters = 0;

  constructor(
    private readonly ms: number,
    private readonly tick: () => void,
  ) {}

  begin(): void {
    this.waiters += 1;
    if (this.timer) return;
    this.timer = setInterval(this.tick, this.ms);
    this.timer.unref();
  }

  end(): void {
    this.waiters -= 1;
    if (this.waiters === 0) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * The waiting half of `ApprovalService.wait`, shared by the stores: re-checks whenever `changes`
 * names the approval and once at its expiry (which nothing writes), and gives up on abort. Always
 * resolves, with the approval as it then stands; the caller decides what pending means.
 */
export function waitUntilSettled<T>(w: SettleWait<T>): Promise<T> {
  return new Promise<T>((resolve) => {
    w.poll.begin();
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      w.changes.removeListener(w.id, check);
      clearTimeout(timer);
      w.signal?.removeEventListener('abort', done);
      w.poll.end();
      resolve(w.result());
    };
    const check = (): void => {
      if (!settled) w.check(done);
    };
    w.changes.on(w.id, check);
    const timer = setTimeout(check, Math.min(2 ** 31 - 1, Math.max(0, w.expiresAtMs - w.now()) + 5));
    if (w.signal) {
      if (w.signal.aborted) return done();
      w.signal.addEventListener('abort', done, { once: true });
    }
    check(); // a change between the caller's first read and listening
  });
}
