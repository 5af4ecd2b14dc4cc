// INTERIM: the MCP front door's enforcement until the protocol-neutral core (proxy/enforcement/,
// issue 9) lands; then this file is replaced by a thin adapter over it and deleted. It does what
// the PostgreSQL session does for one simple Query message, with the same pieces the wire uses —
// the same classifier, the session's name resolution (search_path, temporary tables, views'
// functions, shadowed built-ins: SessionNames), the same refusals of text settings, the same
// decider, masker precheck and plans, approvals (return mode: a call never hangs), audit records
// (`front_door: mcp`) and recordings — so a tool call is decided exactly as the same text on the
// wire. Nothing in tools.ts or the transports reaches the engine, the audit log or the approval
// store except through the McpEnforcement port this implements.

import type { Decision } from '../../engine/response.ts';
import type { Identity, Resource, SqlAction } from '../../stdlib/facts.ts';
import type { AnalyzedStatement } from '../../stdlib/sql/index.ts';
import type { PolicyEvaluator } from '../enforcement/index.ts';
import { decideItems, decidingIndex, refusalOf, type DecideContext } from '../enforcement/decide.ts';
import { parserRefusal, statementItems, type PgStatement, type SessionClassifier } from '../postgres/enforcement/statements.ts';
import { boundParams, type BoundParams } from '../postgres/enforcement/bind-params.ts';
import { SessionNames, startupPathRisk, type NameCatalog } from '../postgres/session/search-path.ts';
import { textSettingRefusal } from '../postgres/session/text-reading.ts';
import { decisionMasksField } from '../recording/format.ts';
import type { ApprovalRecord, ApprovalRequest, ApprovalService, AuditRecordInput, AuditSink, GatewayMetrics, ResultMasker, SessionRecorder, SessionRecording } from '../ports.ts';
import type { CatalogRelation, DescribedTable, McpCaller, McpEnforcement, SqlOutcome, SqlPermit, UpstreamSession } from './port.ts';

export interface InterimEnforcementDeps {
  classifier: SessionClassifier;
  /** The policy in force, read once per call (a reload swaps atomically). */
  policy(): PolicyEvaluator | undefined;
  audit: AuditSink;
  approvals?: ApprovalService;
  masker?: ResultMasker;
  recorder?: SessionRecorder;
  names?: (resource: Resource) => NameCatalog | undefined;
  metrics?: GatewayMetrics;
  /** The longest SQL text classified (the wire's `limits.max_statement_size`); a longer one is refused before it is parsed. */
  maxStatementSize?: number;
  log?: (line: string) => void;
}

/** A statement with the policy's decision on it. */
type StatementVerdict = PgStatement & { decision: Decision };

/** The decisions on classified statements, as the wire makes them (enforcement's decider); `refusal`: the session's own. */
function decideAnalyzed(analyzed: readonly AnalyzedStatement[], policy: PolicyEvaluator | undefined, ctx: DecideContext, text: string, session?: { resolve(a: readonly AnalyzedStatement[]): SqlAction[]; refusal(a: SqlAction): string | undefined }, extra?: (v: PgStatement) => string | undefined): StatementVerdict[] {
  const items = statementItems(analyzed, session).map((it) => {
    const why = extra?.(it);
    return why ? { ...it, refused: why } : it;
  });
  const decisions = decideItems(items, policy, ctx, text, undefined);
  return items.map((it, i) => ({ ...it, decision: decisions[i]! }));
}

function worstVerdict(verdicts: StatementVerdict[]): StatementVerdict | undefined {
  return verdicts[decidingIndex(verdicts.map((v) => v.decision))];
}

function refusalText(v: StatementVerdict): { message: string; detail?: string } {
  return parserRefusal(v, refusalOf(v.action, v.decision));
}

/** Statement kinds that may change the catalog (the masker and name caches are dropped after them). */
const SCHEMA_CHANGING: ReadonlySet<string> = new Set(['ddl', 'do', 'call', 'unknown', 'grant']);
/** Kinds whose statements return rows (a column mask after a schema change in the same call is refused). */
const RETURNS_DATA: ReadonlySet<string> = new Set(['select', 'insert', 'update', 'delete', 'merge', 'copy_to', 'explain', 'call', 'unknown']);

/**
 * What a tool call cannot carry, whatever the policy says: state that outlives the statement
 * (prepared statements, cursors: every call starts from a reset connection) and COPY (no copy
 * stream in a tool call). Refused as the gateway's own block, audited.
 */
function mcpRefusal(v: { action: SqlAction; change?: StatementVerdict['change'] }): string | undefined {
  const k = v.action.kind;
  if (k === 'copy_to' || k === 'copy_from' || v.action.effects.includes('copy_to') || v.action.effects.includes('copy_from')) return 'COPY is not available through MCP tools: select the rows with `query` instead';
  const c = v.change;
  if (c?.prepare !== undefined || c?.execute !== undefined) return 'prepared statements are not available through MCP tools: pass `params` to `query` instead';
  if (c?.declare !== undefined || c?.fetch !== undefined) return 'cursors are not available through MCP tools: each call returns its rows (use LIMIT/OFFSET to page)';
  return undefined;
}

function hasMasks(d: Decision): boolean {
  return d.masks.columns.length > 0 || d.masks.detectors.length > 0;
}

function auditIdentity(id: Identity): NonNullable<AuditRecordInput['identity']> {
  return { sub: id.sub, ...(id.actor ? { actor: id.actor } : {}), groups: id.groups };
}

function maskNames(d: Decision): string[] {
  return d.masks.columns.map((c) => `${c.column}:${c.masker.name}`).concat(d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join('|')}:${m.masker.name}`));
}

export interface InterimEnforcement extends McpEnforcement {
  /** The MCP session ended: its recordings are closed. */
  endSession(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

export function createInterimEnforcement(deps: InterimEnforcementDeps): InterimEnforcement {
  const recordings = new Map<string, Promise<SessionRecording | undefined>>();
  const log = deps.log ?? (() => undefined);

  function base(caller: McpCaller, resource: Resource, type: AuditRecordInput['type']): AuditRecordInput {
    const id = caller.identity;
    return {
      type,
      session_id: caller.sessionId,
      token: { ...(id.token_id ? { jti: id.token_id } : {}), ...(id.issuer ? { iss: id.issuer } : {}) },
      identity: auditIdentity(id),
      resource: { kind: resource.kind, name: resource.name },
      client_addr: caller.clientAddr,
      front_door: 'mcp',
    };
  }

  /** The session's recording on this resource, opened on its first statement. */
  function recording(caller: McpCaller, resource: Resource): Promise<SessionRecording | undefined> {
    const recorder = deps.recorder;
    if (!recorder) return Promise.resolve(undefined);
    const key = `${caller.sessionId}\u0000${resource.name}`;
    let r = recordings.get(key);
    if (!r) {
      r = recorder
        .open({
          session_id: `${caller.sessionId}-${resource.name}`,
          identity: caller.identity,
          resource,
          client_addr: caller.clientAddr,
          started_at: new Date().toISOString(),
          front_door: 'mcp',
        })
        .catch((e: Error) => {
          log(`recording for MCP session ${caller.sessionId} could not be opened: ${e.message}`);
          return undefined;
        });
      recordings.set(key, r);
    }
    return r;
  }

  function record(
    rec: SessionRecording | undefined,
    v: StatementVerdict,
    outcome: 'executed' | 'blocked' | 'failed' | 'pending_approval' | 'refused',
    t0: number,
    approvalId: string | undefined,
    extra: { error?: string; rows?: number; masks?: string[] } = {},
  ): void {
    rec?.statement({
      time: new Date().toISOString(),
      text: v.action.text,
      protocol: 'mcp',
      verdict: v.decision.verdict,
      reasons: v.decision.reasons.map((r) => r.id),
      masks: extra.masks ?? [],
      ...decisionMasksField(v.decision),
      ...(v.decision.approvers.length > 0 ? { approvers: v.decision.approvers } : {}),
      ...(approvalId ? { approval_id: approvalId } : {}),
      outcome,
      ...(extra.error ? { error: extra.error } : {}),
      ...(extra.rows !== undefined ? { rows: extra.rows } : {}),
      duration_ms: performance.now() - t0,
      kind: v.action.kind,
      fingerprint: v.action.fingerprint,
    });
  }

  function decisionRecord(caller: McpCaller, resource: Resource, v: StatementVerdict, outcome: AuditRecordInput['outcome'], approvalId: string | undefined, reason: string | undefined): AuditRecordInput {
    const d = v.decision;
    const rec = base(caller, resource, 'decision');
    rec.statement = { fingerprint: v.action.fingerprint, normalized: v.action.normalized, kind: v.action.kind };
    rec.verdict = d.verdict;
    rec.rules = d.reasons.map((r) => r.id);
    rec.masks = maskNames(d);
    if (approvalId) rec.approval_id = approvalId;
    if (outcome) rec.outcome = outcome;
    if (reason) rec.reason = reason;
    else if (d.verdict === 'block' && d.message) rec.reason = d.message;
    return rec;
  }

  /** The statements of `text` decided as the wire decides one simple Query on a fresh session. */
  async function decide(caller: McpCaller, resource: Resource, upstream: UpstreamSession, text: string, params: boolean): Promise<{ ok: true; verdicts: StatementVerdict[]; names: SessionNames | undefined } | { ok: false; message: string }> {
    const max = deps.maxStatementSize ?? 1024 * 1024;
    if (Buffer.byteLength(text, 'utf8') > max) return { ok: false, message: `statement of ${Buffer.byteLength(text, 'utf8')} bytes exceeds max_statement_size ${max}` };
    let analyzed: AnalyzedStatement[];
    try {
      analyzed = deps.classifier.analyze(text);
    } catch (e) {
      return { ok: false, message: `the gateway could not classify this statement: ${(e as Error).message}` };
    }
    if (params && analyzed.length > 1) return { ok: false, message: 'a query with `params` must be one statement (PostgreSQL binds parameters to one statement at a time)' };
    const risk = startupPathRisk(upstream.searchPath);
    const names = risk ? undefined : new SessionNames({ startupPath: upstream.searchPath, user: upstream.user, catalog: deps.names?.(resource) });
    if (names) await names.prepare(analyzed);
    const verdicts = decideAnalyzed(
      analyzed,
      deps.policy(),
      { identity: caller.identity, resource, clientAddr: caller.clientAddr, sessionId: caller.sessionId },
      text,
      { resolve: (a) => (names ? names.resolve(a) : a.map((x) => x.action)), refusal: (a) => risk ?? textSettingRefusal(a) ?? names?.refusal(a) },
      // What a tool call cannot carry overrides the session's own refusal.
      (v) => mcpRefusal(v) ?? v.refused,
    );
    return { ok: true, verdicts, names };
  }

  return {
    async sql(caller, resource, upstream, text, params) {
      const t0 = performance.now();
      const rec = await recording(caller, resource);
      const decided = await decide(caller, resource, upstream, text, params !== undefined);
      if (!decided.ok) {
        const r = base(caller, resource, 'decision');
        Object.assign(r, { verdict: 'block', rules: [], masks: [], outcome: 'blocked', reason: decided.message });
        await deps.audit.append(r).catch(() => undefined);
        return { kind: 'refuse', reason: 'blocked', message: `hoop: blocked: ${decided.message}`, rules: [] };
      }
      const { verdicts, names } = decided;
      if (verdicts.length === 0) return { kind: 'forward', permits: [], approvalId: undefined, schemaChanging: false };
      const bound: BoundParams | undefined = params ? boundParams(params.map((p) => (p === null ? null : Buffer.from(p, 'utf8'))), []) : undefined;

      const worst = worstVerdict(verdicts);
      let blockedBy: StatementVerdict | undefined;
      let refusal: Extract<SqlOutcome, { kind: 'refuse' }> | undefined;
      let outcome: 'executed' | 'blocked' | 'pending_approval' = 'executed';
      let approvalId: string | undefined;
      const rulesOf = (v: StatementVerdict) => v.decision.reasons.map((r) => r.id);

      if (worst?.decision.verdict === 'block') {
        blockedBy = worst;
        const t = refusalText(worst);
        refusal = { kind: 'refuse', reason: 'blocked', message: t.message, ...(t.detail ? { detail: t.detail } : {}), rules: rulesOf(worst) };
        outcome = 'blocked';
      } else if (worst?.decision.verdict === 'approve') {
        // Return mode, always: the call answers at once with the approval id; the same text (and
        // params) sent again by the same identity on the same resource after approval runs once.
        const svc = deps.approvals;
        const rules = rulesOf(worst);
        if (!svc) {
          blockedBy = worst;
          refusal = { kind: 'refuse', reason: 'approval', message: 'hoop: blocked: this statement needs an approval and approvals are not configured', rules };
          outcome = 'blocked';
        } else {
          const req: ApprovalRequest = {
            identity: caller.identity,
            resource,
            statement: text,
            ...(bound ? { params: bound.params, paramsDigest: bound.digest } : {}),
            fingerprint: worst.action.fingerprint,
            approvers: worst.decision.approvers,
            withinMs: worst.decision.approvalWithinMs ?? 15 * 60_000,
            session_id: caller.sessionId,
          };
          try {
            const used = await svc.consumeApproved(req);
            if (used) approvalId = used.id;
            else {
              const a = await svc.request(req);
              approvalId = a.id;
              blockedBy = worst;
              outcome = 'pending_approval';
              refusal = {
                kind: 'refuse',
                reason: 'approval_required',
                message: `hoop: approval required (${a.id}) by ${rules.join(', ')}: a member of ${worst.decision.approvers.join(', ')} must approve it`,
                rules,
                approvalId: a.id,
                approvers: worst.decision.approvers,
              };
            }
          } catch (e) {
            blockedBy = worst;
            outcome = 'blocked';
            refusal = { kind: 'refuse', reason: 'approval', message: `hoop: blocked: the approval service failed: ${(e as Error).message}`, rules };
          }
        }
      }
      // Masks: a column mask after a schema change earlier in the same call cannot be followed
      // through the committed catalog; every masked statement's data flow must be one the masker follows.
      if (!blockedBy) {
        let changed = false;
        for (const v of verdicts) {
          if (changed && v.decision.masks.columns.length > 0 && RETURNS_DATA.has(v.action.kind)) {
            blockedBy = v;
            refusal = { kind: 'refuse', reason: 'masks', message: 'hoop: blocked: column masks cannot be guaranteed after a schema change in the same call', detail: 'run the schema change in its own call first', rules: rulesOf(v) };
            outcome = 'blocked';
            break;
          }
          changed ||= SCHEMA_CHANGING.has(v.action.kind);
        }
      }
      if (!blockedBy) {
        for (const v of verdicts) {
          if (!hasMasks(v.decision)) continue;
          let pre: { ok: true } | { ok: false; reason: string };
          if (!deps.masker) pre = { ok: false, reason: 'masking is required but no masker is configured' };
          else {
            try {
              const rs = names?.schemasOf(v.action);
              pre = await deps.masker.precheck({ resource, statementText: v.lineageText ?? v.action.text, masks: v.decision.masks, ...(rs ? { relationSchemas: rs } : {}) });
            } catch (e) {
              pre = { ok: false, reason: `masking precheck failed: ${(e as Error).message}` };
            }
          }
          if (!pre.ok) {
            blockedBy = v;
            refusal = { kind: 'refuse', reason: 'masks', message: `hoop: blocked: ${pre.reason}`, detail: 'the gateway cannot guarantee the masks for this statement', rules: rulesOf(v) };
            outcome = 'blocked';
            break;
          }
        }
      }

      // Every decision is audited before anything runs; a failed write runs nothing.
      const records = verdicts.map((v) =>
        decisionRecord(caller, resource, v, blockedBy ? (v === blockedBy ? outcome : 'blocked') : 'executed', approvalId, blockedBy && v !== blockedBy ? 'another statement in the same call was refused' : blockedBy === v && refusal ? refusal.message.replace(/^hoop: (?:blocked: )?/, '') : undefined),
      );
      let seqs: number[];
      try {
        seqs = await Promise.all(records.map((r) => deps.audit.append(r)));
      } catch {
        for (const v of verdicts) record(rec, v, 'failed', t0, approvalId, { error: 'audit write failed' });
        return { kind: 'refuse', reason: 'audit_failed', message: 'hoop: the audit log could not be written; the statement was not run', rules: [] };
      }
      const latency = (performance.now() - t0) / 1000;
      for (const v of verdicts) deps.metrics?.decision(v.decision.verdict, latency);
      if (blockedBy && refusal) {
        for (const v of verdicts) record(rec, v, v === blockedBy ? outcome : 'blocked', t0, approvalId, { error: v === blockedBy ? refusal.message : 'another statement in the same call was refused' });
        return refusal;
      }

      const permits = verdicts.map((v, i): SqlPermit => {
        const masked = hasMasks(v.decision);
        const statementText = v.lineageText ?? v.action.text;
        const relationSchemas = names?.schemasOf(v.action);
        let done = false;
        return {
          text: v.action.text,
          action: v.action,
          masks: v.decision.masks,
          masked,
          rowLimit: rowLimitOf(v.decision),
          timeLimit: timeLimitOf(v.decision),
          async plan(fields) {
            if (!masked) return { ok: true, passthrough: true, transformRow: (r) => r, maskedColumns: [] };
            if (!deps.masker) return { ok: false, reason: 'masking is required but no masker is configured' };
            try {
              return await deps.masker.plan({ resource, statementText, fields, masks: v.decision.masks, ...(relationSchemas ? { relationSchemas } : {}) });
            } catch (e) {
              return { ok: false, reason: `masking failed: ${(e as Error).message}` };
            }
          },
          async errorText(message) {
            if (!masked) return message;
            const policy = deps.masker?.errorText ? await deps.masker.errorText({ resource, statementText, masks: v.decision.masks }).catch(() => undefined) : undefined;
            if (policy?.mode === 'relay') return message;
            if (policy?.mode === 'mask') return policy.mask(message);
            return 'the statement failed; its error text is withheld because the statement reads masked columns';
          },
          complete(c) {
            if (done) return;
            done = true;
            const r = base(caller, resource, 'statement_result');
            Object.assign(r, {
              statement: { fingerprint: v.action.fingerprint, normalized: v.action.normalized, kind: v.action.kind },
              verdict: v.decision.verdict,
              outcome: c.outcome,
              rows: c.rows,
              duration_ms: c.durationMs,
              decision_seq: seqs[i],
              ...(c.error ? { reason: c.error } : {}),
            });
            void deps.audit.append(r, { deferred: true }).catch(() => undefined);
            record(rec, v, c.outcome, t0, approvalId, { rows: c.rows, ...(c.error ? { error: c.error } : {}), ...(c.maskedColumns ? { masks: c.maskedColumns } : {}) });
          },
        };
      });
      return { kind: 'forward', permits, approvalId, schemaChanging: verdicts.some((v) => SCHEMA_CHANGING.has(v.action.kind)) };
    },

    async describe(caller, resource, relations) {
      const out: DescribedTable[] = [];
      const policy = deps.policy();
      if (!policy) return out;
      for (const rel of relations) {
        const text = `SELECT * FROM ${quoteIdent(rel.schema)}.${quoteIdent(rel.name)}`;
        let analyzed: AnalyzedStatement[];
        try {
          analyzed = deps.classifier.analyze(text);
        } catch {
          continue;
        }
        const [v] = decideAnalyzed(analyzed, policy, { identity: caller.identity, resource, clientAddr: caller.clientAddr, sessionId: caller.sessionId }, text);
        if (!v || v.decision.verdict === 'block') continue;
        const access = v.decision.verdict === 'approve' ? 'approve' : hasMasks(v.decision) ? 'mask' : 'allow';
        const masked = new Map<number, string>();
        if (hasMasks(v.decision)) {
          const fields = rel.columns.map((c) => ({ name: c.name, tableOid: rel.oid, columnAttr: c.attnum, typeOid: c.typeOid, typeSize: -1, typeModifier: -1, format: 0 as const }));
          const plan = deps.masker ? await deps.masker.plan({ resource, statementText: text, fields, masks: v.decision.masks }).catch(() => undefined) : undefined;
          if (!plan || !plan.ok) continue; // the gateway could not say what comes back masked: not offered
          const detectors = v.decision.masks.detectors.map((d) => `${d.detectors.map((x) => x.name).join('|')} → ${d.masker.name}`);
          rel.columns.forEach((c, i) => {
            const direct = v.decision.masks.columns.find((m) => m.column === `${rel.schema}.${rel.name}.${c.name}`.toLowerCase());
            const named = plan.maskedColumns.some((m) => m === c.name || m.startsWith(`${c.name} (`));
            if (direct) masked.set(i, direct.masker.name);
            else if (named) masked.set(i, 'redact');
            else if (detectors.length > 0) masked.set(i, `values matching ${detectors.join(', ')}`);
          });
        }
        out.push({
          schema: rel.schema,
          name: rel.name,
          kind: rel.kind,
          access,
          columns: rel.columns.map((c, i) => ({ name: c.name, type: c.type, nullable: c.nullable, ...(masked.has(i) ? { masked: masked.get(i)! } : {}) })),
        });
      }
      return out;
    },

    async approval(caller, id) {
      const svc = deps.approvals;
      if (!svc) return undefined;
      const found = (await svc.list()).find((a) => a.id === id);
      return found && visibleTo(found, caller.identity) ? found : undefined;
    },

    async approvalsOf(caller) {
      return deps.approvals ? (await deps.approvals.list()).filter((a) => a.sub === caller.identity.sub) : [];
    },

    async waitApproval(caller, id, signal) {
      const svc = deps.approvals;
      if (!svc) return undefined;
      const found = (await svc.list()).find((a) => a.id === id);
      if (!found || !visibleTo(found, caller.identity)) return undefined;
      if (found.status !== 'pending') return found;
      try {
        return await svc.wait(id, signal);
      } catch (e) {
        if (!signal.aborted) throw e;
        return (await svc.list()).find((a) => a.id === id);
      }
    },

    schemaChanged(resource) {
      deps.masker?.invalidate?.(resource.name);
      deps.names?.(resource)?.invalidate();
    },

    async endSession(sessionId) {
      const mine = [...recordings.entries()].filter(([k]) => k.startsWith(`${sessionId}\u0000`));
      for (const [k, r] of mine) {
        recordings.delete(k);
        await (await r)?.close(new Date().toISOString());
      }
    },

    async close() {
      for (const [k, r] of [...recordings.entries()]) {
        recordings.delete(k);
        await (await r)?.close(new Date().toISOString()).catch(() => undefined);
      }
    },
  };
}

/** The verdict's `limit rows N` (the smallest applying). */
function rowLimitOf(d: Decision): { max: number; rule: string } | undefined {
  const l = d.limits?.rows;
  return l && l.rows > 0 ? { max: l.rows, rule: l.rule } : undefined;
}

/** The verdict's `limit time D` (the shortest applying). */
function timeLimitOf(d: Decision): { ms: number; rule: string } | undefined {
  const l = d.limits?.time;
  return l && l.ms > 0 ? { ms: l.ms, rule: l.rule } : undefined;
}

function visibleTo(a: ApprovalRecord, caller: Identity): boolean {
  return a.sub === caller.sub || caller.groups.some((g) => a.approvers.includes(g));
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
