// The MCP tools: input schemas, descriptions, and turning each call into requests for enforcement
// (port.ts) and outcomes into tool results. A refusal is a tool result with `isError: true` naming
// the rule and its message (the agent reads it; the MCP session goes on); an approval returns its
// id and the call to make next, never a call that hangs.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Resource } from '../../stdlib/facts.ts';
import type { ApprovalRecord, ResultField } from '../ports.ts';
import type { CatalogRelation, McpCaller, McpEnforcement, SqlOutcome } from './port.ts';
import { toJson, type JsonResult } from './rows.ts';
import type { McpSettings } from './settings.ts';
import type { Borrowed, PgUpstreams, ResultSet } from './upstream.ts';
import type { SshRunner } from './ssh-run.ts';

export const SERVER_INFO = { name: 'hoop-policy', version: '0.1.0' } as const;

export interface ToolContext {
  /** The caller as of this request (the token is verified again on every HTTP request). */
  caller(): McpCaller;
  resources: readonly Resource[];
  enforcement: McpEnforcement;
  upstreams: PgUpstreams;
  settings: McpSettings;
  /** Commands on ssh resources (the `run` tool); without it ssh resources have no tools. */
  ssh?: SshRunner | undefined;
}

const INSTRUCTIONS = `hoop-policy gateway: every tool call is decided by the organisation's policy (allow, mask, approve or block), audited and recorded.
- Start with list_resources, then describe a postgres resource to see its tables and which columns come back masked.
- query runs one SQL text (several statements run together or not at all). Masked values come back masked; a blocked call says which rule blocked it and why.
- When a call needs approval you get an approval id: call wait_for_approval with it (it runs the statement once a human approves), or approval_status to check.
- No transaction spans tool calls: each query call runs on a reset connection; BEGIN ... COMMIT must be inside one call.`;

function text(t: string, structured?: Record<string, unknown>, isError = false): CallToolResult {
  return { content: [{ type: 'text', text: t }], ...(structured ? { structuredContent: structured } : {}), ...(isError ? { isError: true } : {}) };
}

function failure(message: string, extra: Record<string, unknown> = {}): CallToolResult {
  return text(message, { error: { message, ...extra } }, true);
}

function expired(caller: McpCaller): CallToolResult | undefined {
  return Date.now() >= caller.expiresAt ? failure('hoop: the token expired; reconnect with a fresh token (HOOP_TOKEN)', { reason: 'token_expired' }) : undefined;
}

function findResource(ctx: ToolContext, name: string, kind: Resource['kind']): { ok: true; resource: Resource } | { ok: false; result: CallToolResult } {
  const r = ctx.resources.find((x) => x.name === name);
  if (!r) return { ok: false, result: failure(`hoop: no resource named ${JSON.stringify(name)}; list_resources shows what there is`, { reason: 'unknown_resource' }) };
  if (r.kind !== kind) return { ok: false, result: failure(`hoop: ${name} is a ${r.kind} resource, not ${kind}`, { reason: 'wrong_kind' }) };
  return { ok: true, resource: r };
}

const DESCRIBE_SQL = `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.oid::int8 AS oid,
       a.attname AS column, a.attnum AS attnum, a.atttypid::int8 AS type_oid,
       format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
   AND ($1::text IS NULL OR n.nspname = $1) AND ($2::text IS NULL OR c.relname = $2)
 ORDER BY 1, 2, a.attnum`;

const KINDS: Record<string, CatalogRelation['kind']> = { r: 'table', v: 'view', m: 'materialized_view', p: 'partitioned_table', f: 'foreign_table' };

function relationsOf(set: ResultSet | undefined): CatalogRelation[] {
  const out: CatalogRelation[] = [];
  let cur: CatalogRelation | undefined;
  for (const [schema, name, kind, oid, column, attnum, typeOid, type, nullable] of set?.rows ?? []) {
    if (!cur || cur.schema !== schema || cur.name !== name) {
      cur = { schema: schema!, name: name!, kind: KINDS[kind!] ?? 'table', oid: Number(oid), columns: [] };
      out.push(cur);
    }
    cur.columns.push({ name: column!, attnum: Number(attnum), typeOid: Number(typeOid), type: type!, nullable: nullable === 't' });
  }
  return out;
}

function refusalResult(o: Extract<SqlOutcome, { kind: 'refuse' }>): CallToolResult {
  if (o.reason === 'approval_required' && o.approvalId) {
    const next = { tool: 'wait_for_approval', arguments: { approval_id: o.approvalId } };
    return text(
      `Not run yet: ${o.message.replace(/^hoop: /, '')}.\nApproval id: ${o.approvalId}. Call wait_for_approval with {"approval_id": "${o.approvalId}"}: it returns this statement's result once approved (or call approval_status to check). Nothing ran.`,
      { status: 'approval_required', approval_id: o.approvalId, approvers: o.approvers ?? [], rules: o.rules, message: o.message, next },
    );
  }
  return failure(o.detail ? `${o.message}\n${o.detail}` : o.message, { reason: o.reason, rules: o.rules, ...(o.approvalId ? { approval_id: o.approvalId } : {}) });
}

/**
 * One `query` call end to end: borrow the identity's connection, decide against it, run what is
 * permitted, mask, and report each statement's end to enforcement.
 */
export async function runQuery(ctx: ToolContext, caller: McpCaller, resource: Resource, sql: string, params: (string | null)[] | undefined): Promise<CallToolResult> {
  return ctx.upstreams.with(caller.identity.sub, resource.name, async (conn: Borrowed) => {
    const outcome = await ctx.enforcement.sql(caller, resource, conn.session, sql, params);
    if (outcome.kind === 'refuse') return refusalResult(outcome);
    const permits = outcome.permits;
    if (permits.length === 0) return text('The SQL text holds no statement.', { statements: [] });
    // `limit time`: the shortest of the statements' limits bounds each statement of the call (as
    // statement_timeout; DISCARD ALL after the call puts the pool's back).
    const timed = permits.filter((p) => p.timeLimit).sort((a, b) => a.timeLimit!.ms - b.timeLimit!.ms)[0]?.timeLimit;
    if (timed && timed.ms < ctx.settings.statementTimeoutMs) await conn.statementTimeout(timed.ms);
    const started = performance.now();
    const rowCap = (i: number) => Math.min(ctx.settings.maxRows, permits[i]?.rowLimit?.max ?? Infinity);
    // Each statement runs as its own portal, stopped upstream at its cap (a write's RETURNING: read to the end).
    const r = await conn.run(
      permits.map((p) => p.statement),
      params,
      { maxRows: rowCap, readToEnd: (i) => permits[i]?.readToEnd ?? false, maxBytes: ctx.settings.maxResultBytes },
    );
    const durationMs = performance.now() - started;
    if (outcome.schemaChanging) ctx.enforcement.schemaChanged(resource);

    // Statement i answered with result set i (a CommandComplete, with or without rows).
    if (r.results.length > permits.length) {
      for (const p of permits) p.complete({ outcome: 'failed', rows: 0, durationMs, error: 'the server answered more statements than were decided' });
      return failure('hoop: blocked: the server answered more statements than the gateway decided; no rows are returned', { reason: 'blocked', rules: [] });
    }
    const out: (JsonResult & { verdict: string; rules: string[]; truncated_by?: string })[] = [];
    for (let i = 0; i < r.results.length; i++) {
      const set = r.results[i]!;
      const permit = permits[i]!;
      const plan = set.fields.length > 0 ? await permit.plan(set.fields) : await permit.plan([] as ResultField[]);
      if (!plan.ok) {
        for (let j = i; j < permits.length; j++) permits[j]!.complete({ outcome: 'failed', rows: r.results[j]?.rowCount ?? 0, durationMs, error: `masking refused: ${plan.reason}` });
        return failure(`hoop: blocked: ${plan.reason}\nthe gateway cannot guarantee the masks for this statement; no rows are returned`, { reason: 'masks', rules: permit.masks.columns.map((c) => c.rule) });
      }
      const json = toJson(set, plan);
      // Who cut it: the smaller row cap when it was reached, otherwise the call's byte cap.
      const byRows = json.truncated && json.rows.length >= rowCap(i);
      const byRule = byRows && permit.rowLimit && permit.rowLimit.max <= ctx.settings.maxRows ? permit.rowLimit.rule : undefined;
      out.push({ ...json, ...(byRule ? { truncated_by: byRule } : json.truncated ? { truncated_by: byRows ? 'mcp.max_rows' : 'mcp.max_result_bytes' } : {}), verdict: permitVerdict(permit), rules: permitRules(permit) });
      permit.complete({ outcome: 'executed', rows: set.rowCount, durationMs, maskedColumns: plan.maskedColumns });
    }
    if (!r.ok) {
      const failedAt = r.results.length;
      const failing = permits[failedAt] ?? permits[permits.length - 1]!;
      const limited = timed && r.error.code === '57014' && timed.ms < ctx.settings.statementTimeoutMs;
      const message = limited ? `hoop: canceled by ${timed.rule}: the statement ran longer than its limit time of ${timed.ms} ms` : await failing.errorText(r.error.message);
      const detail = failing.masked ? undefined : r.error.detail;
      for (let j = failedAt; j < permits.length; j++) permits[j]!.complete({ outcome: 'failed', rows: 0, durationMs, error: j === failedAt ? message : 'not run: an earlier statement failed' });
      const ranBefore = failedAt > 0 ? ` (statement ${failedAt + 1} of ${permits.length}; the earlier ones ${permits.length > 1 ? 'were rolled back unless the text committed them' : ''})` : '';
      return failure(`PostgreSQL error${r.error.code ? ` ${r.error.code}` : ''}: ${message}${detail ? `\nDETAIL: ${detail}` : ''}${ranBefore}`, { reason: 'upstream_error', ...(r.error.code ? { sqlstate: r.error.code } : {}), statements: out });
    }
    // A state-changing statement's answer waits until its audit record is durable (audit.durability).
    try {
      await Promise.all(permits.map((p) => p.beforeAnswer()));
    } catch {
      return failure('hoop: the audit log could not be made durable; the result is withheld (the statement ran)', { reason: 'audit_failed' });
    }
    const last = [...out].reverse().find((s) => s.columns.length > 0) ?? out[out.length - 1]!;
    const truncated = out.some((s) => s.truncated);
    const summary = out.length === 1 ? last : { ...last, statements: out };
    const structured = { ...summary, truncated, ...(outcome.approvalId ? { approval_id: outcome.approvalId } : {}) };
    const head = `${last.command || 'OK'}: ${last.row_count} row${last.row_count === 1 ? '' : 's'}${truncated ? ` (truncated: ${last.rows.length} returned)` : ''}${last.masked_columns.length > 0 ? `; masked: ${last.masked_columns.join(', ')}` : ''}`;
    return text(`${head}\n${JSON.stringify(structured)}`, structured as Record<string, unknown>);
  });
}

/**
 * describe's catalog read is a request like any other: decided by the policy as the caller's
 * `SELECT` on pg_catalog (a rule may block or approve it; `limit rate` counts it), audited
 * (`front_door: mcp`) and recorded, its rows through the permit's mask plan; then the policy says
 * which relations the caller may read and which columns come back masked.
 */
async function describeCatalog(ctx: ToolContext, caller: McpCaller, res: Resource, params: (string | null)[]): Promise<CallToolResult> {
  return ctx.upstreams.with(caller.identity.sub, res.name, async (conn: Borrowed) => {
    const outcome = await ctx.enforcement.sql(caller, res, conn.session, DESCRIBE_SQL, params);
    if (outcome.kind === 'refuse') return refusalResult(outcome);
    const [permit] = outcome.permits;
    const started = performance.now();
    if (!permit || outcome.permits.length !== 1) {
      for (const p of outcome.permits) p.complete({ outcome: 'failed', rows: 0, durationMs: 0, error: 'internal error: the catalog query is one statement' });
      return failure('hoop: internal error: the catalog query was not decided as one statement', { reason: 'blocked', rules: [] });
    }
    const got = await conn.run([permit.statement], params, { maxRows: () => 100_000, maxBytes: 64 * 1024 * 1024 });
    const durationMs = performance.now() - started;
    const set = got.results[0];
    if (!got.ok || !set) {
      const message = got.ok ? 'the catalog query returned nothing' : await permit.errorText(got.error.message);
      permit.complete({ outcome: 'failed', rows: 0, durationMs, error: message });
      return failure(`hoop: could not read the catalog of ${res.name}: ${message}`, { reason: 'upstream_error' });
    }
    const plan = await permit.plan(set.fields);
    if (!plan.ok) {
      permit.complete({ outcome: 'failed', rows: 0, durationMs, error: `masking refused: ${plan.reason}` });
      return failure(`hoop: blocked: ${plan.reason}\nthe gateway cannot guarantee the masks for the catalog query`, { reason: 'masks', rules: permit.masks.columns.map((c) => c.rule) });
    }
    const rows = plan.passthrough
      ? set.rows
      : set.rows.map((r) => plan.transformRow(r.map((v) => (v === null ? null : Buffer.from(v, 'utf8')))).map((v) => (v === null ? null : v.toString('utf8'))));
    permit.complete({ outcome: 'executed', rows: set.rowCount, durationMs, maskedColumns: plan.maskedColumns });
    try {
      await permit.beforeAnswer();
    } catch {
      return failure('hoop: the audit log could not be made durable; the result is withheld', { reason: 'audit_failed' });
    }
    const described = await ctx.enforcement.describe(caller, res, relationsOf({ ...set, rows }));
    const lines = described.map((t) => `${t.schema}.${t.name} (${t.kind}${t.access === 'approve' ? ', reads need approval' : ''}): ${t.columns.map((c) => `${c.name} ${c.type}${c.masked ? ` [masked: ${c.masked}]` : ''}`).join(', ')}`);
    return text(lines.length ? lines.join('\n') : 'No table or view you may read matches.', { resource: res.name, tables: described, ...(set.truncated ? { truncated: true } : {}) });
  });
}

function permitVerdict(p: { masked: boolean; action: { kind: string } }): string {
  return p.masked ? 'mask' : 'allow';
}

function permitRules(p: { masks: { columns: { rule: string }[]; detectors: { rule: string }[] } }): string[] {
  return [...new Set([...p.masks.columns.map((c) => c.rule), ...p.masks.detectors.map((d) => d.rule)])];
}

function approvalView(a: ApprovalRecord): Record<string, unknown> {
  return {
    approval_id: a.id,
    status: a.status,
    resource: a.resource,
    statement: a.statement,
    ...(a.params ? { params: a.params.map((p) => p.value) } : {}),
    requested_by: a.sub,
    approvers: a.approvers,
    created_at: a.created_at,
    expires_at: a.expires_at,
    ...(a.decided_by ? { decided_by: a.decided_by } : {}),
    ...(a.reason ? { reason: a.reason } : {}),
  };
}

export function createToolServer(ctx: ToolContext): McpServer {
  const server = new McpServer(SERVER_INFO, { instructions: INSTRUCTIONS, capabilities: { tools: {} } });

  server.registerTool(
    'list_resources',
    {
      title: 'List resources',
      description: 'The resources this gateway fronts (databases and hosts), with their kind, name and labels, and which tools work on each. Start here.',
      inputSchema: {},
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const caller = ctx.caller();
      const bad = expired(caller);
      if (bad) return bad;
      const resources = ctx.resources.map((r) => ({ name: r.name, kind: r.kind, labels: r.labels, tools: r.kind === 'postgres' ? ['describe', 'query'] : ctx.ssh ? ['run'] : [] }));
      const lines = resources.map((r) => `${r.kind} ${r.name}${r.tools.length ? ` (${r.tools.join(', ')})` : ''}`);
      return text(lines.length ? lines.join('\n') : 'No resources are configured.', { identity: { sub: caller.identity.sub, groups: caller.identity.groups }, resources });
    },
  );

  server.registerTool(
    'describe',
    {
      title: 'Describe a database',
      description:
        'Tables, views and columns of a postgres resource that the policy lets you read, and which columns come back masked for you (with the masker). Filter by schema and/or table. Relations you may not read are left out.',
      inputSchema: {
        resource: z.string().min(1).describe('The postgres resource (see list_resources)'),
        schema: z.string().min(1).optional().describe('Only this schema'),
        table: z.string().min(1).optional().describe('Only this table or view'),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ resource, schema, table }) => {
      const caller = ctx.caller();
      const bad = expired(caller);
      if (bad) return bad;
      const found = findResource(ctx, resource, 'postgres');
      if (!found.ok) return found.result;
      const res = found.resource;
      try {
        return await describeCatalog(ctx, caller, res, [schema ?? null, table ?? null]);
      } catch (e) {
        return failure(`hoop: could not read the catalog of ${res.name}: ${(e as Error).message}`, { reason: 'upstream_error' });
      }
    },
  );

  server.registerTool(
    'query',
    {
      title: 'Run SQL',
      description:
        'Runs one SQL text on a postgres resource and returns the rows as JSON (masked where the policy masks), the row count, and `truncated` when a row limit cut the result. Several statements separated by `;` run together or not at all: if the policy blocks one, none runs. Use `params` for values ($1, $2, ...; one statement only). Each call is its own session: no transaction or setting carries over to the next call. A blocked call names the rule and its message; a call that needs approval returns an approval id (then call wait_for_approval).',
      inputSchema: {
        resource: z.string().min(1).describe('The postgres resource (see list_resources)'),
        sql: z.string().min(1).describe('The SQL text'),
        params: z
          .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
          .optional()
          .describe('Values for $1, $2, ... (sent as text; null is SQL NULL)'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    async ({ resource, sql, params }) => {
      const caller = ctx.caller();
      const bad = expired(caller);
      if (bad) return bad;
      const found = findResource(ctx, resource, 'postgres');
      if (!found.ok) return found.result;
      const values = params?.map((p) => (p === null ? null : String(p)));
      try {
        return await runQuery(ctx, caller, found.resource, sql, values);
      } catch (e) {
        return failure(`hoop: the query could not be run: ${(e as Error).message}`, { reason: 'upstream_error' });
      }
    },
  );

  if (ctx.ssh) {
    server.registerTool(
      'run',
      {
        title: 'Run a command',
        description:
          'Runs one shell command on an ssh resource and returns its stdout, stderr and exit status (masked where the policy masks). Every program the command line would run (pipelines, $(...), sh -c strings, xargs, sudo, find -exec) is decided by the policy; a blocked command names the rule and runs nothing; one that needs approval returns an approval id (then call wait_for_approval). No stdin; each call is its own connection.',
        inputSchema: {
          resource: z.string().min(1).describe('The ssh resource (see list_resources)'),
          command: z.string().min(1).describe('The command line, as you would pass it to ssh'),
        },
        annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
      },
      async ({ resource, command }) => {
        const caller = ctx.caller();
        const bad = expired(caller);
        if (bad) return bad;
        const found = findResource(ctx, resource, 'ssh');
        if (!found.ok) return found.result;
        return runCommand(ctx, caller, found.resource, command);
      },
    );
  }

  server.registerTool(
    'approval_status',
    {
      title: 'Approval status',
      description: 'The status of an approval (pending, approved, denied, expired, consumed) you requested or may decide; without an id, your approvals that are still pending or approved.',
      inputSchema: { approval_id: z.string().min(1).optional().describe('The id a query call returned') },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ approval_id }) => {
      const caller = ctx.caller();
      const bad = expired(caller);
      if (bad) return bad;
      if (approval_id === undefined) {
        const ids = await listMine(ctx, caller);
        return text(ids.length ? ids.map((a) => `${a.approval_id} ${a.status}: ${a.statement}`).join('\n') : 'You have no pending or approved approvals.', { approvals: ids });
      }
      const a = await ctx.enforcement.approval(caller, approval_id);
      if (!a) return failure(`hoop: no approval ${approval_id} that you requested or may decide`, { reason: 'not_found' });
      const v = approvalView(a);
      return text(`${a.id}: ${a.status}${a.decided_by ? ` by ${a.decided_by}` : ''}${a.reason ? ` (${a.reason})` : ''}`, v);
    },
  );

  server.registerTool(
    'wait_for_approval',
    {
      title: 'Wait for an approval',
      description: `Waits (at most timeout_seconds, up to ${Math.floor(ctx.settings.maxWaitMs / 1000)}) for a human to decide an approval you requested. Once approved it runs the approved statement and returns its result; denied or expired is an error; still pending when the wait ends, call it again.`,
      inputSchema: {
        approval_id: z.string().min(1).describe('The id a query call returned'),
        timeout_seconds: z.number().positive().optional().describe(`How long to wait (default and maximum ${Math.floor(ctx.settings.maxWaitMs / 1000)})`),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: false },
    },
    async ({ approval_id, timeout_seconds }, extra) => {
      const caller = ctx.caller();
      const bad = expired(caller);
      if (bad) return bad;
      const waitMs = Math.min(ctx.settings.maxWaitMs, timeout_seconds !== undefined ? timeout_seconds * 1000 : ctx.settings.maxWaitMs, Math.max(0, caller.expiresAt - Date.now()));
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), waitMs);
      const onAbort = () => stop.abort();
      extra.signal.addEventListener('abort', onAbort);
      let a: ApprovalRecord | undefined;
      try {
        a = await ctx.enforcement.waitApproval(caller, approval_id, stop.signal);
      } finally {
        clearTimeout(timer);
        extra.signal.removeEventListener('abort', onAbort);
      }
      if (!a) return failure(`hoop: no approval ${approval_id} that you requested or may decide`, { reason: 'not_found' });
      if (a.status === 'pending') {
        return text(`Still pending after ${Math.round(waitMs / 1000)}s: approval ${a.id} waits for ${a.approvers.join(', ')}. Call wait_for_approval again.`, { ...approvalView(a), next: { tool: 'wait_for_approval', arguments: { approval_id: a.id } } });
      }
      if (a.status !== 'approved') return failure(`hoop: approval ${a.id} ${a.status}${a.decided_by ? ` by ${a.decided_by}` : ''}${a.reason ? `: ${a.reason}` : ''}`, { reason: 'approval', ...approvalView(a) });
      if (a.sub !== caller.identity.sub) return text(`Approval ${a.id} is approved; ${a.sub}, who requested it, runs it.`, approvalView(a));
      // The store names a resource `kind/name`.
      const sshResource = ctx.resources.find((r) => `${r.kind}/${r.name}` === a.resource && r.kind === 'ssh');
      if (sshResource && ctx.ssh) return runCommand(ctx, caller, sshResource, a.statement);
      const resource = ctx.resources.find((r) => `${r.kind}/${r.name}` === a.resource && r.kind === 'postgres');
      const params = a.params?.map((p) => p.value);
      const replayable = resource && (a.params ?? []).every((p) => p.format === 'text' && p.truncated_from === undefined);
      if (!resource || !replayable) {
        return text(`Approval ${a.id} is approved: send the same query again (same resource, SQL text and params) to run it once.`, { ...approvalView(a), next: { tool: 'query' } });
      }
      try {
        return await runQuery(ctx, caller, resource, a.statement, params);
      } catch (e) {
        return failure(`hoop: the approved query could not be run: ${(e as Error).message}`, { reason: 'upstream_error', approval_id: a.id });
      }
    },
  );

  return server;
}

/** One `run` call: decided, run, masked, as a tool result. */
async function runCommand(ctx: ToolContext, caller: McpCaller, resource: Resource, command: string): Promise<CallToolResult> {
  let r;
  try {
    r = await ctx.ssh!.run(caller, resource, command);
  } catch (e) {
    return failure(`hoop: the command could not be run: ${(e as Error).message}`, { reason: 'upstream_error' });
  }
  if (!r.ok) {
    if (r.reason === 'approval_required' && r.approvalId) {
      const next = { tool: 'wait_for_approval', arguments: { approval_id: r.approvalId } };
      return text(`Not run yet: ${r.message.replace(/^hoop: /, '')}.\nApproval id: ${r.approvalId}. Call wait_for_approval with {"approval_id": "${r.approvalId}"}: it runs the command once approved. Nothing ran.`, { status: 'approval_required', approval_id: r.approvalId, message: r.message, next });
    }
    return failure(r.message, { reason: r.reason });
  }
  const structured = { exit_code: r.exitCode, ...(r.signal ? { signal: r.signal } : {}), stdout: r.stdout, stderr: r.stderr, truncated: r.truncated, rules: r.rules };
  return text(`exit ${r.exitCode ?? r.signal ?? '?'}${r.truncated ? ' (output truncated)' : ''}\n--- stdout\n${r.stdout}${r.stderr ? `\n--- stderr\n${r.stderr}` : ''}`, structured, r.exitCode !== 0);
}

async function listMine(ctx: ToolContext, caller: McpCaller): Promise<Record<string, unknown>[]> {
  const all = await ctx.enforcement.approvalsOf(caller);
  return all.filter((a) => a.status === 'pending' || a.status === 'approved').map(approvalView);
}
