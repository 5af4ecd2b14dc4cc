// What the MCP front door's enforcement says beyond a request's outcome: the refusals a tool call
// makes whatever the policy says, who may see an approval, and `describe`'s view of the catalog
// (the policy's verdict on reading each relation, and the columns its mask plan masks). Nothing
// here writes an audit record or runs a statement.

import type { Decision } from '../../engine/response.ts';
import type { Identity, Resource, SqlAction } from '../../stdlib/facts.ts';
import type { AnalyzedStatement } from '../../stdlib/sql/index.ts';
import type { PolicyEvaluator } from '../enforcement/index.ts';
import { decideItems } from '../enforcement/decide.ts';
import { statementItems, type PgStatement, type SessionClassifier } from '../postgres/enforcement/statements.ts';
import type { ApprovalRecord, ResultMasker } from '../ports.ts';
import type { CatalogRelation, DescribedTable, McpCaller } from './port.ts';

/**
 * What a tool call cannot carry, whatever the policy says: state that outlives the statement
 * (prepared statements, cursors: every call starts from a reset connection) and COPY (no copy
 * stream in a tool call). Refused as the gateway's own block, audited.
 */
export function mcpRefusal(v: { action: SqlAction; change?: PgStatement['change'] }): string | undefined {
  const k = v.action.kind;
  if (k === 'copy_to' || k === 'copy_from' || v.action.effects.includes('copy_to') || v.action.effects.includes('copy_from')) return 'COPY is not available through MCP tools: select the rows with `query` instead';
  const c = v.change;
  if (c?.prepare !== undefined || c?.execute !== undefined) return 'prepared statements are not available through MCP tools: pass `params` to `query` instead';
  if (c?.declare !== undefined || c?.fetch !== undefined) return 'cursors are not available through MCP tools: each call returns its rows (use LIMIT/OFFSET to page)';
  return undefined;
}

export function hasMasks(d: Decision): boolean {
  return d.masks.columns.length > 0 || d.masks.detectors.length > 0;
}

export function visibleTo(a: ApprovalRecord, caller: Identity): boolean {
  return a.sub === caller.sub || caller.groups.some((g) => a.approvers.includes(g));
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

export interface DescribeDeps {
  classifier: SessionClassifier;
  policy(): PolicyEvaluator | undefined;
  masker?: ResultMasker | undefined;
}

/** For each relation: what the policy says of `SELECT * FROM` it for this caller (blocked ones are left out) and which columns come back masked. */
export async function describeRelations(deps: DescribeDeps, caller: McpCaller, resource: Resource, relations: CatalogRelation[]): Promise<DescribedTable[]> {
  const decideAnalyzed = (analyzed: readonly AnalyzedStatement[], policy: PolicyEvaluator, ctx: { identity: Identity; resource: Resource; clientAddr: string; sessionId: string }, text: string) => {
    const items = statementItems(analyzed);
    const decisions = decideItems(items, policy, ctx, text, undefined);
    return items.map((it, i) => ({ ...it, decision: decisions[i]! }));
  };
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
}
