// The MCP front door's enforcement over the protocol-neutral core (proxy/enforcement/). A `query`
// call's text becomes request items the way the PostgreSQL front door makes them (the same
// classifier, the session's name resolution per call — search_path, temporary tables, views'
// functions, shadowed built-ins — and the same refusals of text settings), plus what a tool call
// cannot carry (PREPARE/EXECUTE, cursors, COPY); the core decides, resolves approvals (return
// mode: a call never hangs), checks masks, writes the audit records (`front_door: mcp`) and the
// recording, and hands back permits with their mask plans. One enforcement session per MCP session
// and resource, opened on its first call, closed with the MCP session (or when a refreshed token
// of the same identity replaces an expiring one).

import type { Identity, Resource } from '../../stdlib/facts.ts';
import type { AnalyzedStatement } from '../../stdlib/sql/index.ts';
import type { Enforcer, EnforcementSession, Permit } from '../enforcement/index.ts';
import { boundParams } from '../postgres/enforcement/bind-params.ts';
import { statementItems, type PgStatement, type SessionClassifier } from '../postgres/enforcement/statements.ts';
import { SessionNames, startupPathRisk, type NameCatalog } from '../postgres/session/search-path.ts';
import { textSettingRefusal } from '../postgres/session/text-reading.ts';
import type { ApprovalRecord, ApprovalService, ResultMasker } from '../ports.ts';
import { describeRelations, mcpRefusal, visibleTo } from './describe.ts';
import type { McpCaller, McpEnforcement, SqlOutcome, SqlPermit } from './port.ts';

/** A statement of a query call, with the schemas its unqualified names resolved to (for the masker). */
interface McpStatement extends PgStatement {
  readonly schemas?: Record<string, string[]> | undefined;
  /** Its own text (the classifier's split of the call's text): what runs upstream. */
  readonly sql: string;
}

/** Statements whose RETURNING rows are read to the end (the write runs in full whatever is read). */
const WRITES = ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'];

function isWrite(ast: unknown): boolean {
  return typeof ast === 'object' && ast !== null && WRITES.some((k) => k in ast);
}

export interface CoreEnforcementDeps {
  enforcer: Enforcer;
  classifier: SessionClassifier;
  names?: (resource: Resource) => NameCatalog | undefined;
  /** Read only: approval_status and wait_for_approval (requests and decisions go through the enforcer). */
  approvals?: ApprovalService;
  /** Read only: describe's plans over the catalog (nothing runs). */
  masker?: ResultMasker;
  maxStatementSize?: number;
}

interface Open {
  session: EnforcementSession<McpStatement>;
  owner: string;
  expiresAt: number;
}

export interface CoreEnforcement extends McpEnforcement {
  endSession(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

export function createCoreEnforcement(deps: CoreEnforcementDeps): CoreEnforcement {
  const sessions = new Map<string, Open>();

  async function sessionFor(caller: McpCaller, resource: Resource): Promise<EnforcementSession<McpStatement> | string> {
    const key = `${caller.sessionId}\u0000${resource.name}`;
    const owner = `${caller.identity.issuer ?? ''}\u0000${caller.identity.sub}`;
    const cur = sessions.get(key);
    if (cur && cur.owner === owner && cur.expiresAt === caller.expiresAt && !cur.session.closed) return cur.session;
    // A refreshed token (the same identity) starts a new enforcement session with its expiry.
    cur?.session.close();
    sessions.delete(key);
    const opened = await deps.enforcer.openSession<McpStatement>({
      protocol: 'mcp',
      id: `${caller.sessionId}-${resource.name}-${Date.now().toString(36)}`,
      identity: caller.identity,
      expiresAt: caller.expiresAt,
      resource,
      clientAddr: caller.clientAddr,
      approvalMode: 'return',
      hooks: { relationSchemas: (item) => (item.lineageText === undefined ? item.schemas : undefined) },
    });
    if (!opened.ok) return opened.message;
    sessions.set(key, { session: opened.session, owner, expiresAt: caller.expiresAt });
    return opened.session;
  }

  function permitOf(session: EnforcementSession<McpStatement>, p: Permit<McpStatement>): SqlPermit {
    const rows = p.limits.rows;
    const time = p.limits.time;
    return {
      text: p.text,
      statement: p.item.sql,
      readToEnd: isWrite(p.item.ast),
      action: p.action as SqlPermit['action'],
      masks: p.masks,
      masked: p.masked,
      rowLimit: rows ? { max: rows.rows, rule: rows.rule } : undefined,
      timeLimit: time ? { ms: time.ms, rule: time.rule } : undefined,
      plan: (fields) => (p.masked ? session.planMasks(p, fields) : Promise.resolve({ ok: true, passthrough: true, transformRow: (r) => r, maskedColumns: [] })),
      async errorText(message) {
        if (!p.masked) return message;
        const t = await session.textPolicy(p.decision.masks, p.item.lineageText ?? p.text);
        if (t.mode === 'relay') return message;
        if (t.mode === 'mask') return t.mask(message);
        return 'the statement failed; its error text is withheld because the statement reads masked columns';
      },
      beforeAnswer: () => session.beforeAnswer(p),
      complete: (c) => session.complete(p, c),
    };
  }

  return {
    async sql(caller, resource, upstream, text, params) {
      const started = performance.now();
      const session = await sessionFor(caller, resource);
      if (typeof session === 'string') return { kind: 'refuse', reason: 'audit_failed', message: session, rules: [] };
      if (session.expired()) return { kind: 'refuse', reason: 'token_expired', message: 'hoop: the token expired; reconnect with a fresh token', rules: [] };
      const max = deps.maxStatementSize ?? 1024 * 1024;
      const size = Buffer.byteLength(text, 'utf8');
      let analyzed: AnalyzedStatement[] = [];
      let gatewayRefusal: string | undefined;
      if (size > max) gatewayRefusal = `statement of ${size} bytes exceeds max_statement_size ${max}`;
      else {
        try {
          analyzed = deps.classifier.analyze(text);
        } catch (e) {
          gatewayRefusal = `the gateway could not classify this statement: ${(e as Error).message}`;
        }
      }
      if (!gatewayRefusal && params && analyzed.length > 1) gatewayRefusal = 'a query with `params` must be one statement (PostgreSQL binds parameters to one statement at a time)';
      if (gatewayRefusal) {
        await session.refuse(`hoop: blocked: ${gatewayRefusal}`);
        return { kind: 'refuse', reason: 'blocked', message: `hoop: blocked: ${gatewayRefusal}`, rules: [] };
      }
      const risk = startupPathRisk(upstream.searchPath);
      const names = risk ? undefined : new SessionNames({ startupPath: upstream.searchPath, user: upstream.user, catalog: deps.names?.(resource) });
      if (names) await names.prepare(analyzed);
      const items: McpStatement[] = statementItems(analyzed, {
        resolve: (a) => (names ? names.resolve(a) : a.map((x) => x.action)),
        refusal: (a) => risk ?? textSettingRefusal(a) ?? names?.refusal(a),
      }).map((it, i, all) => {
        const why = mcpRefusal(it) ?? it.refused;
        const schemas = names?.schemasOf(it.action);
        // One item per analyzed statement; a classifier failure is one refused item (nothing runs).
        const sql = all.length === analyzed.length ? analyzed[i]!.text : text;
        return { ...it, refused: why, sql, ...(schemas ? { schemas } : {}) };
      });
      if (items.length === 0) return { kind: 'forward', permits: [], approvalId: undefined, schemaChanging: false };
      const bound = params ? boundParams(params.map((v) => (v === null ? null : Buffer.from(v, 'utf8'))), []) : undefined;
      const req = { items, text, ...(bound ? { params: bound } : {}), started, protocol: 'mcp' as const };
      const decisions = session.evaluate(req);
      let out = await session.decide(req, decisions);
      // Return mode never holds; should a hold come back, the call still does not hang.
      if (out.kind === 'hold') {
        out.cancel();
        out = await out.outcome;
      }
      if (out.kind === 'refuse') {
        const reason: Extract<SqlOutcome, { kind: 'refuse' }>['reason'] = out.reason;
        const approvers = out.reason === 'approval_required' ? decisions.find((d) => d.verdict === 'approve')?.approvers : undefined;
        return {
          kind: 'refuse',
          reason,
          message: out.message,
          ...(out.detail ? { detail: out.detail } : {}),
          rules: [...out.rules],
          ...(out.approvalId ? { approvalId: out.approvalId } : {}),
          ...(approvers ? { approvers: [...approvers] } : {}),
        };
      }
      return {
        kind: 'forward',
        permits: out.permits.map((p) => permitOf(session, p)),
        approvalId: out.approvalId,
        schemaChanging: out.permits.some((p) => ['ddl', 'do', 'call', 'unknown', 'grant'].includes(p.action.kind)),
      };
    },

    describe: (caller, resource, relations) =>
      describeRelations({ classifier: deps.classifier, policy: () => deps.enforcer.policy, masker: deps.masker }, caller, resource, relations),

    async approval(caller, id) {
      const found = deps.approvals ? (await deps.approvals.list()).find((a) => a.id === id) : undefined;
      return found && visibleTo(found, caller.identity) ? found : undefined;
    },

    async approvalsOf(caller) {
      return deps.approvals ? (await deps.approvals.list()).filter((a) => a.sub === caller.identity.sub) : [];
    },

    async waitApproval(caller, id, signal) {
      const svc = deps.approvals;
      const found = svc ? (await svc.list()).find((a) => a.id === id) : undefined;
      if (!svc || !found || !visibleTo(found, caller.identity)) return undefined;
      if (found.status !== 'pending') return found;
      try {
        return await svc.wait(id, signal);
      } catch (e) {
        if (!signal.aborted) throw e;
        return (await svc.list()).find((a: ApprovalRecord) => a.id === id);
      }
    },

    schemaChanged(resource) {
      // The call's transaction ended (committed, or rolled back with the connection's reset).
      for (const [k, o] of sessions) if (k.endsWith(`\u0000${resource.name}`)) o.session.transactionEnded();
      deps.names?.(resource)?.invalidate();
    },

    async endSession(sessionId) {
      for (const [k, o] of [...sessions]) {
        if (!k.startsWith(`${sessionId}\u0000`)) continue;
        sessions.delete(k);
        o.session.close();
      }
    },

    async close() {
      for (const o of sessions.values()) o.session.close();
      sessions.clear();
    },
  };
}

export type { Identity };
