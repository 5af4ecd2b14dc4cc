// The ResultMasker port (proxy/ports.ts): lineage-based column masking plus content detectors.
//
// precheck (before the statement runs): with column masks, the statement's lineage is computed
// over the upstream catalog; any reason to block (a flow the gateway cannot follow, COPY of masked
// data, masked data written into a table, a cast whose error would quote a masked value, ...)
// refuses the statement. With detector masks, COPY ... TO is refused (its rows bypass DataRow masking).
//
// plan (at RowDescription): each field gets the union of two independent answers — the lineage of
// the output position, and the field's origin (table OID + column number, resolved through the
// catalog and, for views, through the view's own lineage). clear → untouched; direct → the
// column's masker; derived → `redact`; opaque or unaccounted for → the statement is refused.
// Content detectors then scan every remaining value of every column.

import type { Decision } from '../../engine/response.ts';
import type { Resource } from '../../stdlib/facts.ts';
import { createDetector, detectAll, maskRanges, type Detector } from '../../stdlib/detectors/index.ts';
import { createMasker, redact, strictest, type Masker, type MaskerRef } from '../../stdlib/maskers/index.ts';
import { asciiMasker, isAscii, type AsciiMasker } from '../../stdlib/maskers/ascii.ts';
import {
  CLEAR,
  describe,
  loadStatementParser,
  relationFlows,
  statementLineage,
  union,
  type Catalog,
  type Flow,
  type LineageCache,
  type StatementLineage,
  type StatementParser,
} from '../../stdlib/lineage/index.ts';
import type { ErrorTextPolicy, MaskPlan, ResultField, ResultMasker } from '../ports.ts';
import { PgCatalog } from './pg-catalog.ts';
import { decoderFor, encoderFor, isRawText } from './values.ts';

type Masks = Decision['masks'];

/** How to reach a resource's catalog: the upstream connection (a PgCatalog is made and kept), or a ready Catalog. */
export type CatalogSource = { connection: import('pg').ClientConfig } | { catalog: Catalog };

export interface ResultMaskerOptions {
  /** Called once per resource name; the PgCatalog it leads to is kept until `close()`. */
  catalogFor(resource: Resource): CatalogSource | Promise<CatalogSource>;
  /** Key of the `hash` masker. Without it, a policy that uses `hash` blocks (fail closed). */
  hashKey?: string | Buffer;
  /** The SQL classifier's cached parser (`(t) => analyzer.analyze(t)`); libpg-query directly otherwise. */
  sqlAnalyzer?: StatementParser;
  /** Catalog cache lifetime for PgCatalog (ms). */
  catalogTtlMs?: number;
}

export interface GatewayResultMasker extends ResultMasker {
  /** Forget cached catalog answers (call after forwarding DDL). */
  invalidate(resourceName?: string): void;
  close(): Promise<void>;
}

interface ResourceState {
  catalog: Catalog;
  pg?: PgCatalog;
  views: LineageCache;
  viewsAt: number;
}

const LINEAGE_CACHE_SIZE = 512;
const MAX_CACHED_TEXT = 64 * 1024;

interface TextLineage {
  statements: StatementLineage[];
  /** Some statement of the text does not parse. */
  unparsed: boolean;
  /** Some statement is a COPY ... TO. */
  copyTo: boolean;
}

export function createResultMasker(options: ResultMaskerOptions): GatewayResultMasker {
  const resources = new Map<string, Promise<ResourceState>>();
  let parserPromise: Promise<StatementParser> | undefined;
  const parser = (): Promise<StatementParser> => (options.sqlAnalyzer ? Promise.resolve(options.sqlAnalyzer) : (parserPromise ??= loadStatementParser()));
  const lineages = new Map<string, { at: number; value: Promise<TextLineage> }>();
  const builtCache = new Map<string, Built>();
  const ttl = options.catalogTtlMs ?? 5_000;

  function state(resource: Resource): Promise<ResourceState> {
    let s = resources.get(resource.name);
    if (!s) {
      s = (async () => {
        const source = await options.catalogFor(resource);
        if ('catalog' in source) return { catalog: source.catalog, views: new Map(), viewsAt: Date.now() };
        const views: LineageCache = new Map();
        // DDL committed anywhere (hoop's event trigger, pg-catalog.ts): forget what depended on the catalog.
        const pgCatalog = new PgCatalog({
          connection: source.connection,
          ttlMs: ttl,
          onChange: () => {
            views.clear();
            lineages.clear();
          },
        });
        return { catalog: pgCatalog, pg: pgCatalog, views, viewsAt: Date.now() };
      })();
      s.catch(() => resources.delete(resource.name));
      resources.set(resource.name, s);
    }
    return s;
  }

  /**
   * Parse facts and lineage of a statement text, cached per (resource, masked set, text): precheck
   * computes them, plan and repeated statements reuse them. With no masked columns only the parse
   * facts are computed.
   */
  function lineageOf(resource: Resource, text: string, masked: ReadonlySet<string>, relationSchemas?: Readonly<Record<string, readonly string[]>>): Promise<TextLineage> {
    const key = `${resource.name}\u0000${[...masked].sort().join(',')}\u0000${relationSchemas ? JSON.stringify(relationSchemas) : ''}\u0000${text}`;
    const cached = lineages.get(key);
    // Lineage depends on the catalog: an entry lives as long as the catalog's answers do.
    if (cached && Date.now() - cached.at < ttl) {
      // Refresh the entry's position: the map is kept in least-recently-used order.
      lineages.delete(key);
      lineages.set(key, cached);
      return cached.value;
    }
    const entry = (async (): Promise<TextLineage> => {
      // Detectors only: all that matters is whether a statement is a COPY, and a COPY statement
      // spells the keyword (keywords cannot be quoted or escaped), so most texts need no parse.
      if (masked.size === 0 && !/copy/i.test(text)) return { statements: [], unparsed: false, copyTo: false };
      const parse = await parser();
      const parsed = parse(text);
      const unparsed = parsed.some((s) => s.ast === null);
      const copyTo = parsed.some((s) => isCopyTo(s.ast));
      if (masked.size === 0 || unparsed) return { statements: [], unparsed, copyTo };
      const st = await state(resource);
      // View analyses follow the catalog's TTL: a replaced view is re-read.
      if (Date.now() - st.viewsAt > ttl) {
        st.views.clear();
        st.viewsAt = Date.now();
      }
      const statements: StatementLineage[] = [];
      const schemasOf = relationSchemas ? (name: string) => (Object.hasOwn(relationSchemas, name) ? relationSchemas[name] : undefined) : undefined;
      for (const s of parsed) statements.push(await statementLineage(s.ast, { catalog: st.catalog, masked, parse, cache: st.views, ...(schemasOf ? { schemasOf } : {}) }));
      return { statements, unparsed, copyTo };
    })();
    // Huge texts are analysed every time rather than held in the cache.
    if (text.length > MAX_CACHED_TEXT) return entry;
    const record = { at: Date.now(), value: entry };
    lineages.delete(key);
    lineages.set(key, record);
    entry.catch(() => lineages.get(key) === record && lineages.delete(key));
    if (lineages.size > LINEAGE_CACHE_SIZE) lineages.delete(lineages.keys().next().value as string);
    return entry;
  }

  /** Maskers and detectors built once per distinct set of masks (a regex detector compiles RE2). */
  function built(masks: Masks): Built {
    const key = JSON.stringify([masks.columns.map((c) => [c.column, c.masker]), masks.detectors.map((d) => [d.detectors, d.masker, d.rule])]);
    let b = builtCache.get(key);
    if (!b) {
      b = buildMaskers(masks, options.hashKey);
      builtCache.set(key, b);
      if (builtCache.size > 256) builtCache.delete(builtCache.keys().next().value as string);
    }
    return b;
  }

  const refuse = (reason: string) => ({ ok: false as const, reason: `masking: ${reason}` });

  return {
    async precheck({ resource, statementText, masks, relationSchemas }) {
      if (noMasks(masks)) return { ok: true };
      const b = built(masks);
      if (!b.ok) return refuse(b.reason);
      try {
        const lineage = await lineageOf(resource, statementText, maskedSet(masks), relationSchemas);
        if (lineage.unparsed) return refuse('the statement does not parse, so its data flow cannot be checked');
        if (masks.detectors.length > 0 && lineage.copyTo) {
          return refuse('COPY ... TO is not allowed while content detectors apply: COPY data bypasses result masking (use SELECT)');
        }
        const blocks = lineage.statements.flatMap((l) => l.blocks);
        return blocks.length === 0 ? { ok: true } : refuse(blocks.join('; '));
      } catch (error) {
        return refuse(`the upstream catalog could not be read (${error instanceof Error ? error.message : String(error)})`);
      }
    },

    async plan({ resource, statementText, fields, masks, relationSchemas }): Promise<MaskPlan> {
      if (noMasks(masks)) return passthrough();
      const b = built(masks);
      if (!b.ok) return refuse(b.reason);
      const ops: (ColumnOp | undefined)[] = new Array(fields.length).fill(undefined);
      const maskedColumns: string[] = [];
      if (masks.columns.length > 0) {
        let flows: Flow[];
        try {
          const resolved = await fieldFlows(resource, statementText, fields, maskedSet(masks), relationSchemas);
          if (!resolved.ok) return refuse(resolved.reason);
          flows = resolved.flows;
        } catch (error) {
          return refuse(`the upstream catalog could not be read (${error instanceof Error ? error.message : String(error)})`);
        }
        for (let i = 0; i < fields.length; i++) {
          const f = flows[i];
          if (f.t === 'clear') continue;
          if (f.t === 'opaque') return refuse(`column ${fields[i].name}: ${f.reason}`);
          const chosen = f.t === 'direct' ? b.columns.get(f.column) : undefined;
          ops[i] = chosen ? columnOp(chosen.masker, chosen.ascii, fields[i]) : columnOp(redact, REDACT_ASCII, fields[i]);
          maskedColumns.push(f.t === 'direct' ? `${fields[i].name} (${f.column})` : `${fields[i].name} (derived from ${describe(f)})`);
        }
      }
      const detectorOps = b.detectors.length === 0 ? [] : fields.map((field, i) => (ops[i] === undefined ? detectOp(b.detectors, field) : undefined));
      // Only the columns that need work are visited per row.
      const index: number[] = [];
      const work: ColumnOp[] = [];
      for (let i = 0; i < fields.length; i++) {
        const op = ops[i] ?? detectorOps[i];
        if (op !== undefined) {
          index.push(i);
          work.push(op);
        }
      }
      if (work.length === 0) return passthrough(maskedColumns);
      const width = fields.length;
      return {
        ok: true,
        passthrough: false,
        maskedColumns,
        transformRow(values) {
          // A row of another width than RowDescription announced is a protocol violation: fail closed.
          if (values.length !== width) return values.map(() => null);
          const out = values.slice();
          for (let k = 0; k < index.length; k++) {
            const i = index[k];
            const v = out[i];
            if (v !== null) out[i] = work[k](v);
          }
          return out;
        },
      };
    },

    async errorText({ resource, statementText, masks }): Promise<ErrorTextPolicy> {
      if (noMasks(masks)) return { mode: 'relay' };
      const b = built(masks);
      if (!b.ok) return { mode: 'withhold', reason: b.reason };
      if (masks.columns.length > 0) {
        // Which masked value an error quotes cannot be known (the value is not in the result), so a
        // statement that reads a relation with a masked column gets no server text at all.
        try {
          const lineage = await lineageOf(resource, statementText, maskedSet(masks));
          if (lineage.unparsed) return { mode: 'withhold', reason: 'the statement does not parse' };
          if (lineage.statements.some((l) => l.touchesMasked || l.blocks.length > 0)) return { mode: 'withhold', reason: 'the statement reads masked columns' };
        } catch {
          return { mode: 'withhold', reason: 'the upstream catalog could not be read' };
        }
      }
      if (b.detectors.length === 0) return { mode: 'relay' };
      const groups = b.detectors;
      return { mode: 'mask', mask: (text) => detectText(groups, text) };
    },

    invalidate(resourceName) {
      for (const [name, s] of resources) {
        if (resourceName !== undefined && name !== resourceName) continue;
        void s.then((st) => {
          st.pg?.invalidate();
          st.views.clear();
        }, () => undefined);
      }
      lineages.clear();
    },

    async close() {
      const all = [...resources.values()];
      resources.clear();
      await Promise.all(all.map((s) => s.then((st) => st.pg?.close(), () => undefined)));
    },
  };

  /**
   * One flow per field: the union of the lineage at that output position and the field's origin
   * (table OID + column number). A field neither can account for is refused.
   */
  async function fieldFlows(
    resource: Resource,
    text: string,
    fields: ResultField[],
    masked: ReadonlySet<string>,
    relationSchemas?: Readonly<Record<string, readonly string[]>>,
  ): Promise<{ ok: true; flows: Flow[] } | { ok: false; reason: string }> {
    const lineage = await lineageOf(resource, text, masked, relationSchemas);
    if (lineage.unparsed) return { ok: false, reason: 'the statement does not parse, so its data flow cannot be checked' };
    const blocks = lineage.statements.flatMap((l) => l.blocks);
    if (blocks.length > 0) return { ok: false, reason: blocks.join('; ') };
    // The RowDescription belongs to the statement that returns rows (there is one per text).
    const producing = lineage.statements.filter((l) => l.result !== 'none');
    const described = producing.length === 1 ? producing[0] : undefined;
    const byPosition = described?.result === 'rows' ? positionFlows(described.outputs, fields.length) : undefined;
    const st = await state(resource);
    const parse = await parser();
    const flows: Flow[] = [];
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i];
      const fromLineage = byPosition?.[i];
      const fromOrigin = field.tableOid !== 0 ? await originFlow(st, parse, field, masked) : undefined;
      if (fromLineage === undefined && fromOrigin === undefined) {
        return { ok: false, reason: `result column ${field.name} cannot be traced to its source while columns are masked` };
      }
      flows.push(union([fromLineage ?? CLEAR, fromOrigin ?? CLEAR]));
    }
    return { ok: true, flows };
  }

  async function originFlow(st: ResourceState, parse: StatementParser, field: ResultField, masked: ReadonlySet<string>): Promise<Flow | undefined> {
    const rel = await st.catalog.relationByOid(field.tableOid);
    if (rel === undefined) return { t: 'opaque', reason: `table OID ${field.tableOid} is not in the catalog` };
    const index = rel.columns.findIndex((c) => c.attnum === field.columnAttr);
    if (index < 0) return field.columnAttr <= 0 ? CLEAR : { t: 'opaque', reason: `column ${field.columnAttr} of ${rel.schema}.${rel.name} is not in the catalog` };
    const flows = await relationFlows(rel, { catalog: st.catalog, masked, parse, cache: st.views });
    if (flows.blocks.length > 0) return { t: 'opaque', reason: flows.blocks.join('; ') };
    return flows.columns[index];
  }
}

type ColumnOp = (value: Buffer) => Buffer | null;

function columnOp(masker: Masker, fast: AsciiMasker | undefined, field: ResultField): ColumnOp {
  const decode = decoderFor(field.typeOid, field.format);
  const encode = encoderFor(field.typeOid, field.format);
  const slow: ColumnOp = (value) => {
    const text = decode(value);
    return text === undefined ? null : encode(masker(text));
  };
  if (fast === undefined || !isRawText(field.typeOid, field.format)) return slow;
  return (value) => (isAscii(value) ? fast(value) : slow(value));
}

interface DetectorGroup {
  detectors: Detector[];
  masker: Masker;
  /** No regex detector: values shorter than the shortest built-in match cannot match. */
  minLength: number;
}

function detectOp(groups: DetectorGroup[], field: ResultField): ColumnOp | undefined {
  const decode = decoderFor(field.typeOid, field.format);
  const encode = encoderFor(field.typeOid, field.format);
  const minLength = Math.min(...groups.map((g) => g.minLength));
  return (value) => {
    if (value.length < minLength) return value;
    let text = decode(value);
    if (text === undefined) return value; // binary encodings of other types hold no text to scan
    let changed = false;
    for (const g of groups) {
      const ranges = detectAll(g.detectors, text);
      if (ranges.length === 0) continue;
      const masked = maskRanges(text, ranges, g.masker);
      if (masked === null) return null;
      text = masked;
      changed = true;
    }
    return changed ? encode(text) : value;
  };
}

/** Content detectors over one text (an error or notice field): a masker that nulls the value blanks the whole text. */
function detectText(groups: DetectorGroup[], text: string): string {
  let out = text;
  for (const g of groups) {
    const ranges = detectAll(g.detectors, out);
    if (ranges.length === 0) continue;
    const masked = maskRanges(out, ranges, g.masker);
    if (masked === null) return '(masked)';
    out = masked;
  }
  return out;
}

type Built = { ok: true; columns: Map<string, { masker: Masker; ascii?: AsciiMasker }>; detectors: DetectorGroup[] } | { ok: false; reason: string };

const REDACT_ASCII = asciiMasker({ name: 'redact', args: [] });

/** Column maskers (strictest per column when several rules mask it) and detector groups. */
function buildMaskers(masks: Masks, hashKey: string | Buffer | undefined): Built {
  const refs = new Map<string, MaskerRef>();
  for (const m of masks.columns) {
    const key = m.column.toLowerCase();
    const prev = refs.get(key);
    refs.set(key, prev ? strictest(prev, m.masker) : m.masker);
  }
  const columns = new Map<string, { masker: Masker; ascii?: AsciiMasker }>();
  for (const [column, ref] of refs) {
    const r = createMasker(ref, { hashKey });
    if (!r.ok) return { ok: false, reason: `column ${column}: ${r.message}` };
    const ascii = asciiMasker(ref, hashKey);
    columns.set(column, ascii ? { masker: r.masker, ascii } : { masker: r.masker });
  }
  const detectors: DetectorGroup[] = [];
  for (const d of masks.detectors) {
    const m = createMasker(d.masker, { hashKey });
    if (!m.ok) return { ok: false, reason: `rule ${d.rule}: ${m.message}` };
    const list: Detector[] = [];
    for (const spec of d.detectors) {
      const r = createDetector(spec);
      if (!r.ok) return { ok: false, reason: `rule ${d.rule}: ${r.message}` };
      list.push(r.detector);
    }
    detectors.push({ detectors: list, masker: m.masker, minLength: list.some((x) => x.name === 'regex') ? 1 : 6 });
  }
  return { ok: true, columns, detectors };
}

function noMasks(masks: Masks | undefined): boolean {
  return masks === undefined || (masks.columns.length === 0 && masks.detectors.length === 0);
}

function maskedSet(masks: Masks): ReadonlySet<string> {
  return new Set(masks.columns.map((m) => m.column.toLowerCase()));
}

function passthrough(maskedColumns: string[] = []): MaskPlan {
  return { ok: true, passthrough: true, maskedColumns, transformRow: (values) => values };
}

function isCopyTo(ast: unknown): boolean {
  if (ast === null || typeof ast !== 'object') return false;
  const copy = (ast as Record<string, unknown>).CopyStmt as Record<string, unknown> | undefined;
  return copy !== undefined && copy.is_from !== true;
}

/**
 * Lineage outputs → one flow per field. Spreads (a function's `*`) absorb the fields the fixed
 * columns do not: fixed columns before the first spread map from the front, after the last from
 * the back, and everything in between gets the union of the middle. A count that cannot match
 * (no spread, different length) maps nothing: each field must then be accounted for by its origin.
 */
function positionFlows(outputs: StatementLineage['outputs'], n: number): (Flow | undefined)[] | undefined {
  const firstSpread = outputs.findIndex((o) => o.spread);
  if (firstSpread < 0) return outputs.length === n ? outputs.map((o) => o.flow) : undefined;
  const lastSpread = outputs.length - 1 - [...outputs].reverse().findIndex((o) => o.spread);
  const head = outputs.slice(0, firstSpread);
  const tail = outputs.slice(lastSpread + 1);
  if (head.length + tail.length > n) return undefined;
  const middle = union(outputs.slice(firstSpread, lastSpread + 1).map((o) => o.flow));
  const flows: Flow[] = [];
  for (let i = 0; i < n; i++) {
    if (i < head.length) flows.push(head[i].flow);
    else if (i >= n - tail.length) flows.push(tail[i - (n - tail.length)].flow);
    else flows.push(middle);
  }
  return flows;
}
