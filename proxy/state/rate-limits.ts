// `limit rate N per D` (DESIGN.md "Limits"): counters per identity `sub` and rule in a sliding
// window, kept in the state store — a file for one gateway, PostgreSQL for replicas that must
// share one budget.
//
// A request carrying several rate limits (several rules, several windows) is admitted only if it
// fits all of them, and then counts against all of them; a refused request counts against none (so
// a client that keeps retrying too early does not push its own budget further out). A limit listed k
// times is k requests under it: one message of k statements is admitted whole or not at all, so a
// refused message spends nothing of the budget of the statements before the one over it. The answer to
// a refusal names the rule whose budget is spent and how long until one request fits again.
//
// Counters are exact sliding-window logs: the admission times of the last N requests per key
// (sub, rule, window). Memory per key grows with the requests actually admitted in the window,
// never beyond N.

import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { RateLimit } from '../../engine/response.ts';

export type RateVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly rule: string; readonly count: number; readonly windowMs: number; /** Until one more request would fit. */ readonly retryAfterMs: number };

export interface RateLimiter {
  /** Admit (and count) a request of `sub` under these limits, or say which budget is spent. */
  admit(sub: string, limits: readonly RateLimit[]): RateVerdict | Promise<RateVerdict>;
  close(): Promise<void>;
}

const ADMITTED: RateVerdict = Object.freeze({ ok: true });

/** One counter's key: the rule, the window and the identity (JSON: one line, any characters). */
export function rateKey(sub: string, limit: RateLimit): string {
  return JSON.stringify([limit.rule, limit.windowMs, sub]);
}

/** A key's parts, or undefined when it is not one of ours. */
function keyParts(key: string): { rule: string; windowMs: number; sub: string } | undefined {
  try {
    const k: unknown = JSON.parse(key);
    return Array.isArray(k) && k.length === 3 && typeof k[0] === 'string' && typeof k[1] === 'number' && typeof k[2] === 'string' ? { rule: k[0], windowMs: k[1], sub: k[2] } : undefined;
  } catch {
    return undefined;
  }
}

/** A ring of admission times (ms), oldest first, growing up to the limit's count. */
class Ring {
  times: Float64Array;
  start = 0;
  size = 0;

  constructor(capacity: number, readonly windowMs: number, /** Its key (rateKey), as the file stores it. */ readonly key: string) {
    this.times = new Float64Array(Math.max(1, capacity));
  }

  at(i: number): number {
    return this.times[(this.start + i) % this.times.length]!;
  }

  /** Drops admissions at or before `cutoff`. */
  prune(cutoff: number): void {
    while (this.size > 0 && this.times[this.start]! <= cutoff) {
      this.start = (this.start + 1) % this.times.length;
      this.size--;
    }
  }

  push(t: number, max: number): void {
    if (this.size === this.times.length) {
      if (this.size < max) {
        const grown = new Float64Array(Math.min(max, this.times.length * 2));
        for (let i = 0; i < this.size; i++) grown[i] = this.at(i);
        this.times = grown;
        this.start = 0;
      } else {
        // Full at the limit (the count shrank under a reload): the oldest goes.
        this.start = (this.start + 1) % this.times.length;
        this.size--;
      }
    }
    this.times[(this.start + this.size) % this.times.length] = t;
    this.size++;
  }
}

/** The in-memory counters; the file store persists what they admit. */
export class RateCounters {
  /** By `rule\u0000window`, then by sub: two lookups, no key built per request. */
  readonly #rings = new Map<string, Map<string, Ring>>();
  #keys = 0;

  #ring(sub: string, l: RateLimit, create: boolean): Ring | undefined {
    const outer = `${l.rule}\u0000${l.windowMs}`;
    let bySub = this.#rings.get(outer);
    if (bySub === undefined) {
      if (!create) return undefined;
      bySub = new Map();
      this.#rings.set(outer, bySub);
    }
    let ring = bySub.get(sub);
    if (ring === undefined && create) {
      ring = new Ring(Math.min(l.count, 16), l.windowMs, rateKey(sub, l));
      bySub.set(sub, ring);
      this.#keys++;
    }
    return ring;
  }

  /** Admits at `now` if every limit has room, recording it under each (`admitted` sees each ring). */
  admit(sub: string, limits: readonly RateLimit[], now: number, admitted?: (ring: Ring) => void): RateVerdict {
    // Check all first: a refusal counts against none.
    for (let i = 0; i < limits.length; i++) {
      const l = limits[i]!;
      // This many admissions under l's counter, this one included (a limit listed again is another request).
      let need = 1;
      for (let j = 0; j < i; j++) if (limits[j]!.rule === l.rule && limits[j]!.windowMs === l.windowMs) need++;
      const ring = this.#ring(sub, l, false);
      if (ring !== undefined) ring.prune(now - l.windowMs);
      const size = ring?.size ?? 0;
      if (size + need > l.count) {
        // They fit once the admission `size + need - count` from the oldest leaves the window; more
        // than the whole budget at once never fits, and is told to wait a whole window.
        const drop = size + need - l.count - 1;
        const frees = ring !== undefined && drop < size ? ring.at(drop) + l.windowMs : now + l.windowMs;
        return { ok: false, rule: l.rule, count: l.count, windowMs: l.windowMs, retryAfterMs: Math.max(1, Math.ceil(frees - now)) };
      }
    }
    for (let i = 0; i < limits.length; i++) {
      const l = limits[i]!;
      const ring = this.#ring(sub, l, true)!;
      ring.push(now, l.count);
      admitted?.(ring);
    }
    return ADMITTED;
  }

  /** Restores an admission read back from the file (no check: it was admitted then). */
  restore(rule: string, windowMs: number, sub: string, t: number, now: number): void {
    if (t <= now - windowMs) return;
    this.#ring(sub, { rule, windowMs, count: Number.MAX_SAFE_INTEGER }, true)!.push(t, Number.MAX_SAFE_INTEGER);
  }

  /** Every live admission (for compaction), dropping keys whose window is empty. */
  *live(now: number): Generator<[string, number]> {
    for (const [outer, bySub] of this.#rings) {
      for (const [sub, ring] of bySub) {
        ring.prune(now - ring.windowMs);
        if (ring.size === 0) {
          bySub.delete(sub);
          this.#keys--;
          continue;
        }
        for (let i = 0; i < ring.size; i++) yield [ring.key, ring.at(i)];
      }
      if (bySub.size === 0) this.#rings.delete(outer);
    }
  }

  get keys(): number {
    return this.#keys;
  }
}

export interface FileRateOptions {
  now?: () => number;
  /** How long admissions may wait before they are appended (ms). Default 20. */
  flushMs?: number;
  log?: (line: string) => void;
}

/**
 * The file store: counters in memory (admit is synchronous and allocation-light), admissions
 * appended to `rates.log` in the state directory in batches, read back and compacted at start, so
 * a restart keeps every budget. An admission not yet flushed when the process dies is lost: the
 * budget errs by at most one flush interval's admissions.
 */
export async function openFileRateLimiter(dir: string, opts: FileRateOptions = {}): Promise<RateLimiter & { flush(): Promise<void>; readonly keys: number }> {
  const now = opts.now ?? Date.now;
  const flushMs = opts.flushMs ?? 20;
  const file = join(dir, 'rates.log');
  await mkdir(dir, { recursive: true });
  const counters = new RateCounters();
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const t0 = now();
  for (const line of text.split('\n')) {
    // `<ms> <key>`; a torn last line is skipped.
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    const t = Number(line.slice(0, space));
    const parts = keyParts(line.slice(space + 1));
    if (!Number.isFinite(t) || parts === undefined) continue;
    counters.restore(parts.rule, parts.windowMs, parts.sub, t, t0);
  }
  // Compact: only what is still inside its window (write aside, then rename over).
  let compacted = '';
  for (const [key, t] of counters.live(t0)) compacted += `${t} ${key}\n`;
  await writeFile(`${file}.tmp`, compacted);
  await rename(`${file}.tmp`, file);
  let liveLines = compacted === '' ? 0 : compacted.split('\n').length - 1;
  let appended = 0;

  let pending: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  let at = 0;
  const record = (ring: Ring): void => void pending.push(`${at} ${ring.key}\n`);

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending.length === 0) return writing;
    const batch = pending.join('');
    const lines = pending.length;
    pending = [];
    writing = writing.then(async () => {
      try {
        await appendFile(file, batch);
        appended += lines;
        // Rewrite once the file holds mostly expired admissions.
        if (appended > 10_000 && appended > 2 * liveLines) {
          let out = '';
          for (const [key, t] of counters.live(now())) out += `${t} ${key}\n`;
          await writeFile(`${file}.tmp`, out);
          await rename(`${file}.tmp`, file);
          liveLines = out === '' ? 0 : out.split('\n').length - 1;
          appended = 0;
        }
      } catch (e) {
        opts.log?.(`rate limits: cannot write ${file}: ${(e as Error).message}`);
      }
    });
    return writing;
  };

  return {
    admit(sub, limits) {
      at = now();
      const verdict = counters.admit(sub, limits, at, record);
      if (verdict.ok) timer ??= setTimeout(() => void flush(), flushMs);
      return verdict;
    },
    flush,
    get keys() {
      return counters.keys;
    },
    async close() {
      await flush();
    },
  };
}

export interface PgRateOptions {
  connectionString?: string;
  connection?: pg.ClientConfig;
  /** Schema holding the `rate_events` table and the `rate_admit` function (created if missing). Default `hoop`. */
  schema?: string;
  /** The service's clock (ms), passed to the database like the approvals store's. */
  now?: () => number;
}

/**
 * The PostgreSQL store, shared by replicas: one function call per admission takes a transaction
 * advisory lock per key (in key order, so two replicas never deadlock), drops the key's expired
 * admissions, checks every limit and records the admission under all of them — or none.
 */
export async function openPgRateLimiter(opts: PgRateOptions): Promise<RateLimiter> {
  const now = opts.now ?? Date.now;
  const schema = opts.schema ?? 'hoop';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`internal error: invalid rate-limit schema name ${JSON.stringify(schema)}`);
  const connection: pg.ClientConfig = { ...(opts.connection ?? {}), ...(opts.connectionString ? { connectionString: opts.connectionString } : {}), application_name: 'hoop-gateway-rate-limits' };
  const pool = new pg.Pool({ ...connection, max: 4 });
  pool.on('error', () => undefined);
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`hoop-rate-schema-${schema}`]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query(`CREATE TABLE IF NOT EXISTS ${schema}.rate_events (key text NOT NULL, at_ms bigint NOT NULL)`);
    await c.query(`CREATE INDEX IF NOT EXISTS rate_events_key_at ON ${schema}.rate_events (key, at_ms)`);
    await c.query(`CREATE OR REPLACE FUNCTION ${schema}.rate_admit(keys text[], windows bigint[], counts int[], now_ms bigint)
      RETURNS TABLE (refused int, retry_ms bigint) LANGUAGE plpgsql AS $fn$
      DECLARE
        i int;
        n bigint;
        need bigint;
        oldest bigint;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtext(k)) FROM (SELECT DISTINCT unnest(keys) AS k ORDER BY 1) s;
        FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
          DELETE FROM ${schema}.rate_events WHERE key = keys[i] AND at_ms <= now_ms - windows[i];
          SELECT count(*) INTO n FROM ${schema}.rate_events WHERE key = keys[i];
          -- A key listed again is another request under it.
          SELECT count(*) INTO need FROM unnest(keys[1:i]) k WHERE k = keys[i];
          IF n + need > counts[i] THEN
            oldest := NULL;
            IF n + need - counts[i] - 1 < n THEN
              SELECT at_ms INTO oldest FROM ${schema}.rate_events WHERE key = keys[i] ORDER BY at_ms OFFSET n + need - counts[i] - 1 LIMIT 1;
            END IF;
            RETURN QUERY SELECT i, greatest(1, coalesce(oldest, now_ms) + windows[i] - now_ms);
            RETURN;
          END IF;
        END LOOP;
        INSERT INTO ${schema}.rate_events (key, at_ms) SELECT unnest(keys), now_ms;
        RETURN QUERY SELECT 0, 0::bigint;
      END
      $fn$`);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    c.release();
    await pool.end();
    throw e;
  }
  c.release();
  return {
    async admit(sub, limits) {
      const r = await pool.query<{ refused: number; retry_ms: string }>(`SELECT refused, retry_ms FROM ${schema}.rate_admit($1, $2, $3, $4)`, [
        limits.map((l) => rateKey(sub, l)), limits.map((l) => l.windowMs), limits.map((l) => l.count), now(),
      ]);
      const row = r.rows[0];
      if (!row) throw new Error('rate_admit returned no row');
      if (row.refused === 0) return ADMITTED;
      const l = limits[row.refused - 1]!;
      return { ok: false, rule: l.rule, count: l.count, windowMs: l.windowMs, retryAfterMs: Number(row.retry_ms) };
    },
    async close() {
      await pool.end();
    },
  };
}
