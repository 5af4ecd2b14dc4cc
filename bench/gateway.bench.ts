// The gateway's speed as users run it (issue 9): `hoop gateway --config hoop.yaml` in its own
// process with its state directory (audit log, recordings) on the machine's disk, beside the same
// gateway with its state on tmpfs, the realistic policy with masking, a bare Node.js relay (the
// floor for any Node.js proxy), pgbouncer (session pooling) and pgpool-II (streaming mode, one
// backend; it parses every statement). pgbench runs against each, and against PostgreSQL directly,
// round-robin in one run, so drift on a shared machine hits every target alike. Reported: tps and
// the ratio to direct, each proxy's CPU per transaction (from /proc/<pid>/stat of its processes,
// children included, over each run: steadier than throughput on a noisy machine), the `SELECT 1`
// round-trip p50 over one connection, and the issue's targets, each met or MISSED.
//
//   npx tsx bench/gateway.bench.ts [--json] [--quick] [--rounds N] [--seconds S] [--state-dir DIR] [--write-doc]
//
// The on-disk state directory is under the system's temporary directory unless that is a memory
// filesystem (then under the repository's .bench-state/), or --state-dir. Its filesystem is printed.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../proxy/postgres/test-support.ts';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { treeCpuSeconds } from './proc-cpu.ts';
import { filesystemOf, MEMORY_FILESYSTEMS, startHoopGateway, startNodeRelay, startPgbouncer, startPgpool, type Proxy } from './proxies.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const opt = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (flag: string, def: number): number => {
  const v = opt(flag);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} expects a positive number, got ${JSON.stringify(v)}`);
  return n;
};
const ROUNDS = num('--rounds', quick ? 1 : 3);
const SECONDS = num('--seconds', quick ? 3 : 5);
/**
 * `--disk-vs-tmpfs`: only direct and the allow-all gateway with its state on disk and on tmpfs (the
 * durability target, on a machine too busy for the whole run); no latency blocks. Not for --write-doc.
 */
const DISK_VS_TMPFS = args.includes('--disk-vs-tmpfs');
// `--baseline DIR`: also the allow-all gateways (disk, tmpfs) of the checkout in DIR, e.g. the commit before a change.
if (DISK_VS_TMPFS && args.includes('--write-doc')) throw new Error('--disk-vs-tmpfs measures a subset: it does not rewrite docs/performance.md');
const CLIENTS = 8;
const LATENCY_N = quick ? 2000 : 5000;

const ALLOW_ALL = 'package bench\ndefault allow\n';

const REALISTIC = `package bench
default block "no rule allows this statement"

rule readers {
  when groups ["data-reader", "data-writer"]
  match sql read
  allow
}

rule writers {
  when group "data-writer"
  match sql insert, update, delete
  if \`sql.has_where || sql.kind == "insert"\`
  allow
}

rule housekeeping {
  match sql transaction, set, explain
  allow
}

rule no_unbounded_writes {
  match sql update, delete
  if \`!sql.has_where\`
  block "UPDATE/DELETE without WHERE is not allowed"
}

rule mask_customer_pii {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with redact
}

rule mask_detected_pii {
  match sql read
  mask detect credit_card, us_ssn with redact
}
`;

const GW_DISK = 'gateway (allow-all, disk)';
const GW_TMPFS = 'gateway (allow-all, tmpfs)';
const GW_REAL = 'gateway (realistic + masking, disk)';
const RELAY = 'node relay (floor)';

interface Target {
  name: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** A proxy: its process tree's CPU is measured over each run. */
  pid?: number;
}

type Workload = { name: string; args: string[]; selectOnly: boolean };

const WORKLOADS: Workload[] = [
  { name: 'select-only simple', args: ['-S', '-M', 'simple'], selectOnly: true },
  { name: 'select-only extended', args: ['-S', '-M', 'extended'], selectOnly: true },
  { name: 'tpcb-like simple', args: ['-b', 'tpcb-like', '-M', 'simple'], selectOnly: false },
];

/** One pgbench run: for `length.seconds`, or `length.transactions` per client. */
async function pgbench(cluster: Cluster, t: Target, w: Workload, length: { seconds: number } | { transactions: number }): Promise<{ tps: number; failed: number; cpuPerTxUs?: number }> {
  const cpu0 = t.pid !== undefined ? treeCpuSeconds(t.pid) : 0;
  const r = await run(
    join(cluster.binDir, 'pgbench'),
    [...w.args, '-n', '-c', String(CLIENTS), '-j', '2', ...('seconds' in length ? ['-T', String(length.seconds)] : ['-t', String(length.transactions)]), '-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, t.database],
    { env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' } },
  );
  const cpu = t.pid !== undefined ? treeCpuSeconds(t.pid) - cpu0 : 0;
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (r.code !== 0 || !tps || processed === 0) throw new Error(`pgbench ${w.name} via ${t.name} failed (exit ${r.code}): ${r.stderr.slice(0, 500)} ${r.stdout.slice(-800)}`);
  return { tps: Number(tps[1]), failed: Number(failed?.[1] ?? 0), ...(t.pid !== undefined ? { cpuPerTxUs: (cpu * 1e6) / processed } : {}) };
}

/**
 * Per-query round-trip times of `SELECT 1` (simple protocol) over one connection, in µs, measured
 * by a client in its own process (as a real client is).
 */
async function latencies(t: Target, n: number): Promise<number[]> {
  const script = `
    import pg from 'pg';
    const c = new pg.Client(JSON.parse(process.argv[1]));
    await c.connect();
    for (let i = 0; i < 200; i++) await c.query('SELECT 1');
    const out = [];
    for (let i = 0; i < ${n}; i++) {
      const t0 = process.hrtime.bigint();
      await c.query('SELECT 1');
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    await c.end();
    process.stdout.write(JSON.stringify(out));
  `;
  const config = JSON.stringify({ host: '127.0.0.1', port: t.port, user: t.user, password: t.password, database: t.database });
  const r = await run(process.execPath, ['--input-type=module', '-e', script, config], { cwd: join(import.meta.dirname, '..'), maxBuffer: 64 * 1024 * 1024 });
  if (r.code !== 0) throw new Error(`latency client for ${t.name} failed: ${r.stderr.slice(0, 500)}`);
  return JSON.parse(r.stdout) as number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

interface Report {
  date: string;
  cpus: number;
  load_average: { before: number; after: number };
  rounds: number;
  seconds: number;
  clients: number;
  state_dir: { path: string; filesystem: string; device: string };
  results: { workload: string; direct_tps: number; targets: { target: string; tps: number; ratio: number; failed: number; proxy_cpu_us_per_tx?: number }[] }[];
  latency: { target: string; p50_us: number; added_p50_us: number }[];
}

/** The issue's targets (allow-all, state on disk, 8 clients), each checked against this run. */
function targetLines(r: Report): string[] {
  const out: string[] = [];
  const row = (workload: string, target: string) => r.results.find((w) => w.workload === workload)?.targets.find((t) => t.target === target);
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  for (const [workload, min] of [['select-only simple', 0.3], ['select-only extended', 0.4], ['tpcb-like simple', 0.4]] as const) {
    const g = row(workload, GW_DISK);
    if (g) out.push(`${workload}: gateway ≥ ${min.toFixed(2)}× direct: ${g.ratio.toFixed(2)}× ${verdict(g.ratio >= min)}`);
  }
  const lat = r.latency.find((l) => l.target === GW_DISK);
  if (lat) out.push(`SELECT 1 added p50 ≤ 150 µs: +${lat.added_p50_us} µs ${verdict(lat.added_p50_us <= 150)}`);
  for (const w of WORKLOADS.filter((x) => x.selectOnly)) {
    const g = row(w.name, GW_DISK);
    const f = row(w.name, RELAY);
    if (g?.proxy_cpu_us_per_tx !== undefined && f?.proxy_cpu_us_per_tx) {
      const x = g.proxy_cpu_us_per_tx / f.proxy_cpu_us_per_tx;
      out.push(`${w.name}: gateway CPU per transaction ≤ 2× the bare relay's: ${g.proxy_cpu_us_per_tx} vs ${f.proxy_cpu_us_per_tx} µs (${x.toFixed(2)}×) ${verdict(x <= 2)}`);
    }
  }
  for (const w of WORKLOADS) {
    const real = row(w.name, GW_REAL);
    const allow = row(w.name, GW_DISK);
    if (real && allow) {
      const x = real.tps / allow.tps;
      out.push(`${w.name}: realistic policy with masking ≥ 0.8× allow-all: ${x.toFixed(2)}× ${verdict(x >= 0.8)}`);
    }
  }
  for (const w of WORKLOADS) {
    const disk = row(w.name, GW_DISK);
    const mem = row(w.name, GW_TMPFS);
    if (disk && mem) {
      const x = disk.tps / mem.tps;
      out.push(`${w.name}: durability commit, state on disk within 15% of tmpfs: ${x.toFixed(2)}× ${verdict(x >= 0.85)}`);
    }
  }
  return out;
}

/** What the gateway adds per transaction on top of the bare relay, in CPU. */
function costLines(r: Report): string[] {
  return r.results.flatMap((w) => {
    const g = w.targets.find((t) => t.target === GW_DISK)?.proxy_cpu_us_per_tx;
    const f = w.targets.find((t) => t.target === RELAY)?.proxy_cpu_us_per_tx;
    return g !== undefined && f !== undefined ? [`${w.workload}: gateway ${g} µs CPU per transaction = relay ${f} + ${g - f} µs of its own work`] : [];
  });
}

const DOC = join(import.meta.dirname, '..', 'docs', 'performance.md');
const BEGIN = '<!-- gateway-bench:begin -->';
const END = '<!-- gateway-bench:end -->';

/** Replaces the gateway section of docs/performance.md (between the markers) with this run. */
function writeDoc(r: Report): void {
  const rows = r.results.flatMap((w) => [
    `| ${w.workload} | direct | ${w.direct_tps} | 1.00× | |`,
    ...w.targets.map((t) => `| ${w.workload} | ${t.target} | ${t.tps} | ${t.ratio.toFixed(2)}× | ${t.proxy_cpu_us_per_tx ?? ''} |`),
  ]);
  const lat = r.latency.map((l) => `| ${l.target} | ${l.p50_us} | +${l.added_p50_us} |`);
  const section = [
    BEGIN,
    `Last run: ${r.date}, ${r.cpus} CPUs, load average ${r.load_average.before} → ${r.load_average.after}; pgbench ${r.clients} clients, ${r.seconds}s × ${r.rounds} rounds interleaved (median); gateway state on ${r.state_dir.filesystem} (${r.state_dir.device}).`,
    '',
    '| workload | target | tps | ratio to direct | proxy CPU µs/tx |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows,
    '',
    '`SELECT 1` round trip over one connection (pg driver in its own process, simple protocol), p50:',
    '',
    '| target | p50 µs | added over direct |',
    '| --- | ---: | ---: |',
    ...lat,
    '',
    "Against the issue's targets (allow-all, state on disk, 8 clients):",
    '',
    ...targetLines(r).map((l) => `- ${l}`),
    '',
    'CPU on top of the bare relay:',
    '',
    ...costLines(r).map((l) => `- ${l}`),
    END,
  ].join('\n');
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Performance\n';
  if (doc.includes(BEGIN) && doc.includes(END)) doc = doc.slice(0, doc.indexOf(BEGIN)) + section + doc.slice(doc.indexOf(END) + END.length);
  else doc = `${doc.trimEnd()}\n\n## Gateway (bench/gateway.bench.ts)\n\n${section}\n`;
  writeFileSync(DOC, doc);
}

/** A directory on the machine's disk for the gateway's state (not a memory filesystem). */
function diskStateRoot(): string {
  const asked = opt('--state-dir');
  if (asked) {
    mkdirSync(asked, { recursive: true });
    return mkdtempSync(join(resolve(asked), 'hoop-bench-'));
  }
  if (!MEMORY_FILESYSTEMS.has(filesystemOf(tmpdir()).type)) return mkdtempSync(join(tmpdir(), 'hoop-bench-'));
  const local = join(import.meta.dirname, '..', '.bench-state');
  mkdirSync(local, { recursive: true });
  return mkdtempSync(join(local, 'hoop-bench-'));
}

async function main(): Promise<void> {
  const cluster = await startCluster({ config: ['max_connections = 300'] });
  const diskRoot = diskStateRoot();
  const memRoot = existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', 'hoop-bench-')) : undefined;
  const fs = filesystemOf(diskRoot);
  if (MEMORY_FILESYSTEMS.has(fs.type)) throw new Error(`the on-disk state directory ${diskRoot} is on ${fs.type}; pass --state-dir on a disk`);
  const proxies: Proxy[] = [];
  const log = (line: string) => void (!json && process.stderr.write(line + '\n'));
  try {
    const init = await run(join(cluster.binDir, 'pgbench'), ['-i', '-q', '-s', '8', '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'app', 'app'], {
      env: { ...process.env, PGPASSWORD: cluster.appUser.password },
    });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);

    log(`gateway state on ${fs.type} (${fs.device}) at ${diskRoot}${memRoot ? `; tmpfs row at ${memRoot}` : ''}`);
    if (!DISK_VS_TMPFS) proxies.push(await startNodeRelay(cluster));
    proxies.push(await startHoopGateway(cluster, { name: GW_DISK, state: join(diskRoot, 'allow'), policy: ALLOW_ALL }));
    if (memRoot) proxies.push(await startHoopGateway(cluster, { name: GW_TMPFS, state: join(memRoot, 'allow'), policy: ALLOW_ALL }));
    const baseline = opt('--baseline');
    if (baseline) {
      // The same two gateways from another checkout (an earlier commit), interleaved with these.
      proxies.push(await startHoopGateway(cluster, { name: `${GW_DISK} @baseline`, state: join(diskRoot, 'allow-baseline'), policy: ALLOW_ALL, repo: baseline }));
      if (memRoot) proxies.push(await startHoopGateway(cluster, { name: `${GW_TMPFS} @baseline`, state: join(memRoot, 'allow-baseline'), policy: ALLOW_ALL, repo: baseline }));
    }
    if (!DISK_VS_TMPFS) {
      proxies.push(await startHoopGateway(cluster, { name: GW_REAL, state: join(diskRoot, 'realistic'), policy: REALISTIC }));
      if (existsSync('/usr/sbin/pgbouncer')) proxies.push(await startPgbouncer(cluster));
      else log('pgbouncer not installed (Debian package pgbouncer): its rows are left out');
      if (existsSync('/usr/sbin/pgpool')) proxies.push(await startPgpool(cluster));
      else log('pgpool-II not installed (Debian package pgpool2): its rows are left out');
    }

    const targets: Target[] = [
      { name: 'direct', port: cluster.port, user: 'app', password: cluster.appUser.password, database: 'app' },
      ...proxies.map((p) => ({ name: p.name, port: p.port, user: p.user, password: p.password, database: p.database, pid: p.pid })),
    ];

    const tps = new Map<string, number[]>();
    const cpuPerTx = new Map<string, number[]>();
    const failures = new Map<string, number>();
    const loadBefore = loadavg()[0]!;
    // Warm-up (not recorded): JIT, classification and catalog caches, pgpool's connection cache.
    // By transactions, not time: a gateway's CPU per statement settles after ~10,000 statements
    // (V8 optimises its hot path), which takes a while at a cold gateway's speed on a busy machine.
    for (const t of targets.filter((x) => x.pid !== undefined)) {
      const gateway = t.name.startsWith('gateway');
      for (const w of WORKLOADS) await pgbench(cluster, t, w, { transactions: (gateway ? (quick ? 600 : 1500) : 200) / (w.selectOnly ? 1 : 5) });
      log(`warmed up ${t.name}`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of WORKLOADS) {
        for (const t of targets) {
          const r = await pgbench(cluster, t, w, { seconds: SECONDS });
          const key = `${w.name}|${t.name}`;
          tps.set(key, [...(tps.get(key) ?? []), r.tps]);
          if (r.cpuPerTxUs !== undefined) cpuPerTx.set(key, [...(cpuPerTx.get(key) ?? []), r.cpuPerTxUs]);
          failures.set(key, (failures.get(key) ?? 0) + r.failed);
          log(`round ${round + 1} ${w.name.padEnd(22)} ${t.name.padEnd(38)} ${r.tps.toFixed(0).padStart(6)} tps${r.cpuPerTxUs !== undefined ? `  ${r.cpuPerTxUs.toFixed(0)} µs CPU/tx` : ''}`);
        }
      }
    }

    // Latency: interleaved blocks so every target sees the same machine.
    const lat = new Map<string, number[]>();
    const latTargets = targets.filter((t) => t.name !== GW_REAL);
    for (let block = 0; block < (DISK_VS_TMPFS ? 0 : 4); block++) {
      for (const t of latTargets) lat.set(t.name, [...(lat.get(t.name) ?? []), ...(await latencies(t, LATENCY_N / 4))]);
    }
    const directP50 = DISK_VS_TMPFS ? 0 : median(lat.get('direct')!);

    const results = WORKLOADS.map((w) => {
      const direct = median(tps.get(`${w.name}|direct`)!);
      return {
        workload: w.name,
        direct_tps: Math.round(direct),
        targets: targets
          .filter((t) => t.name !== 'direct')
          .map((t) => {
            const v = median(tps.get(`${w.name}|${t.name}`)!);
            const cpu = cpuPerTx.get(`${w.name}|${t.name}`);
            return {
              target: t.name,
              tps: Math.round(v),
              ratio: Number((v / direct).toFixed(3)),
              failed: failures.get(`${w.name}|${t.name}`) ?? 0,
              ...(cpu ? { proxy_cpu_us_per_tx: Math.round(median(cpu)) } : {}),
            };
          }),
      };
    });
    const latency = (DISK_VS_TMPFS ? [] : latTargets).map((t) => ({ target: t.name, p50_us: Number(median(lat.get(t.name)!).toFixed(1)), added_p50_us: Number((median(lat.get(t.name)!) - directP50).toFixed(1)) }));
    const report: Report = {
      date: new Date().toISOString(),
      cpus: cpus().length,
      load_average: { before: Number(loadBefore.toFixed(1)), after: Number(loadavg()[0]!.toFixed(1)) },
      rounds: ROUNDS,
      seconds: SECONDS,
      clients: CLIENTS,
      state_dir: { path: diskRoot, filesystem: fs.type, device: fs.device },
      results,
      latency,
    };
    if (args.includes('--write-doc')) writeDoc(report);

    if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else {
      process.stdout.write(`\nload average ${report.load_average.before} → ${report.load_average.after} on ${report.cpus} CPUs; gateway state on ${fs.type} (${fs.device})\n`);
      process.stdout.write(`pgbench, ${CLIENTS} clients, ${SECONDS}s × ${ROUNDS} rounds (median tps; ratio to direct; CPU of the proxy's processes per transaction)\n`);
      for (const r of results) {
        process.stdout.write(`  ${r.workload.padEnd(22)} direct ${String(r.direct_tps).padStart(7)} tps\n`);
        for (const t of r.targets) {
          const cpu = t.proxy_cpu_us_per_tx !== undefined ? `  CPU ${t.proxy_cpu_us_per_tx} µs/tx` : '';
          process.stdout.write(`    ${t.target.padEnd(38)} ${String(t.tps).padStart(7)} tps  ${t.ratio.toFixed(2)}×${cpu}${t.failed ? `  (${t.failed} failed)` : ''}\n`);
        }
      }
      process.stdout.write(`\nSELECT 1 round trip, p50 (${LATENCY_N} queries, one connection)\n`);
      for (const l of latency) process.stdout.write(`  ${l.target.padEnd(38)} ${l.p50_us.toFixed(1)} µs  (+${l.added_p50_us.toFixed(1)} µs)\n`);
      process.stdout.write(`\ntargets (allow-all, state on disk):\n${targetLines(report).map((l) => `  ${l}`).join('\n')}\n`);
      process.stdout.write(`\n${costLines(report).join('\n')}\n`);
    }
  } finally {
    for (const p of proxies.reverse()) await p.stop().catch(() => undefined);
    await cluster.stop();
    rmSync(diskRoot, { recursive: true, force: true });
    if (memRoot) rmSync(memRoot, { recursive: true, force: true });
  }
}

await main();
