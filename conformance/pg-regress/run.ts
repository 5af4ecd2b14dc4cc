// `npm run conformance:pg-regress`: PostgreSQL's own regression suite as a differential.
//
// The suite comes from Debian's source package of the installed server (conformance/pg-regress/
// setup.ts), and runs with the installed pg_regress exactly as `make installcheck` runs it
// (`--schedule=parallel_schedule --max-connections=1`, so in schedule order, one file at a time),
// three times, each against a throwaway PostgreSQL 15 cluster of its own with a fresh `regression`
// database made the way pg_regress makes it:
//
//   direct         straight to the server; compared by pg_regress with PostgreSQL's expected output
//   allow-unknown  through the gateway, a policy allowing every statement kind including `unknown`
//   allow-all      through the gateway, a policy allowing every statement kind (`match sql`),
//                  which leaves `unknown` (statements that do not parse) to the default block
//
// Each gateway run's output file is compared with the direct run's, and every differing hunk is
// given a reason (compare.ts). Progress goes to stderr; the summary table (or, with --json, a
// JSON document) to stdout. Exit status 1 when the direct run does not match PostgreSQL's
// expectations, when allow-unknown differs from direct at all, or when allow-all differs for any
// reason other than refusing unknown statements.
//
// Options: --json; --markdown (the tables of docs/conformance.md); --runs direct,allow-unknown,allow-all (direct is always run); --tests a,b,c
// (a subset, in this order, instead of the schedule); --work DIR (default $TMPDIR/hoop-pg-regress,
// emptied first, left in place for inspection: each run's results/ and regression.diffs).

import { spawn, execFileSync } from 'node:child_process';
import { chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { startTestGateway, type TestGateway } from '../../proxy/postgres/test-support.ts';
import { compareFiles, POLICY_BLOCK_MESSAGE, UNKNOWN_REFUSAL, type FileComparison } from './compare.ts';
import { buildModules, cacheRoot, ensurePackages, fetchSuite, pgRegressBinary, PG_LIB_DIR, readSchedule } from './setup.ts';

const POLICY_ALLOW_ALL = `package regress
default block "${POLICY_BLOCK_MESSAGE}"
rule all_sql { match sql allow }
`;
const POLICY_ALLOW_UNKNOWN = `${POLICY_ALLOW_ALL}rule unknown_too { match sql unknown allow }
`;

type RunName = 'direct' | 'allow-unknown' | 'allow-all';
const POLICIES: Record<Exclude<RunName, 'direct'>, string> = { 'allow-unknown': POLICY_ALLOW_UNKNOWN, 'allow-all': POLICY_ALLOW_ALL };

interface RunResult {
  name: RunName;
  wallMs: number;
  /** pg_regress's verdict per test against PostgreSQL's expected output: ok, FAILED, failed (ignored). */
  verdicts: Record<string, string>;
  outputDir: string;
  exitCode: number;
}

const log = (line: string) => process.stderr.write(`pg-regress: ${line}\n`);

function parseArgs(argv: string[]) {
  const opts = { compareOnly: false, json: false, markdown: false, runs: ['direct', 'allow-unknown', 'allow-all'] as RunName[], tests: undefined as string[] | undefined, work: join(tmpdir(), 'hoop-pg-regress') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') opts.json = true;
    else if (a === '--compare-only') opts.compareOnly = true;
    else if (a === '--markdown') opts.markdown = true;
    else if (a.startsWith('--runs')) {
      const runs = value().split(',').filter(Boolean);
      for (const r of runs) if (!['direct', 'allow-unknown', 'allow-all'].includes(r)) throw new Error(`unknown run ${r}`);
      opts.runs = ['direct', ...runs.filter((r) => r !== 'direct')] as RunName[];
    } else if (a.startsWith('--tests')) opts.tests = value().split(',').filter(Boolean);
    else if (a.startsWith('--work')) opts.work = value();
    else throw new Error(`unknown option ${a} (options: --json, --markdown, --runs LIST, --tests LIST, --work DIR, --compare-only)`);
  }
  return opts;
}

function pgIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
}

/** What pg_regress's create_database does (pg_regress.c), run directly as the superuser. */
function createRegressionDatabase(cluster: Cluster): void {
  cluster.psql('SET client_min_messages = warning');
  cluster.psql('CREATE DATABASE "regression" TEMPLATE=template0');
  cluster.psql(
    ["lc_messages TO 'C'", "lc_monetary TO 'C'", "lc_numeric TO 'C'", "lc_time TO 'C'", "bytea_output TO 'hex'", "timezone_abbreviations TO 'Default'"]
      .map((s) => `ALTER DATABASE "regression" SET ${s};`)
      .join(''),
  );
}

async function runOnce(name: RunName, work: { src: string; lib: string; root: string }, tests: string[] | undefined, total: number): Promise<RunResult> {
  const outputDir = join(work.root, name);
  mkdirSync(join(outputDir, 'results'), { recursive: true });
  // The server reads the suite's data files and writes COPY output into results/ as `postgres`.
  if (process.getuid?.() === 0) {
    const { uid, gid } = pgIds();
    chownSync(outputDir, uid, gid);
    chownSync(join(outputDir, 'results'), uid, gid);
  }
  const started = Date.now();
  log(`[${name}] starting a PostgreSQL cluster`);
  const cluster = await startCluster();
  let gw: TestGateway | undefined;
  try {
    createRegressionDatabase(cluster);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
    let port = cluster.port;
    if (name !== 'direct') {
      gw = await startTestGateway(cluster, POLICIES[name], {}, 'regression', (config) => {
        // The suite runs as the superuser, in a database named `regression` (its expected output
        // names it): the resource is that database, reached as `postgres` (trust on loopback).
        config.resources = [
          { name: 'regression', kind: 'postgres', upstream: `postgres://127.0.0.1:${cluster.port}/regression`, labels: {}, user: 'postgres', password: 'unused-trust-auth', tls: { mode: 'disable' } },
        ];
        for (const i of config.identity) i.maxTokenTtlMs = 24 * 3_600_000;
      });
      gw.audit.keepRecords = false;
      port = gw.gateway.postgresPort;
      env.PGPASSWORD = await gw.issuer.mint({ sub: 'pg-regress', groups: ['regress'], ttlMs: 24 * 3_600_000 });
      log(`[${name}] gateway on port ${port} (policy: ${name === 'allow-all' ? 'match sql allow' : 'match sql allow + match sql unknown allow'})`);
    }
    const args = [
      `--inputdir=${work.src}`,
      `--outputdir=${outputDir}`,
      `--bindir=${join(PG_LIB_DIR, 'bin')}`,
      `--dlpath=${work.lib}`,
      '--max-connections=1',
      '--use-existing',
      '--dbname=regression',
      '--host=127.0.0.1',
      `--port=${port}`,
      '--user=postgres',
      ...(tests ?? [`--schedule=${join(work.src, 'parallel_schedule')}`]),
    ];
    const verdicts: Record<string, string> = {};
    const child = spawn(pgRegressBinary(), args, { cwd: outputDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let done = 0;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /^(?:test\s+|\s+)(\S+)\s+\.\.\.\s+(ok|FAILED|failed \(ignored\))\s*(\d+ ms)?/.exec(line);
      if (m) {
        verdicts[m[1]!] = m[2]!;
        done++;
        log(`[${name}] ${String(done).padStart(3)}/${total} ${m[1]!.padEnd(28)} ${m[2]}${m[3] ? ` (${m[3]})` : ''}`);
      }
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exitCode = await new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)));
    if (done === 0) throw new Error(`[${name}] pg_regress ran no test (exit ${exitCode}):\n${stderr}`);
    const wallMs = Date.now() - started;
    log(`[${name}] done in ${(wallMs / 1000).toFixed(0)} s`);
    const result = { name, wallMs, verdicts, outputDir, exitCode };
    writeFileSync(join(outputDir, 'run.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await gw?.close();
    await cluster.stop();
  }
}

interface Report {
  server: string;
  tests: string[];
  wallMs: number;
  direct: { wallMs: number; ok: number; failed: string[] };
  gateway: Record<string, { wallMs: number; identical: number; differing: { test: string; reasons: Record<string, number>; missing?: string }[]; reasons: Record<string, { files: number; hunks: number }> }>;
  workDir: string;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function human(r: Report, comparisons: Record<string, Record<string, FileComparison>>): string {
  const n = r.tests.length;
  const out: string[] = [];
  out.push(`PostgreSQL regression suite (Debian ${r.server}), ${n} files in schedule order, wall time ${(r.wallMs / 1000).toFixed(0)} s`);
  out.push('');
  const rows = [['run', 'result', 'wall time']];
  rows.push(['direct', `${r.direct.ok}/${n} match PostgreSQL's expected output`, `${(r.direct.wallMs / 1000).toFixed(0)} s`]);
  for (const [name, g] of Object.entries(r.gateway)) rows.push([name, `${g.identical}/${n} identical to direct`, `${(g.wallMs / 1000).toFixed(0)} s`]);
  out.push(table(rows));
  if (r.direct.failed.length) out.push('', `direct run differs from expected: ${r.direct.failed.join(', ')}`);
  for (const [name, g] of Object.entries(r.gateway)) {
    if (g.differing.length === 0) continue;
    out.push('', `${name}: reasons (files, hunks)`);
    out.push(table([['reason', 'files', 'hunks'], ...Object.entries(g.reasons).map(([k, v]) => [k, String(v.files), String(v.hunks)])]));
    out.push('', `${name}: differing files`);
    out.push(table([['file', 'reasons'], ...g.differing.map((d) => [d.test, Object.entries(d.reasons).map(([k, v]) => `${k} ×${v}`).join('; ')])]));
    void comparisons;
  }
  out.push('', `outputs and diffs: ${r.workDir}`);
  return out.join('\n');
}

/** The tables docs/conformance.md shows. */
function markdown(r: Report): string {
  const n = r.tests.length;
  const out: string[] = ['| run | result | wall time |', '| --- | --- | --- |'];
  out.push(`| direct | ${r.direct.ok}/${n} match PostgreSQL's expected output | ${(r.direct.wallMs / 1000).toFixed(0)} s |`);
  for (const [name, g] of Object.entries(r.gateway)) out.push(`| ${name} | ${g.identical}/${n} identical to direct | ${(g.wallMs / 1000).toFixed(0)} s |`);
  for (const [name, g] of Object.entries(r.gateway)) {
    if (g.differing.length === 0) continue;
    out.push('', `${name}, differences by reason:`, '', '| reason | files | hunks |', '| --- | --- | --- |');
    for (const [k, v] of Object.entries(g.reasons)) out.push(`| ${k} | ${v.files} | ${v.hunks} |`);
    out.push('', `${name}, differing files:`, '', '| file | reasons (hunks) |', '| --- | --- |');
    for (const d of g.differing) out.push(`| \`${d.test}\` | ${Object.entries(d.reasons).map(([k, v]) => `${k.replace(/^hoop: refused unknown statement/, 'unknown')} (${v})`).join('; ')} |`);
  }
  return `${out.join('\n')}\n`;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });
  ensurePackages(log);
  const suite = fetchSuite(root, log);
  const lib = buildModules(root, suite, log);
  const schedule = readSchedule(join(suite.regressDir, 'parallel_schedule'));
  const tests = opts.tests ?? schedule;

  const work = { root: opts.work, src: join(opts.work, 'src'), lib: join(opts.work, 'lib') };
  const results: RunResult[] = [];
  if (opts.compareOnly) {
    // Re-read the outputs of an earlier run (to work on the comparison without running again).
    for (const name of opts.runs) results.push(JSON.parse(readFileSync(join(opts.work, name, 'run.json'), 'utf8')) as RunResult);
  } else {
    // A working copy the `postgres` OS user can read (the cache may sit in a private home).
    rmSync(opts.work, { recursive: true, force: true });
    mkdirSync(work.lib, { recursive: true, mode: 0o755 });
    cpSync(suite.regressDir, work.src, { recursive: true, filter: (p) => !/\.(c|h|o)$/.test(p) });
    for (const l of ['regress', 'refint', 'autoinc']) cpSync(join(lib, `${l}.so`), join(work.lib, `${l}.so`));
    execFileSync('chmod', ['-R', 'a+rX', opts.work]);
    log(`suite ${suite.version}: ${tests.length} files; work directory ${opts.work}`);
    for (const name of opts.runs) results.push(await runOnce(name, work, opts.tests, tests.length));
  }
  const direct = results[0]!;

  const comparisons: Record<string, Record<string, FileComparison>> = {};
  const report: Report = {
    server: suite.version,
    tests,
    wallMs: 0,
    direct: { wallMs: direct.wallMs, ok: tests.filter((t) => direct.verdicts[t] === 'ok').length, failed: tests.filter((t) => direct.verdicts[t] !== 'ok') },
    gateway: {},
    workDir: opts.work,
  };
  for (const run of results.slice(1)) {
    const per: Record<string, FileComparison> = {};
    const scratch = mkdtempSync(join(tmpdir(), 'hoop-pg-regress-cmp-'));
    const g: Report['gateway'][string] = { wallMs: run.wallMs, identical: 0, differing: [], reasons: {} };
    for (const t of tests) {
      const c = compareFiles({
        directFile: join(direct.outputDir, 'results', `${t}.out`),
        gatewayFile: join(run.outputDir, 'results', `${t}.out`),
        directOutputDir: direct.outputDir,
        gatewayOutputDir: run.outputDir,
        scratch,
      });
      per[t] = c;
      if (c.identical) g.identical++;
      else {
        g.differing.push({ test: t, reasons: c.reasons, ...(c.missing ? { missing: c.missing } : {}) });
        for (const [k, v] of Object.entries(c.reasons)) {
          const e = (g.reasons[k] ??= { files: 0, hunks: 0 });
          e.files++;
          e.hunks += v;
        }
      }
    }
    rmSync(scratch, { recursive: true, force: true });
    comparisons[run.name] = per;
    report.gateway[run.name] = g;
    // The differential's diffs, next to pg_regress's own regression.diffs.
    writeFileSync(join(run.outputDir, 'differential.diffs'), tests.filter((t) => !per[t]!.identical).map((t) => `=== ${t}: ${JSON.stringify(per[t]!.reasons)}\n${per[t]!.diff}`).join('\n'));
  }
  report.wallMs = Date.now() - started;
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : opts.markdown ? markdown(report) : `${human(report, comparisons)}\n`);

  let ok = report.direct.failed.length === 0;
  const unk = report.gateway['allow-unknown'];
  if (unk && unk.differing.length > 0) ok = false;
  const all = report.gateway['allow-all'];
  // With `unknown` blocked, every difference must be the refusal of an unknown statement.
  if (all && Object.keys(all.reasons).some((k) => !k.startsWith(UNKNOWN_REFUSAL))) ok = false;
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(2);
  },
);
