// The gateway's speed, measured the way a user would feel it: pgbench against PostgreSQL directly,
// through the gateway (allow-all policy; a realistic policy with masks and detectors), and through
// pgbouncer (session pooling, the reference C proxy), interleaved round by round so drift on a
// shared machine hits every target alike. Reports throughput ratios to direct and the added p50
// latency of `SELECT 1`.
//
//   npx tsx bench/gateway.bench.ts [--json] [--quick] [--rounds N] [--seconds S] [--write-doc]
//
// The audit log and recordings live on tmpfs (/dev/shm) here: the bench measures the gateway's
// CPU per statement; a disk's fsync latency would be measured instead otherwise (see the doc).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createResultMasker } from '../proxy/masking/index.ts';
import { ALLOW_ALL, run, startTestGateway, type TestGateway } from '../proxy/postgres/test-support.ts';
import { freePort, startCluster, type Cluster } from '../testing/pg-cluster.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const num = (flag: string, def: number): number => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROUNDS = num('--rounds', quick ? 1 : 3);
const SECONDS = num('--seconds', quick ? 3 : 5);
const CLIENTS = 8;
const LATENCY_N = quick ? 2000 : 5000;

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

interface Target {
  name: string;
  /** Runs in this process, so the process's CPU time during its runs is its cost. */
  inProcess?: boolean;
  port: number;
  user: string;
  password: string;
  database: string;
}

type Workload = { name: string; args: string[] };

const WORKLOADS: Workload[] = [
  { name: 'select-only simple', args: ['-S', '-M', 'simple'] },
  { name: 'select-only extended', args: ['-S', '-M', 'extended'] },
  { name: 'tpcb-like simple', args: ['-b', 'tpcb-like', '-M', 'simple'] },
];

const isRoot = process.getuid?.() === 0;

async function startPgbouncer(cluster: Cluster, dir: string): Promise<{ port: number; stop(): void }> {
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'userlist.txt');
  writeFileSync(users, `"${cluster.appUser.user}" "${cluster.appUser.password}"\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `bench = host=127.0.0.1 port=${cluster.port} dbname=app`,
      '[pgbouncer]',
      `listen_addr = 127.0.0.1`,
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      `auth_type = plain`,
      `auth_file = ${users}`,
      `pool_mode = session`,
      `max_client_conn = 200`,
      `default_pool_size = 50`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    for (const f of [dir, ini, users]) chownSync(f, uid, gid);
  }
  const bin = '/usr/sbin/pgbouncer';
  const child: ChildProcess = isRoot ? spawn('runuser', ['-u', 'postgres', '--', bin, ini], { stdio: 'ignore' }) : spawn(bin, [ini], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', 'SELECT 1', `host=127.0.0.1 port=${port} dbname=bench user=${cluster.appUser.user} password=${cluster.appUser.password}`]);
    if (r.code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop: () => {
      try {
        execFileSync('pkill', ['-F', join(dir, 'pgbouncer.pid')]);
      } catch {
        child.kill('SIGKILL');
      }
    },
  };
}

/**
 * The floor for any Node.js proxy on this machine: a byte relay (socket.pipe both ways, no
 * framing, no policy, no audit). The gateway's distance to it is the price of what it does per
 * statement; its distance to direct is Node's own socket cost.
 */
async function startNodeRelay(upstreamPort: number): Promise<{ port: number; close(): void }> {
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, close: () => server.close() };
}

async function pgbench(cluster: Cluster, t: Target, w: Workload): Promise<{ tps: number; failed: number; cpuPerTxUs?: number }> {
  // The gateways run in this process: its CPU time during a gateway run is the gateway's cost
  // (a steadier measure than throughput on a shared machine).
  const cpu0 = process.cpuUsage();
  const r = await run(
    join(cluster.binDir, 'pgbench'),
    [...w.args, '-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-h', '127.0.0.1', '-p', String(t.port), '-U', t.user, t.database],
    { env: { ...process.env, PGPASSWORD: t.password, PGSSLMODE: 'disable' } },
  );
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  const cpu = process.cpuUsage(cpu0);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (r.code !== 0 || !tps || processed === 0) throw new Error(`pgbench ${w.name} via ${t.name} failed (exit ${r.code}): ${r.stderr.slice(0, 500)} ${r.stdout.slice(-800)}`);
  return {
    tps: Number(tps[1]),
    failed: Number(failed?.[1] ?? 0),
    ...(t.inProcess ? { cpuPerTxUs: (cpu.user + cpu.system) / processed } : {}),
  };
}

/**
 * Per-query round-trip times of `SELECT 1` (simple protocol) over one connection, in µs, measured
 * by a client in its own process (as a real client is): a client inside this process would share
 * the gateway's event loop, so its own work and the gateway's would add up serially.
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

const p50 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const median = p50;

interface Report {
  date: string;
  cpus: number;
  load_average: { before: number; after: number };
  rounds: number;
  seconds: number;
  clients: number;
  results: { workload: string; direct_tps: number; targets: { target: string; tps: number; ratio: number; failed: number; proxy_cpu_us_per_tx?: number }[] }[];
  latency: { target: string; p50_us: number; added_p50_us: number }[];
}

/** The issue's targets, checked against one run: the gateway's ratio ≥ pgbouncer's; SELECT 1 added p50 ≤ 60 µs. */
function targetLines(r: Report): string[] {
  const out: string[] = [];
  for (const w of r.results) {
    const bouncer = w.targets.find((t) => t.target.startsWith('pgbouncer'));
    const gateway = w.targets.find((t) => t.target === 'gateway (allow-all)');
    const floor = w.targets.find((t) => t.target.startsWith('node relay'));
    if (!bouncer || !gateway) continue;
    const verdict = gateway.ratio >= bouncer.ratio ? 'met' : 'MISSED';
    out.push(`target ${w.workload}: gateway ratio ≥ pgbouncer's: ${gateway.ratio.toFixed(2)}× vs ${bouncer.ratio.toFixed(2)}× ${verdict}${floor ? ` (bare Node relay ${floor.ratio.toFixed(2)}×)` : ''}`);
  }
  const lat = (name: string) => r.latency.find((l) => l.target.startsWith(name));
  const g = lat('gateway');
  if (g) {
    const floor = lat('node relay');
    out.push(`target SELECT 1 added p50 ≤ 60 µs: +${g.added_p50_us} µs ${g.added_p50_us <= 60 ? 'met' : 'MISSED'}${floor ? ` (bare Node relay +${floor.added_p50_us} µs)` : ''}`);
  }
  return out;
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
    `Last run: ${r.date}, ${r.cpus} CPUs, load average ${r.load_average.before} → ${r.load_average.after}; pgbench ${r.clients} clients, ${r.seconds}s × ${r.rounds} rounds interleaved (median).`,
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
    'Against the issue\'s targets:',
    '',
    ...targetLines(r).map((l) => `- ${l}`),
    END,
  ].join('\n');
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Performance\n';
  if (doc.includes(BEGIN) && doc.includes(END)) doc = doc.slice(0, doc.indexOf(BEGIN)) + section + doc.slice(doc.indexOf(END) + END.length);
  else doc = `${doc.trimEnd()}\n\n## Gateway (bench/gateway.bench.ts)\n\n${section}\n`;
  writeFileSync(DOC, doc);
}

async function main(): Promise<void> {
  const cluster = await startCluster({ config: ['max_connections = 300'] });
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-'));
  const gateways: TestGateway[] = [];
  let bouncer: { port: number; stop(): void } | undefined;
  let relay: { port: number; close(): void } | undefined;
  const masker = createResultMasker({
    catalogFor: () => ({ connection: { host: '127.0.0.1', port: cluster.port, user: cluster.appUser.user, password: cluster.appUser.password, database: 'app' } }),
  });
  try {
    const init = await run(join(cluster.binDir, 'pgbench'), ['-i', '-q', '-s', '8', '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'app', 'app'], {
      env: { ...process.env, PGPASSWORD: cluster.appUser.password },
    });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);

    const allow = await startTestGateway(cluster, ALLOW_ALL, {}, 'bench');
    const realistic = await startTestGateway(cluster, REALISTIC, { masker }, 'bench');
    gateways.push(allow, realistic);
    for (const g of gateways) g.audit.keepRecords = false;
    relay = await startNodeRelay(cluster.port);
    const hasBouncer = existsSync('/usr/sbin/pgbouncer');
    if (hasBouncer) bouncer = await startPgbouncer(cluster, mkdtempSync(join(tmpdir(), 'hoop-pgb-')));

    const targets: Target[] = [
      { name: 'direct', port: cluster.port, user: 'app', password: cluster.appUser.password, database: 'app' },
      { name: 'node relay (floor)', inProcess: true, port: relay.port, user: 'app', password: cluster.appUser.password, database: 'app' },
      { name: 'gateway (allow-all)', inProcess: true, port: allow.gateway.postgresPort, user: 'agent', password: await allow.issuer.mint({ sub: 'bench', groups: ['data-writer'], ttlMs: 3_000_000 }), database: 'bench' },
      { name: 'gateway (realistic + masking)', inProcess: true, port: realistic.gateway.postgresPort, user: 'agent', password: await realistic.issuer.mint({ sub: 'bench', groups: ['data-writer'], ttlMs: 3_000_000 }), database: 'bench' },
      ...(bouncer ? [{ name: 'pgbouncer (session)', port: bouncer.port, user: 'app', password: cluster.appUser.password, database: 'bench' }] : []),
    ];

    const tps = new Map<string, number[]>();
    const cpuPerTx = new Map<string, number[]>();
    const failures = new Map<string, number>();
    const loadBefore = loadavg()[0]!;
    // Warm-up (not recorded): JIT, classification cache, catalog cache, connection paths.
    for (const t of targets.filter((x) => x.name.startsWith('gateway'))) {
      for (const w of WORKLOADS) await pgbench(cluster, t, w);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of WORKLOADS) {
        for (const t of targets) {
          const r = await pgbench(cluster, t, w);
          const key = `${w.name}|${t.name}`;
          tps.set(key, [...(tps.get(key) ?? []), r.tps]);
          if (r.cpuPerTxUs !== undefined) cpuPerTx.set(key, [...(cpuPerTx.get(key) ?? []), r.cpuPerTxUs]);
          failures.set(key, (failures.get(key) ?? 0) + r.failed);
          if (!json) process.stderr.write(`round ${round + 1} ${w.name.padEnd(22)} ${t.name.padEnd(30)} ${r.tps.toFixed(0)} tps\n`);
        }
      }
    }

    // Latency: interleaved blocks so both see the same machine.
    const lat = new Map<string, number[]>();
    const latTargets = targets.filter((t) => t.name !== 'gateway (realistic + masking)');
    for (let block = 0; block < 4; block++) {
      for (const t of latTargets) lat.set(t.name, [...(lat.get(t.name) ?? []), ...(await latencies(t, LATENCY_N / 4))]);
    }
    const directP50 = p50(lat.get('direct')!);

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
    const latency = latTargets.map((t) => ({ target: t.name, p50_us: Number(p50(lat.get(t.name)!).toFixed(1)), added_p50_us: Number((p50(lat.get(t.name)!) - directP50).toFixed(1)) }));
    const report = {
      date: new Date().toISOString(),
      cpus: cpus().length,
      load_average: { before: Number(loadBefore.toFixed(1)), after: Number(loadavg()[0]!.toFixed(1)) },
      rounds: ROUNDS,
      seconds: SECONDS,
      clients: CLIENTS,
      results,
      latency,
    };
    if (args.includes('--write-doc')) writeDoc(report);

    if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else {
      process.stdout.write(`\nload average ${report.load_average.before} → ${report.load_average.after} on ${report.cpus} CPUs\n`);
      process.stdout.write(`pgbench, ${CLIENTS} clients, ${SECONDS}s × ${ROUNDS} rounds (median tps; ratio to direct)\n`);
      for (const r of results) {
        process.stdout.write(`  ${r.workload.padEnd(22)} direct ${String(r.direct_tps).padStart(7)} tps\n`);
        for (const t of r.targets) {
          const cpu = 'proxy_cpu_us_per_tx' in t ? `  CPU ${t.proxy_cpu_us_per_tx} µs/tx` : '';
          process.stdout.write(`    ${t.target.padEnd(32)} ${String(t.tps).padStart(7)} tps  ${t.ratio.toFixed(2)}×${cpu}${t.failed ? `  (${t.failed} failed)` : ''}\n`);
        }
      }
      process.stdout.write(`\nSELECT 1 round trip, p50 (${LATENCY_N} queries, one connection)\n`);
      for (const l of latency) process.stdout.write(`  ${l.target.padEnd(32)} ${l.p50_us.toFixed(1)} µs  (+${l.added_p50_us.toFixed(1)} µs)\n`);
      process.stdout.write(`\n${targetLines(report).join('\n')}\n`);
    }
  } finally {
    for (const g of gateways) await g.close();
    await masker.close();
    bouncer?.stop();
    relay?.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
