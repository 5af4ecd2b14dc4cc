// One contract, two stores: every test runs against the file store and the PostgreSQL store, with
// a clock the test moves (no sleeps, no timed assertions).
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimit } from '../../engine/response.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import pg from 'pg';
import { openFileRateLimiter, openPgRateLimiter, rateKey, type RateLimiter } from './rate-limits.ts';

let cluster: Cluster | undefined;
let schemas = 0;

interface Store {
  name: string;
  fresh(): string;
  /** An instance on a location: a second one stands for a restart or another replica. */
  open(location: string, now: () => number): Promise<RateLimiter>;
}

const stores: Store[] = [
  { name: 'file store', fresh: () => mkdtempSync(join(tmpdir(), 'hoop-rates-')), open: (d, now) => openFileRateLimiter(d, { now }) },
  { name: 'PostgreSQL store', fresh: () => `rates_t${schemas++}`, open: (schema, now) => openPgRateLimiter({ connectionString: cluster!.url, schema, now }) },
];

beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

const tenPerSecond: RateLimit = { count: 10, windowMs: 1000, rule: 'p.slow_down' };

async function admitMany(rl: RateLimiter, sub: string, limits: RateLimit[], n: number): Promise<boolean[]> {
  const out: boolean[] = [];
  for (let i = 0; i < n; i++) out.push((await rl.admit(sub, limits)).ok);
  return out;
}

describe.each(stores)('rate limits ($name)', ({ fresh, open }) => {
  it('admits exactly the budget in a window, refuses the rest naming the rule and when to retry; another identity is unaffected', async () => {
    let t = 1_000_000;
    const rl = await open(fresh(), () => t);
    expect(await admitMany(rl, 'agent-1', [tenPerSecond], 10)).toEqual(Array(10).fill(true));
    t += 400;
    expect(await rl.admit('agent-1', [tenPerSecond])).toEqual({ ok: false, rule: 'p.slow_down', count: 10, windowMs: 1000, retryAfterMs: 600 });
    expect((await rl.admit('agent-2', [tenPerSecond])).ok).toBe(true);
    // The same identity under another rule has its own budget.
    expect((await rl.admit('agent-1', [{ ...tenPerSecond, rule: 'p.other' }])).ok).toBe(true);
    await rl.close();
  });

  it('the window slides: a slot frees exactly when its admission is a window old', async () => {
    let t = 5_000_000;
    const rl = await open(fresh(), () => t);
    const two: RateLimit = { count: 2, windowMs: 1000, rule: 'r' };
    expect((await rl.admit('a', [two])).ok).toBe(true); // at 0
    t += 600;
    expect((await rl.admit('a', [two])).ok).toBe(true); // at 600
    t += 399;
    expect(await rl.admit('a', [two])).toMatchObject({ ok: false, retryAfterMs: 1 }); // at 999: the first is still inside
    t += 1;
    expect((await rl.admit('a', [two])).ok).toBe(true); // at 1000: the first left; a fixed window would differ at 1599
    t += 599;
    expect(await rl.admit('a', [two])).toMatchObject({ ok: false, retryAfterMs: 1 });
    await rl.close();
  });

  it('several limits: admitted only if all have room, and a refusal counts against none', async () => {
    let t = 9_000_000;
    const rl = await open(fresh(), () => t);
    const perSecond: RateLimit = { count: 3, windowMs: 1000, rule: 'a' };
    const perMinute: RateLimit = { count: 4, windowMs: 60_000, rule: 'b' };
    expect(await admitMany(rl, 's', [perSecond, perMinute], 4)).toEqual([true, true, true, false]);
    expect(await rl.admit('s', [perSecond, perMinute])).toMatchObject({ ok: false, rule: 'a' });
    t += 1000;
    // The refused attempts did not count: one more fits the minute's budget, then it is spent.
    expect(await admitMany(rl, 's', [perSecond, perMinute], 2)).toEqual([true, false]);
    expect(await rl.admit('s', [perSecond, perMinute])).toMatchObject({ ok: false, rule: 'b', retryAfterMs: 59_000 });
    await rl.close();
  });

  it('a limit listed k times is k requests, admitted all together or not at all', async () => {
    let t = 5_000_000;
    const rl = await open(fresh(), () => t);
    const three: RateLimit = { count: 3, windowMs: 1000, rule: 'p.three' };
    // A message of two statements under the rule: two of three.
    expect((await rl.admit('m', [three, three])).ok).toBe(true);
    // Two more do not fit, and are not counted: the one left still fits afterwards.
    t += 100;
    expect(await rl.admit('m', [three, three])).toEqual({ ok: false, rule: 'p.three', count: 3, windowMs: 1000, retryAfterMs: 900 });
    expect((await rl.admit('m', [three])).ok).toBe(true);
    expect(await rl.admit('m', [three])).toMatchObject({ ok: false, retryAfterMs: 900 });
    // More than the whole budget at once never fits: wait a whole window (and it is not counted).
    expect(await rl.admit('fresh', [three, three, three, three])).toEqual({ ok: false, rule: 'p.three', count: 3, windowMs: 1000, retryAfterMs: 1000 });
    expect((await rl.admit('fresh', [three, three, three])).ok).toBe(true);
    // Mixed with another rule: refused by the spent one, counted against neither.
    const other: RateLimit = { count: 5, windowMs: 1000, rule: 'p.other' };
    expect(await rl.admit('fresh', [other, three])).toMatchObject({ ok: false, rule: 'p.three' });
    expect(await admitMany(rl, 'fresh', [other], 6)).toEqual([true, true, true, true, true, false]);
    await rl.close();
  });

  it('budgets survive a restart', async () => {
    let t = 20_000_000;
    const where = fresh();
    const one = await open(where, () => t);
    expect(await admitMany(one, 'agent-1', [tenPerSecond], 7)).toEqual(Array(7).fill(true));
    await one.close();
    t += 100;
    const two = await open(where, () => t);
    expect(await admitMany(two, 'agent-1', [tenPerSecond], 4)).toEqual([true, true, true, false]);
    await two.close();
  });
});

describe('rate limits shared by replicas (PostgreSQL store)', () => {
  it('two instances on one schema spend one budget, also when admitting concurrently', async () => {
    const schema = `rates_t${schemas++}`;
    const t = 30_000_000;
    const a = await openPgRateLimiter({ connectionString: cluster!.url, schema, now: () => t });
    const b = await openPgRateLimiter({ connectionString: cluster!.url, schema, now: () => t });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).admit('agent-1', [tenPerSecond])));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.rule === 'p.slow_down')).toBe(true);
    await a.close();
    await b.close();
  });

  it('an admission in flight on one replica is seen by the other (it waits for the key, then counts it)', async () => {
    const schema = `rates_t${schemas++}`;
    const t = 31_000_000;
    const b = await openPgRateLimiter({ connectionString: cluster!.url, schema, now: () => t });
    const one: RateLimit = { count: 1, windowMs: 1000, rule: 'r' };
    // Replica A's admission, still inside its transaction.
    const a = new pg.Client({ connectionString: cluster!.url });
    await a.connect();
    await a.query('BEGIN');
    const first = await a.query(`SELECT refused FROM ${schema}.rate_admit($1, $2, $3, $4)`, [[rateKey('agent-1', one)], [1000], [1], t]);
    expect(first.rows[0].refused).toBe(0);
    const second = b.admit('agent-1', [one]);
    await a.query('COMMIT');
    expect(await second).toMatchObject({ ok: false, rule: 'r' });
    await a.end();
    await b.close();
  });
});

describe('rate limits file store', () => {
  it('keeps only admissions inside their window when it compacts at start, and skips a torn line', async () => {
    let t = 40_000_000;
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rates-'));
    const one = await openFileRateLimiter(dir, { now: () => t });
    await admitMany(one, 'old', [{ count: 5, windowMs: 1000, rule: 'r' }], 3);
    t += 500;
    await admitMany(one, 'new', [{ count: 5, windowMs: 60_000, rule: 'r' }], 2);
    await one.close();
    appendFileSync(join(dir, 'rates.log'), '123 torn');
    t += 1000;
    const two = await openFileRateLimiter(dir, { now: () => t });
    expect(two.keys).toBe(1);
    expect(readFileSync(join(dir, 'rates.log'), 'utf8').trim().split('\n')).toHaveLength(2);
    await two.close();
  });
});
