// Classifier benchmark: what classification adds on the request path.
//
//   npx tsx bench/classify.bench.ts           a readable table
//   npx tsx bench/classify.bench.ts --json    the same figures as JSON
//   --quick                                   fewer samples (a smoke run)
//
// Targets (issue 3): SQL parse+classify p50 ≤ 1.3× bare libpg-query `parseSync` on typical
// statements; a cache hit ≤ 2 µs p50. Also reported: the cost with `normalized` and `fingerprint`
// read (they are computed lazily, on first read, by two more libpg-query passes) and shell
// classification p50 for typical command lines.

import { loadModule, parseSync } from 'libpg-query';
import { loadShellClassifier } from '../stdlib/shell/index.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { percentile } from './support.ts';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const ROUNDS = quick ? 200 : 2000;

const TYPICAL_SQL = [
  'SELECT id, email FROM customers WHERE id = 42',
  "SELECT c.id, c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.created_at > now() - interval '30 days' GROUP BY c.id, c.name ORDER BY 3 DESC LIMIT 20",
  "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = 1001",
  "INSERT INTO events (kind, payload, created_at) VALUES ('login', '{\"ip\": \"10.0.0.1\"}', now())",
  'DELETE FROM sessions WHERE expires_at < now()',
  'WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval \'1 day\') SELECT status, count(*) FROM recent GROUP BY status',
  'SELECT * FROM products WHERE category_id IN (SELECT id FROM categories WHERE parent_id = 3) AND price BETWEEN 10 AND 100',
  'BEGIN',
  "SET statement_timeout = '5s'",
  'SELECT u.id, u.email, p.bio FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.deleted_at IS NULL ORDER BY u.created_at DESC LIMIT 50 OFFSET 100',
];

const TYPICAL_SHELL = [
  'ls -la /var/log',
  'tail -n 100 /var/log/syslog | grep -i error',
  'df -h && free -m',
  'sudo systemctl restart nginx',
  "find /tmp -name '*.log' -mtime +7 -exec rm {} \\;",
  'cat /etc/os-release',
  "ps aux | grep postgres | awk '{print $2}'",
  'git -C /srv/app log --oneline -n 5',
];


/** Nanoseconds per call of `fn(i)`, one sample per call. */
function sampleEach(n: number, fn: (i: number) => void): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

/** Nanoseconds per call for very fast calls: each sample times a batch and divides. */
function sampleBatched(n: number, batch: number, fn: (i: number) => void): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) fn(j);
    out[i] = Number(process.hrtime.bigint() - t0) / batch;
  }
  return out;
}

await loadModule();
const uncached = await loadSqlClassifier({ cacheSize: 0 });
const cached = await loadSqlClassifier();
const shell = await loadShellClassifier();

// Warm up the JIT on every path.
for (let i = 0; i < 300; i++) {
  for (const q of TYPICAL_SQL) {
    parseSync(q);
    const [a] = uncached.classify(q);
    void a!.fingerprint;
    cached.classify(q);
  }
  for (const s of TYPICAL_SHELL) shell.classify(s);
}

interface SqlRow { statement: string; parse_p50_us: number; classify_p50_us: number; ratio: number; full_p50_us: number }
const rows: SqlRow[] = [];
for (const q of TYPICAL_SQL) {
  // Interleave the variants so drift (other processes, GC) affects them alike.
  const parse: number[] = [];
  const classify: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    parse.push(...sampleEach(1, () => parseSync(q)));
    classify.push(...sampleEach(1, () => uncached.classify(q)));
    full.push(...sampleEach(1, () => {
      for (const a of uncached.classify(q)) void (a.normalized.length + a.fingerprint.length);
    }));
  }
  const p = percentile(parse, 50) / 1000;
  const c = percentile(classify, 50) / 1000;
  rows.push({ statement: q, parse_p50_us: p, classify_p50_us: c, ratio: c / p, full_p50_us: percentile(full, 50) / 1000 });
}
const totalParse = rows.reduce((s, r) => s + r.parse_p50_us, 0);
const totalClassify = rows.reduce((s, r) => s + r.classify_p50_us, 0);
const totalFull = rows.reduce((s, r) => s + r.full_p50_us, 0);

const hitSamples = sampleBatched(quick ? 200 : 2000, 100, (j) => cached.classify(TYPICAL_SQL[j % TYPICAL_SQL.length]!));
const shellSamples: number[] = [];
for (let r = 0; r < ROUNDS; r++) for (const s of TYPICAL_SHELL) shellSamples.push(...sampleEach(1, () => shell.classify(s)));

const result = {
  sql: {
    statements: rows,
    parse_p50_us_sum: totalParse,
    classify_p50_us_sum: totalClassify,
    classify_vs_parse: totalClassify / totalParse,
    classify_vs_parse_target: 1.3,
    with_normalized_and_fingerprint_vs_parse: totalFull / totalParse,
    cache_hit_p50_us: percentile(hitSamples, 50) / 1000,
    cache_hit_p99_us: percentile(hitSamples, 99) / 1000,
    cache_hit_target_us: 2,
  },
  shell: {
    lines: TYPICAL_SHELL.length,
    classify_p50_us: percentile(shellSamples, 50) / 1000,
    classify_p99_us: percentile(shellSamples, 99) / 1000,
  },
};

if (json) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const f = (x: number): string => x.toFixed(2).padStart(8);
  process.stdout.write('SQL, per statement (µs, p50)      parse  classify   ratio  +norm+fp\n');
  for (const r of rows) {
    process.stdout.write(`  ${r.statement.slice(0, 30).padEnd(30)} ${f(r.parse_p50_us)} ${f(r.classify_p50_us)} ${f(r.ratio)} ${f(r.full_p50_us)}\n`);
  }
  process.stdout.write(`parse+classify vs parseSync (sum of p50s): ${result.sql.classify_vs_parse.toFixed(2)}× (target ≤ 1.3×)\n`);
  process.stdout.write(`  with normalized + fingerprint read:     ${result.sql.with_normalized_and_fingerprint_vs_parse.toFixed(2)}×\n`);
  process.stdout.write(`cache hit p50: ${result.sql.cache_hit_p50_us.toFixed(3)} µs (target ≤ 2 µs), p99 ${result.sql.cache_hit_p99_us.toFixed(3)} µs\n`);
  process.stdout.write(`shell classify p50: ${result.shell.classify_p50_us.toFixed(1)} µs, p99 ${result.shell.classify_p99_us.toFixed(1)} µs\n`);
}
