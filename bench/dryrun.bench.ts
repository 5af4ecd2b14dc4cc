// Dry-run benchmark: throughput of `hoop policy dry-run` (replay/dryrun.ts) over a generated set of
// recorded statements, and its memory.
//
//   npx tsx bench/dryrun.bench.ts            a readable summary
//   npx tsx bench/dryrun.bench.ts --json     the same figures as JSON
//   --statements N                           how many statements to generate (default 1,000,000)
//   --quick                                  100,000 statements (a smoke run)
//   --keep                                   keep the generated recordings (for profiling)
//
// Target (issue 5): ≥ 100,000 statements/s with the classification cache, with flat memory.
//
// The recordings are written with the real recorder (proxy/recording/writer.ts) into a temp dir:
// sessions of a few identities on two resources, statements drawn from ~40 shapes with a small pool
// of literals each (so most texts repeat, as agent traffic does) plus 0.5% one-off texts, each
// recorded with the verdict the example policies give it. The dry-run then replays them under a
// candidate policy: the examples plus one stricter rule, so a share of the decisions change and
// the report has groups and examples to build. Peak RSS is sampled every 50 ms during the run;
// "flat" means the RSS after 10% of the statements and at the end are about the same.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy, loadPolicySources, type PreparedPolicy } from '../engine/index.ts';
import { createSessionRecorder, decisionMasksField } from '../proxy/recording/index.ts';
import { loadReplayClassifiers } from '../replay/classifiers.ts';
import { dryRun } from '../replay/dryrun.ts';
import { recordingFiles } from '../replay/files.ts';
import { readsContext } from '../replay/redecide.ts';
import { NO_CUSTOMER_READS } from '../replay/fixtures.ts';
import type { Identity, Resource } from '../stdlib/facts.ts';
import { rng } from './support.ts';

const argv = process.argv.slice(2);
const json = argv.includes('--json');
const nIdx = argv.indexOf('--statements');
const total = nIdx >= 0 ? Number(argv[nIdx + 1]) : argv.includes('--quick') ? 100_000 : 1_000_000;
const PER_SESSION = 2_000;


// Statement shapes; `#` is replaced by a literal from a small pool (or, rarely, a one-off value).
const SHAPES = [
  'SELECT count(*) FROM orders',
  'SELECT id, total FROM orders WHERE id = #',
  'SELECT id, status, total FROM orders WHERE customer_id = # ORDER BY id',
  "SELECT id, total FROM orders WHERE status = 'paid' ORDER BY id LIMIT #",
  'SELECT id, name, email, tier FROM customers ORDER BY id',
  'SELECT id, name, email, card_number FROM customers WHERE id = #',
  'SELECT c.tier, sum(o.total) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.tier',
  'SELECT date_trunc(\'day\', created_at) AS d, count(*) FROM orders GROUP BY 1 ORDER BY 1 DESC LIMIT #',
  'SELECT * FROM orders WHERE created_at > now() - interval \'# days\'',
  'SELECT name FROM customers WHERE tier = \'gold\' AND id > #',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SET statement_timeout = #',
  'SHOW search_path',
  'EXPLAIN SELECT * FROM orders WHERE id = #',
  "UPDATE orders SET status = 'shipped' WHERE id = #",
  "UPDATE orders SET status = 'refunded'",
  'DELETE FROM orders WHERE id = #',
  'DELETE FROM orders',
  'INSERT INTO orders (id, customer_id, total) VALUES (#, 1, 9.99)',
  'INSERT INTO audit_notes (note) VALUES (\'checked order #\')',
  'CREATE INDEX IF NOT EXISTS orders_status_idx ON orders (status)',
  'DROP TABLE orders',
  'TRUNCATE orders',
  'GRANT ALL ON customers TO PUBLIC',
  'COPY customers FROM STDIN',
  'COPY (SELECT id, total FROM orders) TO STDOUT',
  'ANALYZE orders',
  'VACUUM orders',
  "SELECT pg_sleep(0)",
  'SELECT version()',
  'SELECT current_user, now()',
  'WITH recent AS (SELECT * FROM orders WHERE id > #) SELECT count(*) FROM recent',
  'SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = #',
  'DO $$ BEGIN PERFORM 1; END $$',
  'SET ROLE postgres',
  'SELECT * FROM customers WHERE email = \'user#@example.com\'',
  'MERGE INTO orders o USING (SELECT # AS id) s ON o.id = s.id WHEN MATCHED THEN UPDATE SET status = \'x\'',
  'SELECT id FROM orders ORDER BY total DESC LIMIT #',
];

const IDENTITIES: Identity[] = [
  { sub: 'agent-analytics', groups: ['data-reader'], claims: {} },
  { sub: 'agent-support', groups: ['data-writer'], actor: 'alice@example.com', claims: {} },
  { sub: 'agent-reporting', groups: ['data-reader'], claims: {} },
  { sub: 'dba-maintenance', groups: ['dba'], claims: {} },
];
const RESOURCES: Resource[] = [
  { kind: 'postgres', name: 'prod-main', labels: { env: 'prod' } },
  { kind: 'postgres', name: 'staging-main', labels: { env: 'staging' } },
];

async function compile(files: { file: string; text: string }[]): Promise<PreparedPolicy> {
  const c = compilePolicy(files);
  if (!c.policy) throw new Error(c.diagnostics.map((d) => d.message).join('\n'));
  return c.policy;
}

const examples = await loadPolicySources('examples/policies');
const recorded = await compile(examples.sources);
const candidate = await compile([
  ...examples.sources,
  { file: 'candidate.hoop', text: NO_CUSTOMER_READS },
]);
const classifiers = await loadReplayClassifiers();

// ---------------------------------------------------------------------------------------------
// Generate.

const dir = mkdtempSync(join(tmpdir(), 'hoop-dryrun-bench-'));
const genStart = performance.now();
const random = rng(42);
const recorder = createSessionRecorder({ dir });
let written = 0;
let sessionNo = 0;
const distinct = new Set<string>();
while (written < total) {
  const identity = IDENTITIES[sessionNo % IDENTITIES.length]!;
  const resource = RESOURCES[Math.floor(sessionNo / IDENTITIES.length) % RESOURCES.length]!;
  const start = Date.UTC(2026, 10, 1) + sessionNo * 60_000;
  const sessionId = `bench-${String(sessionNo).padStart(6, '0')}`;
  sessionNo++;
  const rec = await recorder.open({ session_id: sessionId, identity, resource, client_addr: '10.0.0.7', started_at: new Date(start).toISOString() });
  const n = Math.min(PER_SESSION, total - written);
  for (let i = 0; i < n; i++) {
    const shape = SHAPES[Math.floor(random() * SHAPES.length)]!;
    const literal = random() < 0.005 ? String(100_000 + Math.floor(random() * 1e9)) : String(1 + Math.floor(random() * 25));
    const text = shape.replace('#', literal);
    if (distinct.size < 1_000_000) distinct.add(text);
    const time = new Date(start + i * 10).toISOString();
    const [action] = classifiers.sql.classify(text);
    const d = recorded.evaluate({ identity, resource, action: action!, context: { time, client_addr: '10.0.0.7', session_id: sessionId } });
    rec.statement({
      time,
      text,
      protocol: 'simple',
      verdict: d.verdict,
      reasons: d.reasons.map((r) => r.id),
      masks: [],
      ...decisionMasksField(d),
      ...(d.approvers.length ? { approvers: d.approvers } : {}),
      outcome: d.verdict === 'block' ? 'blocked' : d.verdict === 'approve' ? 'pending_approval' : 'executed',
      duration_ms: 0,
      kind: action!.kind,
    });
  }
  await rec.close(new Date(start + n * 10).toISOString());
  written += n;
}
const genSeconds = (performance.now() - genStart) / 1000;
const files = recordingFiles([dir]);
if (!files.ok) throw new Error(files.message);
const bytes = files.files.reduce((s, f) => s + statSync(f).size, 0);

// ---------------------------------------------------------------------------------------------
// Dry-run.

(globalThis as { gc?: () => void }).gc?.();
const rssBefore = process.memoryUsage().rss;
let peak = rssBefore;
let rssAt10: number | undefined;
let seen = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage().rss;
  if (rss > peak) peak = rss;
}, 50);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const result = await dryRun(candidate, classifiers, {
  files: files.files,
  onProgress: (p) => {
    seen = p.statements;
    if (rssAt10 === undefined && seen >= total / 10) rssAt10 = process.memoryUsage().rss;
  },
});
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
clearInterval(sampler);
const rssEnd = process.memoryUsage().rss;
if (rssEnd > peak) peak = rssEnd;
if (!argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
else process.stderr.write(`recordings kept in ${dir}\n`);
if (!result.ok) throw result.error;
const r = result.report;

const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
const out = {
  statements: r.statements,
  sessions: r.sessions,
  files: files.files.length,
  bytes_on_disk: bytes,
  distinct_texts: distinct.size,
  changed: r.changed,
  groups: r.groups.length,
  generate_seconds: Math.round(genSeconds * 10) / 10,
  dry_run_seconds: Math.round(seconds * 100) / 100,
  statements_per_second: Math.round(r.statements / seconds),
  // CPU time of this process (main thread plus the reader's I/O): what the run costs when the
  // machine is shared and wall time mostly measures other processes.
  cpu_seconds: Math.round(cpuSeconds * 100) / 100,
  statements_per_cpu_second: Math.round(r.statements / cpuSeconds),
  target_statements_per_second: 100_000,
  decision_cache: !readsContext(candidate) ? 'on' : 'off (the policy reads context)',
  rss_mb_before: mb(rssBefore),
  rss_mb_at_10_percent: rssAt10 === undefined ? null : mb(rssAt10),
  rss_mb_end: mb(rssEnd),
  rss_mb_peak: mb(peak),
};

if (json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
else {
  process.stdout.write(
    [
      `generated ${out.statements.toLocaleString('en')} statements in ${out.sessions} sessions (${mb(bytes)} MB, ${out.distinct_texts} distinct texts) in ${out.generate_seconds}s`,
      `dry-run: ${out.dry_run_seconds}s → ${out.statements_per_second.toLocaleString('en')} statements/s wall (target ≥ 100,000); ${out.cpu_seconds} CPU-s → ${out.statements_per_cpu_second.toLocaleString('en')} statements per CPU-second; decision cache ${out.decision_cache}`,
      `changed: ${out.changed} in ${out.groups} group(s)`,
      `RSS: ${out.rss_mb_before} MB before, ${out.rss_mb_at_10_percent} MB after 10%, ${out.rss_mb_end} MB at the end, ${out.rss_mb_peak} MB peak`,
    ].join('\n') + '\n',
  );
}
