// Approvals on the state directory: an append-only, fsync'd event log (`approvals.jsonl`) from
// which the state is rebuilt on start, so approvals survive restarts.
//
// Events: `requested` (a new approval), `decided` (approve/deny), `consumed` (the approved
// statement ran: single use). Replay is deterministic and the FIRST valid event wins: a second
// decision on the same approval, or a second consumption, is ignored. Every write is followed by
// re-reading the log and checking that our event was the one that took effect, so two processes
// (the gateway and a second admin process) deciding at once cannot both win.
//
// Binding: an approval is for one identity `sub` on one resource and one exact statement text.
// Ids are 120 random bits (unguessable). The approver must be in one of the approver groups and
// must be neither the requester nor the human the requester acts for (`actor`).
//
// Expiry: a pending approval expires `within` after it was requested; an approved one must be
// used within `within` after the approval (so a late approval still gives the agent time to re-send).

import { EventEmitter } from 'node:events';
import { mkdirSync, openSync, closeSync, fstatSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from '../../stdlib/facts.ts';
import type { ApprovalDetails, ApprovalParam, ApprovalRecord, ApprovalRequest, ApprovalService, ApprovalStatus } from '../ports.ts';
import { approvalKey, lastingKey, ChangeFeed, checkDecision, requesterActors, effectiveStatus, newApprovalId, newNonce, PollWhileWaiting, waitUntilSettled, type ApprovalStore } from './rules.ts';

type Event =
  | {
      ev: 'requested';
      id: string;
      key: string;
      sub: string;
      actor?: string;
      actors?: string[];
      resource: string;
      statement: string;
      params?: ApprovalParam[];
      details?: ApprovalDetails;
      fingerprint: string;
      approvers: string[];
      session_id: string;
      within_ms: number;
      quorum?: number;
      lasting_ms?: number;
      lasting_key?: string;
      created_at: string;
      expires_at: string;
    }
  | { ev: 'decided'; id: string; nonce: string; decision: 'approve' | 'deny'; by: string; reason?: string; at: string }
  | { ev: 'consumed'; id: string; nonce: string; at: string };

interface State {
  id: string;
  key: string;
  sub: string;
  actor?: string;
  actors?: string[];
  resource: string;
  statement: string;
  params?: ApprovalParam[];
  details?: ApprovalDetails;
  fingerprint: string;
  approvers: string[];
  session_id: string;
  withinMs: number;
  quorum: number;
  /** Distinct approvers so far (a quorum needs `quorum` of them). */
  approvedBy: string[];
  lastingMs?: number;
  lastingKey?: string;
  /** epoch ms, once approved (lasting approvals). */
  lastingUntil?: number;
  created_at: string;
  expiresAt: number;
  /** pending | approved | denied | consumed; `expired` is computed from the clock. */
  status: Exclude<ApprovalStatus, 'expired'>;
  decided_by?: string;
  decided_at?: string;
  reason?: string;
  /** Nonce of the event that last changed the status. */
  nonce?: string;
}

export type DecideResult = Awaited<ReturnType<ApprovalService['decide']>>;

/** The file store (kept as a name for callers written before the PostgreSQL store). */
export type FileApprovalService = ApprovalStore;

export interface ApprovalOptions {
  now?: () => number;
  /** How often waiting statements re-read the log for decisions made by another process (ms). */
  pollMs?: number;
}

export async function openApprovalService(stateDir: string, opts: ApprovalOptions = {}): Promise<FileApprovalService> {
  const now = opts.now ?? Date.now;
  const pollMs = opts.pollMs ?? 250;
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, 'approvals.jsonl');
  const fh: FileHandle = await open(file, 'a', 0o640);
  const byId = new Map<string, State>();
  const byKey = new Map<string, Set<string>>();
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  let offset = 0;
  let partial = '';
  let lock: Promise<unknown> = Promise.resolve();
  let closed = false;
  /** Ids and nonces of events this process wrote and has not yet replayed. */
  const mine = new Set<string>();

  /** Applies events appended since the last read (by us or by another process). */
  function refresh(): void {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= offset) return;
      const buf = Buffer.alloc(size - offset);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      offset += got;
      const text = partial + buf.subarray(0, got).toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        let ev: Event;
        try {
          ev = JSON.parse(line) as Event;
        } catch {
          continue; // a torn line from a crash: never acknowledged, so never acted on
        }
        apply(ev);
      }
    } finally {
      closeSync(fd);
    }
  }

  function apply(ev: Event): void {
    if (ev.ev === 'requested') {
      if (byId.has(ev.id)) return;
      byId.set(ev.id, {
        id: ev.id,
        key: ev.key,
        sub: ev.sub,
        actor: ev.actor,
        ...(ev.actors ? { actors: ev.actors } : {}),
        resource: ev.resource,
        statement: ev.statement,
        ...(ev.params ? { params: ev.params } : {}),
        ...(ev.details ? { details: ev.details } : {}),
        fingerprint: ev.fingerprint,
        approvers: ev.approvers,
        session_id: ev.session_id,
        withinMs: ev.within_ms,
        quorum: ev.quorum ?? 1,
        approvedBy: [],
        ...(ev.lasting_ms !== undefined && ev.lasting_key ? { lastingMs: ev.lasting_ms, lastingKey: ev.lasting_key } : {}),
        created_at: ev.created_at,
        expiresAt: Date.parse(ev.expires_at),
        status: 'pending',
      });
      if (!byKey.has(ev.key)) byKey.set(ev.key, new Set());
      byKey.get(ev.key)!.add(ev.id);
      feed.emit({ id: ev.id, event: 'requested', local: mine.delete(ev.id) });
      return;
    }
    const s = byId.get(ev.id);
    if (!s) return;
    const at = Date.parse(ev.at);
    if (ev.ev === 'decided') {
      if (s.status !== 'pending' || at > s.expiresAt) return;
      if (ev.decision === 'approve') {
        // A quorum: distinct approvers, each counted once; approved with the last one needed.
        if (s.approvedBy.includes(ev.by)) return;
        s.approvedBy.push(ev.by);
        s.nonce = ev.nonce;
        if (s.approvedBy.length < s.quorum) {
          changes.emit(s.id);
          feed.emit({ id: s.id, event: 'decided', local: mine.delete(ev.nonce) });
          return;
        }
      }
      s.status = ev.decision === 'approve' ? 'approved' : 'denied';
      s.decided_by = ev.by;
      s.decided_at = ev.at;
      s.reason = ev.reason;
      s.nonce = ev.nonce;
      if (s.status === 'approved') {
        s.expiresAt = at + s.withinMs;
        if (s.lastingMs !== undefined) s.lastingUntil = at + s.lastingMs;
      }
    } else if (ev.ev === 'consumed') {
      if (s.status !== 'approved' || at > s.expiresAt) return;
      s.status = 'consumed';
      s.nonce = ev.nonce;
    }
    changes.emit(s.id);
    feed.emit({ id: s.id, event: ev.ev, local: mine.delete(ev.nonce) });
  }

  function statusOf(s: State): ApprovalStatus {
    return effectiveStatus(s.status, s.expiresAt, now());
  }

  function view(s: State): ApprovalRecord {
    const r: ApprovalRecord = {
      id: s.id,
      sub: s.sub,
      resource: s.resource,
      statement: s.statement,
      approvers: [...s.approvers],
      status: statusOf(s),
      created_at: s.created_at,
      expires_at: new Date(s.expiresAt).toISOString(),
      session_id: s.session_id,
      fingerprint: s.fingerprint,
    };
    if (s.params) r.params = s.params.map((p) => ({ ...p }));
    if (s.details) r.details = structuredClone(s.details);
    if (s.actor) r.actor = s.actor;
    if (s.actors) r.actors = [...s.actors];
    if (s.quorum > 1) r.quorum = s.quorum;
    if (s.approvedBy.length > 0) r.approved_by = [...s.approvedBy];
    if (s.lastingMs !== undefined) r.lasting_ms = s.lastingMs;
    if (s.lastingUntil !== undefined) r.lasting_until = new Date(s.lastingUntil).toISOString();
    if (s.decided_by) r.decided_by = s.decided_by;
    if (s.decided_at) r.decided_at = s.decided_at;
    if (s.reason) r.reason = s.reason;
    return r;
  }

  async function write(ev: Event): Promise<void> {
    if (closed) throw new Error('approval service is closed');
    // Our own event, when the log replays it: a local change (another process's are not).
    const own = ev.ev === 'requested' ? ev.id : ev.nonce;
    mine.add(own);
    await fh.write(JSON.stringify(ev) + '\n');
    try {
      await fh.datasync();
      refresh();
    } finally {
      mine.delete(own); // an event that did not take effect (a lost race) is no change
    }
  }

  /** Serialises state-changing operations within this process. */
  function locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = lock.then(fn, fn);
    lock = run.catch(() => undefined);
    return run;
  }

  function findLive(key: string, statuses: ApprovalStatus[]): State | undefined {
    const ids = byKey.get(key);
    if (!ids) return undefined;
    let best: State | undefined;
    for (const id of ids) {
      const s = byId.get(id)!;
      if (statuses.includes(statusOf(s)) && (!best || s.created_at > best.created_at)) best = s;
    }
    return best;
  }

  const poll = new PollWhileWaiting(pollMs, () => {
    try {
      refresh();
    } catch {
      /* the next tick retries */
    }
    for (const id of byId.keys()) if (changes.listenerCount(id) > 0) changes.emit(id);
  });

  // Subscribers learn of other processes' writes through the same backstop poll as waits.
  const feed = new ChangeFeed(() => poll.begin(), () => poll.end());

  refresh();
  if (partial !== '') {
    // A torn line from a crash was never acknowledged; cut it off so our appends start on a fresh line.
    const torn = Buffer.byteLength(partial);
    await fh.truncate(offset - torn);
    offset -= torn;
    partial = '';
  }

  return {
    request(req: ApprovalRequest): Promise<ApprovalRecord> {
      return locked(async () => {
        refresh();
        const key = approvalKey(req);
        const existing = findLive(key, ['pending', 'approved']);
        if (existing) return view(existing);
        const t = now();
        const id = newApprovalId();
        await write({
          ev: 'requested',
          id,
          key,
          sub: req.identity.sub,
          actor: req.identity.actor,
          ...(requesterActors(req.identity) ? { actors: requesterActors(req.identity) } : {}),
          resource: `${req.resource.kind}/${req.resource.name}`,
          statement: req.statement,
          ...(req.params ? { params: req.params } : {}),
          ...(req.details ? { details: req.details } : {}),
          fingerprint: req.fingerprint,
          approvers: [...new Set(req.approvers)].sort(),
          session_id: req.session_id,
          within_ms: req.withinMs,
          ...(req.quorum !== undefined && req.quorum > 1 ? { quorum: req.quorum } : {}),
          ...(req.lastingMs !== undefined ? { lasting_ms: req.lastingMs, lasting_key: lastingKey(req) } : {}),
          created_at: new Date(t).toISOString(),
          expires_at: new Date(t + req.withinMs).toISOString(),
        });
        return view(byId.get(id)!);
      });
    },

    consumeApproved(req: ApprovalRequest): Promise<ApprovalRecord | undefined> {
      return locked(async () => {
        refresh();
        const s = findLive(approvalKey(req), ['approved']);
        if (!s) return undefined;
        const nonce = newNonce();
        await write({ ev: 'consumed', id: s.id, nonce, at: new Date(now()).toISOString() });
        return s.nonce === nonce ? view(s) : undefined;
      });
    },

    consume(id: string): Promise<boolean> {
      return locked(async () => {
        refresh();
        const s = byId.get(id);
        if (!s || statusOf(s) !== 'approved') return false;
        const nonce = newNonce();
        await write({ ev: 'consumed', id, nonce, at: new Date(now()).toISOString() });
        return s.nonce === nonce;
      });
    },

    wait(id: string, signal?: AbortSignal): Promise<ApprovalRecord> {
      refresh();
      const s = byId.get(id);
      if (!s) return Promise.reject(new Error(`internal error: wait() on unknown approval ${id}`));
      if (statusOf(s) !== 'pending') return Promise.resolve(view(s));
      return waitUntilSettled({
        id,
        changes,
        expiresAtMs: s.expiresAt,
        now,
        check: (settle) => {
          if (statusOf(s) !== 'pending') settle();
        },
        result: () => view(s),
        ...(signal ? { signal } : {}),
        poll,
      });
    },

    async list(filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]> {
      refresh();
      return [...byId.values()]
        .map(view)
        .filter((r) => !filter?.status || r.status === filter.status)
        .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
    },

    async lasting(req: ApprovalRequest): Promise<ApprovalRecord | undefined> {
      if (req.lastingMs === undefined) return undefined;
      refresh();
      const key = lastingKey(req);
      const t = now();
      for (const s of byId.values()) {
        if (s.lastingKey === key && (s.status === 'approved' || s.status === 'consumed') && s.lastingUntil !== undefined && t < s.lastingUntil) return view(s);
      }
      return undefined;
    },

    async get(id: string): Promise<ApprovalRecord | undefined> {
      refresh();
      const s = byId.get(id);
      return s && view(s);
    },

    subscribe(listener) {
      return feed.subscribe(listener);
    },

    decide(id: string, approver: Identity, decision: 'approve' | 'deny', reason?: string): Promise<DecideResult> {
      return locked(async (): Promise<DecideResult> => {
        refresh();
        const s = byId.get(id);
        if (!s) return { ok: false, code: 'not_found', reason: `no approval ${id}` };
        const allowed = checkDecision(view(s), approver);
        if (!allowed.ok) return allowed;
        const nonce = newNonce();
        await write({ ev: 'decided', id, nonce, decision, by: approver.sub, reason, at: new Date(now()).toISOString() });
        if (s.nonce !== nonce) return { ok: false, code: 'already_decided', reason: `approval ${id} was decided concurrently by ${s.decided_by}` };
        return { ok: true, record: view(s) };
      });
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      poll.stop();
      await lock;
      await fh.close();
    },
  };
}
