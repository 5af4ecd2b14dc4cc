// Limits benchmark (issue 11 "Speed"):
//   - the decision cost limits add: the same 1,000-rule set decided with and without limits on its
//     rules (a limit on every tenth rule and a catch-all `limit rows`), p50 per decision; target ≤ 1 µs;
//   - rate-limit bookkeeping on the file store: `admit` of one request under two rate limits, for
//     identities drawn from 200, p50 per statement; target ≤ 3 µs.
//
//   npx tsx bench/limits.bench.ts [--json] [--quick]

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, type PreparedPolicy } from '../engine/index.ts';
import { openFileRateLimiter } from '../proxy/state/rate-limits.ts';
import type { Request, SqlKind } from '../stdlib/facts.ts';
import { percentile, rng } from './support.ts';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const SAMPLES = quick ? 20_000 : 200_000;
const KINDS: SqlKind[] = ['select', 'insert', 'update', 'delete'];

function policyText(rules: number, withLimits: boolean): string {
  const out = ['package bench', '', 'default allow', '', 'rule block_unknown {\n  match sql unknown\n  block\n}'];
  for (let i = 0; i < rules; i++) {
    const limit = withLimits && i % 10 === 0 ? `\n  limit rows ${100 + i}\n  limit rate ${10 + (i % 7)} per 1m` : '';
    out.push(`rule r${i} {\n  on postgres("db-${i % 40}")\n  when group "g${i % 100}"\n  match sql ${KINDS[i % 4]}\n  allow${limit}\n}`);
  }
  if (withLimits) out.push('rule cap_all {\n  match sql select\n  limit rows 10000\n  limit time 30s\n}');
  return out.join('\n');
}

function requests(n: number): Request[] {
  const r = rng(7);
  const pick = (k: number) => Math.floor(r() * k);
  return Array.from({ length: n }, () => {
    const kind = KINDS[pick(4)]!;
    return {
      identity: { sub: `agent-${pick(200)}`, groups: [`g${pick(100)}`], claims: {} },
      resource: { kind: 'postgres', name: `db-${pick(40)}`, labels: {} },
      action: { type: 'sql', kind, effects: [kind], reads: ['public.t'], writes: [], columns: [], functions: [], has_where: true, limit: null, text: '', normalized: '', fingerprint: '' },
      context: { time: '2026-01-01T00:00:00Z', client_addr: '127.0.0.1', session_id: 's' },
    };
  });
}

function compile(text: string): PreparedPolicy {
  const { policy, diagnostics } = compilePolicy([{ file: 'bench.hoop', text }]);
  if (!policy) throw new Error(JSON.stringify(diagnostics.slice(0, 3)));
  return policy;
}

function timeEach(n: number, run: (i: number) => void): number[] {
  const times = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    run(i);
    times[i] = Number(process.hrtime.bigint() - t0);
  }
  return times;
}

async function main(): Promise<void> {
  const reqs = requests(2000);
  const plain = compile(policyText(1000, false));
  const limited = compile(policyText(1000, true));
  let withLimits = 0;
  for (const r of reqs) if (limited.evaluate(r).limits) withLimits++;
  // Warm both, then interleave so neighbours on the box weigh on both alike.
  for (let i = 0; i < 50_000; i++) {
    plain.evaluate(reqs[i % reqs.length]!);
    limited.evaluate(reqs[i % reqs.length]!);
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < 10; round++) {
    a.push(...timeEach(SAMPLES / 10, (i) => plain.evaluate(reqs[i % reqs.length]!)));
    b.push(...timeEach(SAMPLES / 10, (i) => limited.evaluate(reqs[i % reqs.length]!)));
  }
  const p50Plain = percentile(a, 50) / 1000;
  const p50Limited = percentile(b, 50) / 1000;
  // The same, over only the requests that carry limits (where the added work is).
  const carrying = reqs.filter((r) => limited.evaluate(r).limits);
  const a2: number[] = [];
  const b2: number[] = [];
  for (let round = 0; round < 10; round++) {
    a2.push(...timeEach(SAMPLES / 10, (i) => plain.evaluate(carrying[i % carrying.length]!)));
    b2.push(...timeEach(SAMPLES / 10, (i) => limited.evaluate(carrying[i % carrying.length]!)));
  }
  const p50PlainC = percentile(a2, 50) / 1000;
  const p50LimitedC = percentile(b2, 50) / 1000;

  const rl = await openFileRateLimiter(mkdtempSync(join(tmpdir(), 'hoop-bench-rates-')), { flushMs: 20 });
  const subs = Array.from({ length: 200 }, (_, i) => `agent-${i}`);
  const limits = [{ count: 1_000_000, windowMs: 60_000, rule: 'bench.per_minute' }, { count: 1_000_000, windowMs: 1000, rule: 'bench.per_second' }];
  for (let i = 0; i < 20_000; i++) rl.admit(subs[i % 200]!, limits);
  const c = timeEach(SAMPLES, (i) => void rl.admit(subs[i % 200]!, limits));
  await rl.close();
  const p50Rate = percentile(c, 50) / 1000;

  const report = {
    decision_p50_us: { without_limits: round3(p50Plain), with_limits: round3(p50Limited), added: round3(p50Limited - p50Plain), target_added: 1 },
    decisions_with_limits: `${withLimits} of ${reqs.length} requests`,
    carrying_limits_p50_us: { without_limits: round3(p50PlainC), with_limits: round3(p50LimitedC), added: round3(p50LimitedC - p50PlainC) },
    rate_admit_p50_us: { file_store: round3(p50Rate), p99: round3(percentile(c, 99) / 1000), target: 3 },
  };
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(`decision p50 at 1,000 rules: ${report.decision_p50_us.without_limits} µs without limits, ${report.decision_p50_us.with_limits} µs with (${report.decisions_with_limits} carry limits): +${report.decision_p50_us.added} µs (target ≤ 1 µs)\n`);
    process.stdout.write(`  over the requests that carry limits: ${report.carrying_limits_p50_us.without_limits} µs → ${report.carrying_limits_p50_us.with_limits} µs: +${report.carrying_limits_p50_us.added} µs\n`);
    process.stdout.write(`rate-limit admit (file store, 2 limits, 200 identities): p50 ${report.rate_admit_p50_us.file_store} µs, p99 ${report.rate_admit_p50_us.p99} µs (target ≤ 3 µs)\n`);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();
