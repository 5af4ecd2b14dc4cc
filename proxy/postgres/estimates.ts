// Cost facts (DESIGN.md "Cost facts"): `sql.estimate.rows` / `sql.estimate.cost` from the
// upstream's `EXPLAIN (FORMAT JSON)` of the statement, asked only when a rule that may apply reads
// them (engine `needsEstimate`), and cached for a short time.
//
// EXPLAIN never executes the statement: plain EXPLAIN (never ANALYZE) only plans it. It runs only
// for kinds it can plan without effects — SELECT, INSERT, UPDATE, DELETE, MERGE whose every effect
// is one of those (no call, DO, DDL or unknown effect anywhere: planning folds immutable functions,
// and a user's function marked immutable could do anything) — as one statement (the extended
// protocol refuses a second), inside a READ ONLY transaction that is always rolled back, with a
// statement_timeout, under the session's search_path, on the gateway's own connection to the
// resource. Anything else has no estimate, so a condition that reads one errors and its rule
// blocks (fail closed).
//
// The cache key is the resource, the search_path and the statement's fingerprint *and* text:
// statements of one fingerprint differ in their constants (`id < 10` / `id < 10000000`), and
// their estimates with them, so the fingerprint alone would let a cheap statement's estimate
// stand for an expensive one.

import pg from 'pg';
import type { Resource, SqlAction, SqlEstimate } from '../../stdlib/facts.ts';

export type EstimateResult = SqlEstimate | { error: string };

export interface Estimator {
  /** The planner's estimate for this statement, or why there is none. Never throws. */
  estimate(resource: Resource, action: SqlAction, searchPath?: string): Promise<EstimateResult>;
  close(): Promise<void>;
}

export interface EstimatorOptions {
  /** The gateway's connection to a resource's database (its catalog connection). */
  connectionFor(resource: Resource): pg.ClientConfig | undefined;
  /** How long an answer is reused (ms). Default 10 s. */
  ttlMs?: number;
  /** How long one EXPLAIN may take (ms). Default 2 s. */
  timeoutMs?: number;
  /** Entries kept. Default 4096. */
  maxEntries?: number;
  now?: () => number;
}

/** The kinds (and effects) EXPLAIN plans without running anything. */
const EXPLAINABLE = new Set(['select', 'insert', 'update', 'delete', 'merge']);

/** Why this statement gets no EXPLAIN, or undefined when it may. */
export function notExplainable(action: SqlAction): string | undefined {
  if (!EXPLAINABLE.has(action.kind)) return `EXPLAIN is not run for ${action.kind} statements`;
  const other = action.effects.find((e) => !EXPLAINABLE.has(e));
  if (other !== undefined) return `EXPLAIN is not run for a statement with a ${other} effect`;
  return undefined;
}

/**
 * Rows and cost from EXPLAIN's JSON: the top plan's rows, or for a ModifyTable (UPDATE, DELETE,
 * MERGE; INSERT's source) its input's, the rows it expects to touch; the top plan's total cost.
 */
export function estimateFromPlan(json: unknown): SqlEstimate | undefined {
  const top = Array.isArray(json) ? (json[0] as { Plan?: PlanNode } | undefined)?.Plan : undefined;
  if (!top || typeof top['Total Cost'] !== 'number' || typeof top['Plan Rows'] !== 'number') return undefined;
  let rows = top['Plan Rows'];
  if (top['Node Type'] === 'ModifyTable' && Array.isArray(top.Plans) && top.Plans.length > 0) {
    const input = top.Plans.find((p) => p['Parent Relationship'] === 'Outer' || p['Parent Relationship'] === undefined) ?? top.Plans[0]!;
    if (typeof input['Plan Rows'] === 'number') rows = input['Plan Rows'];
  }
  return { rows, cost: top['Total Cost'] };
}

interface PlanNode {
  'Node Type'?: string;
  'Plan Rows'?: number;
  'Total Cost'?: number;
  'Parent Relationship'?: string;
  Plans?: PlanNode[];
}

interface Entry {
  at: number;
  result: Promise<EstimateResult>;
}

export function createEstimator(opts: EstimatorOptions): Estimator {
  const ttlMs = opts.ttlMs ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxEntries = opts.maxEntries ?? 4096;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const pools = new Map<string, pg.Pool>();
  let closed = false;

  function poolFor(resource: Resource): pg.Pool | undefined {
    let pool = pools.get(resource.name);
    if (pool) return pool;
    const connection = opts.connectionFor(resource);
    if (!connection) return undefined;
    pool = new pg.Pool({ ...connection, application_name: 'hoop-gateway-estimates', max: 2 });
    pool.on('error', () => undefined);
    pools.set(resource.name, pool);
    return pool;
  }

  async function explain(resource: Resource, action: SqlAction, searchPath: string | undefined): Promise<EstimateResult> {
    const pool = poolFor(resource);
    if (!pool) return { error: `no connection to ${resource.name} to ask EXPLAIN` };
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      return { error: `cannot reach ${resource.name} for EXPLAIN: ${(e as Error).message}` };
    }
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(`SELECT set_config('statement_timeout', $1, true)`, [`${timeoutMs}ms`]);
      if (searchPath !== undefined) await client.query(`SELECT set_config('search_path', $1, true)`, [searchPath]);
      // The extended protocol: one statement only, whatever the text holds.
      const r = await client.query({ text: `EXPLAIN (FORMAT JSON) ${action.text}`, queryMode: 'extended' } as pg.QueryConfig & { queryMode: 'extended' });
      const plan = (r.rows[0] as Record<string, unknown> | undefined)?.['QUERY PLAN'];
      const estimate = estimateFromPlan(typeof plan === 'string' ? JSON.parse(plan) : plan);
      return estimate ?? { error: 'EXPLAIN gave no plan rows and cost' };
    } catch (e) {
      return { error: `EXPLAIN failed: ${(e as Error).message}` };
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  return {
    estimate(resource, action, searchPath) {
      if (closed) return Promise.resolve({ error: 'the gateway is shutting down' });
      const refused = notExplainable(action);
      if (refused) return Promise.resolve({ error: refused });
      const key = JSON.stringify([resource.name, searchPath ?? null, action.fingerprint, action.text]);
      const t = now();
      const hit = cache.get(key);
      if (hit && t - hit.at < ttlMs) return hit.result;
      const result = explain(resource, action, searchPath).catch((e: Error): EstimateResult => ({ error: `EXPLAIN failed: ${e.message}` }));
      if (cache.size >= maxEntries) {
        for (const [k, v] of cache) if (t - v.at >= ttlMs) cache.delete(k);
        if (cache.size >= maxEntries) cache.clear();
      }
      cache.set(key, { at: t, result });
      return result;
    },
    async close() {
      closed = true;
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((p) => p.end().catch(() => undefined)));
    },
  };
}
