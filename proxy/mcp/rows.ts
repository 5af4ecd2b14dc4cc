// Result sets to JSON for a tool result: each value goes through the permit's mask plan first (the
// same plan the wire applies to a DataRow), then becomes JSON. A value the plan left untouched in a
// column the plan does not mask is typed by its PostgreSQL type (booleans, numbers that fit a
// double exactly, json/jsonb parsed); everything else stays the text the server (or the masker) gave.

import type { MaskPlan, ResultField } from '../ports.ts';
import type { ResultSet } from './upstream.ts';

export interface JsonColumn {
  name: string;
  type_oid: number;
}

export interface JsonResult {
  command: string;
  columns: JsonColumn[];
  rows: Record<string, unknown>[];
  /** Rows sent back; a write's: the rows its command tag counts (it may have returned more than were sent back). */
  row_count: number;
  /** A cap cut the result (the policy's `limit rows`, the gateway's `mcp.max_rows`, or `mcp.max_result_bytes`): more rows existed; a read was stopped upstream there. */
  truncated: boolean;
  /** Output columns the masker masked, as it names them. */
  masked_columns: string[];
}

const BOOL = 16;
const INT2 = 21;
const INT4 = 23;
const INT8 = 20;
const OID = 26;
const FLOAT4 = 700;
const FLOAT8 = 701;
const JSON_OID = 114;
const JSONB = 3802;

function typed(type: number, text: string): unknown {
  switch (type) {
    case BOOL:
      return text === 't' ? true : text === 'f' ? false : text;
    case INT2:
    case INT4:
    case OID:
      return Number(text);
    case INT8: {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case FLOAT4:
    case FLOAT8: {
      const n = Number(text);
      return Number.isFinite(n) && String(n) === text ? n : text;
    }
    case JSON_OID:
    case JSONB:
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

/** Unique keys for the row objects (`?column?` twice becomes `?column?` and `?column?_2`). */
function keys(fields: readonly ResultField[]): string[] {
  const seen = new Map<string, number>();
  return fields.map((f) => {
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    return n === 1 ? f.name : `${f.name}_${n}`;
  });
}

/** The set's rows, masked by `plan` (which must be ok), as JSON objects. */
export function toJson(set: ResultSet, plan: Extract<MaskPlan, { ok: true }>): JsonResult {
  const names = keys(set.fields);
  const maskedNames = new Set(plan.maskedColumns.map((m) => m.replace(/ \(.*\)$/, '')));
  const rows = set.rows.map((raw) => {
    const out: Record<string, unknown> = {};
    const values = plan.passthrough ? null : plan.transformRow(raw.map((v) => (v === null ? null : Buffer.from(v, 'utf8'))));
    for (let i = 0; i < names.length; i++) {
      const original = raw[i] ?? null;
      if (values === null) {
        out[names[i]!] = original === null ? null : typed(set.fields[i]!.typeOid, original);
        continue;
      }
      const v = values[i] ?? null;
      const text = v === null ? null : v.toString('utf8');
      const untouched = text === original && !maskedNames.has(set.fields[i]!.name);
      out[names[i]!] = text === null ? null : untouched ? typed(set.fields[i]!.typeOid, text) : text;
    }
    return out;
  });
  return {
    command: set.command,
    columns: set.fields.map((f, i) => ({ name: names[i]!, type_oid: f.typeOid })),
    rows,
    row_count: set.rowCount,
    truncated: set.truncated,
    masked_columns: plan.maskedColumns,
  };
}
