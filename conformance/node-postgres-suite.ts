// node-postgres' own integration suite as a differential (issue 14 item 16): every file of
// `packages/pg/test/integration` (and the mocha tests of pg-cursor and pg-pool) runs twice against
// one throwaway PostgreSQL 15 cluster, once directly and once through `hoop gateway` (the real CLI,
// an allow-all policy, a dev-issuer token as the password), and the two outcomes are compared per file.
//
//   npm run conformance:node-postgres -- [--suite DIR] [--json | --markdown] [--only SUBSTRING] [--timeout 60s]
//
// The suite is never committed here. It is located at run time: `--suite DIR`, `$NODE_POSTGRES_DIR`,
// or /tmp/node-postgres, each a clone of brianc/node-postgres (npm's `pg` package ships no tests,
// and Debian's source package of it could not be fetched here).
// The suites' test-only npm dependencies (SUITE_DEPS) are installed with
// npm into a cache folder; pg's runtime dependencies come from this repository's node_modules.
//
// A file passes when node (or mocha) exits 0 (the suite's helpers exit non-zero on a failed
// assertion, an unmet `assert.calls` or an uncaught exception). Exit code: 0 when every file that passes
// directly also passes through the gateway (or differs by design, listed in BY_DESIGN), 1 otherwise.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDevIssuer } from '../proxy/identity/dev-issuer.ts';
import { freePort, startCluster, type Cluster } from '../testing/pg-cluster.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Test-only dependencies of the suites (versions from the package.json of packages/pg, pg-cursor and pg-pool). */
const SUITE_DEPS = ['async@2.6.4', 'bluebird@3.7.2', 'co@4.6.0', 'pg-copy-streams@0.3.0', 'mocha@11.7.5', 'expect.js@0.3.1', 'lodash@4.17.21'];

/**
 * Files whose gateway run differs from the direct run by design: the test of the file that fails
 * through the gateway, and why (docs/conformance.md). Keyed by the path under
 * packages/pg/test/integration; a failure in any other test of the file is still a difference.
 */
export const BY_DESIGN: Record<string, { test: string; why: string }> = {
  'client/error-handling-tests.js': {
    test: 'non-query error with callback',
    why:
      'this and three later tests log in as users that do not exist and expect the server to refuse them; through the gateway the ' +
      'identity comes from the token and the `user` parameter is recorded, not trusted, so the login succeeds (DESIGN.md, the gateway)',
  },
};

export interface FileRun {
  ok: boolean;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  ms: number;
  /** The first failure the output names (assertion, error message), or ''. */
  failure: string;
  /** The suite's test that was running when the file failed, or ''. */
  test: string;
  /** Tests that passed (the suite's check marks, or mocha's count). */
  passed: number;
  output: string;
}

export interface FileResult {
  file: string;
  direct: FileRun;
  gateway: FileRun;
  result: 'identical' | 'differs' | 'by-design';
  reason: string;
}

interface Options {
  suite?: string;
  json: boolean;
  markdown: boolean;
  only: string[];
  timeoutMs: number;
  verbose: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, markdown: false, only: [], timeoutMs: 60_000, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--markdown') o.markdown = true;
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--suite') o.suite = argv[++i];
    else if (a === '--only') o.only.push(argv[++i] ?? '');
    else if (a === '--timeout') {
      const m = /^(\d+)(ms|s)?$/.exec(argv[++i] ?? '');
      if (!m) throw new Error('--timeout: expected a duration like 60s');
      o.timeoutMs = Number(m[1]) * (m[2] === 'ms' ? 1 : 1000);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run conformance:node-postgres -- [--suite DIR] [--json | --markdown] [--only SUBSTRING]... [--timeout 60s] [--verbose]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const cacheDir = (): string => process.env.HOOP_CONFORMANCE_CACHE ?? join(tmpdir(), 'hoop-conformance-cache');

/** The folder holding `packages/pg` of node-postgres. */
function locateSuite(explicit: string | undefined): string {
  const candidates = [explicit, process.env.NODE_POSTGRES_DIR, '/tmp/node-postgres'].filter((x): x is string => !!x);
  for (const c of candidates) if (existsSync(join(c, 'packages/pg/test/integration'))) return resolve(c);
  throw new Error(
    `${explicit ?? 'no node-postgres checkout found'}: expected a clone of brianc/node-postgres with packages/pg/test/integration ` +
      '(pass --suite DIR or set NODE_POSTGRES_DIR; /tmp/node-postgres is tried by default)',
  );
}

/** node_modules with the suite's test-only dependencies, installed once into the cache. */
function suiteDeps(log: (s: string) => void): string {
  const dir = join(cacheDir(), 'node-postgres-deps');
  const have = (): boolean => SUITE_DEPS.every((d) => existsSync(join(dir, 'node_modules', d.slice(0, d.lastIndexOf('@')), 'package.json')));
  if (!have()) {
    log(`installing the suite's test dependencies (${SUITE_DEPS.join(', ')}) with npm`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"name":"hoop-node-postgres-suite-deps","private":true}\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', ...SUITE_DEPS], { cwd: dir, stdio: 'ignore' });
    if (!have()) throw new Error('npm did not install the suite dependencies');
  }
  return join(dir, 'node_modules');
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, base));
    else if (name.endsWith('-tests.js')) out.push(relative(base, p));
  }
  return out;
}

/** The first line of the output that says what failed. */
export function failureOf(output: string, timedOut: boolean): string {
  if (timedOut) return 'timed out';
  const lines = output.split('\n').map((l) => l.trim());
  const pick = (re: RegExp): string | undefined => lines.find((l) => re.test(l));
  const inline = lines.map((l) => /\b\w*Error: .*$/.exec(l)?.[0]).find((m) => m !== undefined);
  const line =
    pick(/^(AssertionError|Error|TypeError|RangeError)\b/) ??
    pick(/^error: /) ?? // a DatabaseError's stack: the server's (or the gateway's) message
    inline ??
    pick(/^Message: /) ??
    pick(/FAILED!|did not complete/) ??
    pick(/\berror\b/i) ??
    lines.filter((l) => l !== '').pop() ??
    '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/**
 * The test that was running when the file stopped. The suite prints "  <name> " before each test
 * and "✔" after it (on the next line when a warning came in between); a failure prints its message
 * after the name.
 */
export function failingTest(output: string): string {
  const lines = output.split('\n');
  let current = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const failure = /Message: |FAILED!|AssertionError|did not complete| \w*Error: /.exec(l);
    if (/^  \S/.test(l)) {
      const name = l.slice(0, failure ? failure.index : undefined).replace(/\(node:\d+\).*$/, '').replace(/✔\s*$/, '').trim();
      const passed = /✔\s*$/.test(l) || lines[i + 1]?.trim() === '✔';
      current = passed ? '' : name;
    }
    if (failure) break;
  }
  return current;
}

/** Packages of the repository whose mocha tests run too (pg-query-stream's are TypeScript for ts-node: not run). */
const MOCHA_PACKAGES = ['pg-cursor', 'pg-pool'];

/** How one file of a suite runs: node on a pg integration file, mocha on a pg-cursor file. */
interface FileCommand {
  argv: string[];
  cwd: string;
  /** mocha's JSON report, read for the failing test and its message. */
  report?: string;
}

function commandFor(suite: string, file: string, deps: string, reportDir: string, side: string): FileCommand {
  const mochaPackage = MOCHA_PACKAGES.find((m) => file.startsWith(`${m}/`));
  if (mochaPackage) {
    const report = join(reportDir, `${file.replace(/\W/g, '_')}.${side}.json`);
    const setup = join(suite, 'packages', mochaPackage, 'test/setup.js');
    return {
      argv: [
        join(deps, 'mocha/bin/mocha.js'),
        ...(existsSync(setup) ? ['--require', setup] : []), // mocha loads it with the whole folder; one file at a time needs it named
        '--reporter', 'json', '--reporter-option', `output=${report}`, '--timeout', '10000',
        join(suite, 'packages', file),
      ],
      cwd: join(suite, 'packages', mochaPackage),
      report,
    };
  }
  return { argv: [join(suite, 'packages/pg/test/integration', file)], cwd: join(suite, 'packages/pg') };
}

/** The first failing test of a mocha JSON report, or undefined when it cannot be read. */
export function mochaFailure(reportText: string): { test: string; failure: string; passed: number } | undefined {
  try {
    const r = JSON.parse(reportText) as { stats?: { passes?: number }; failures?: { fullTitle?: string; err?: { message?: string } }[] };
    const passed = r.stats?.passes ?? 0;
    const f = r.failures?.[0];
    if (!f) return { test: '', failure: '', passed };
    return { test: f.fullTitle ?? '', failure: (f.err?.message ?? '').split('\n')[0]!, passed };
  } catch {
    return undefined;
  }
}

function runFile(cmd: FileCommand, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<FileRun> {
  return new Promise((done) => {
    const t0 = Date.now();
    if (cmd.report) rmSync(cmd.report, { force: true });
    const child = spawn(process.execPath, cmd.argv, { cwd: cmd.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const add = (d: Buffer): void => {
      if (output.length < 200_000) output += d.toString();
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ok = code === 0 && !timedOut;
      let test = ok ? '' : failingTest(output);
      let failure = ok ? '' : failureOf(output, timedOut);
      let passed = output.split('\n').filter((l) => /✔\s*$/.test(l)).length;
      if (cmd.report && existsSync(cmd.report)) {
        const m = mochaFailure(readFileSync(cmd.report, 'utf8'));
        if (m) passed = m.passed;
        if (!ok && !timedOut && m?.test) ({ test, failure } = m);
      }
      done({ ok, code, signal, timedOut, ms: Date.now() - t0, failure, test, passed, output });
    });
  });
}

interface GatewayProcess {
  port: number;
  token(): Promise<string>;
  stop(): Promise<void>;
  stderr(): string;
}

const ALLOW_ALL = 'package conformance\ndefault allow\n';

async function startGatewayCli(cluster: Cluster, database: string, role: string): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hoop-npg-'));
  const issuer = await openDevIssuer(dir);
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'allow.hoop'), ALLOW_ALL);
  const port = await freePort();
  writeFileSync(
    join(dir, 'hoop.yaml'),
    `listen:
  postgres: 127.0.0.1:${port}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
  max_token_ttl: 1h
resources:
  - name: ${database}
    kind: postgres
    upstream: postgres://127.0.0.1:${cluster.port}/${database}
    user_env: NPG_UPSTREAM_USER
  # gh-issues/130-tests.js runs \`psql ... template1\` to terminate the test's backend from another session.
  - name: template1
    kind: postgres
    upstream: postgres://127.0.0.1:${cluster.port}/template1
    user_env: NPG_UPSTREAM_USER
policy: ./policies
state: ./state
`,
  );
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'gateway', '--config', join(dir, 'hoop.yaml')], {
    cwd: ROOT,
    env: { ...process.env, NPG_UPSTREAM_USER: role },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((ok, fail) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
      if (stderr.includes('postgres on')) ok();
    });
    child.once('exit', (code) => fail(new Error(`hoop gateway exited (${code}): ${stderr}`)));
  });
  return {
    port,
    token: () => issuer.mint({ sub: 'node-postgres-suite', groups: ['conformance'], ttlMs: 30 * 60_000 }),
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until no statement of an earlier run is still executing (a test that ends its client
 * during `pg_sleep(5)` leaves the backend running it, and the next run's `pg_stat_activity` count
 * would see it). Gives up after 15 s: the next run then shows what is left.
 */
async function quiesce(cluster: Cluster): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const busy = cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()").trim();
    if (busy === '0') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runSuite(o: Options, log: (s: string) => void): Promise<{ suite: string; commit: string | undefined; results: FileResult[] }> {
  const suite = locateSuite(o.suite);
  const testRoot = join(suite, 'packages/pg/test/integration');
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['-C', suite, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = undefined;
  }
  const deps = suiteDeps(log);
  // pg's own dependencies (pg-protocol, pg-types, pgpass, pg-pool, ...) from this repository's
  // node_modules; the suite requires pg itself as ../../lib (the checked-out source).
  // pg-cursor's and pg-pool's tests require('pg') (and pg-pool's require('pg-cursor')): the clone's
  // packages, through a folder holding only those links (pg-protocol there is TypeScript source).
  const pgLink = mkdtempSync(join(tmpdir(), 'hoop-npg-pg-'));
  for (const m of ['pg', 'pg-cursor']) symlinkSync(join(suite, 'packages', m), join(pgLink, m));
  const nodePath = [deps, pgLink, join(ROOT, 'node_modules')].join(':');
  const mochaFiles = MOCHA_PACKAGES.flatMap((m) => {
    const dir = join(suite, 'packages', m, 'test');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'setup.js').sort().map((f) => `${m}/test/${f}`) : [];
  });
  let files = [...listFiles(testRoot), ...mochaFiles];
  if (o.only.length > 0) files = files.filter((f) => o.only.some((s) => f.includes(s)));

  const database = 'node_postgres';
  const role = 'postgres';
  const cluster = await startCluster();
  cluster.psql(`CREATE DATABASE ${database}`);
  const gw = await startGatewayCli(cluster, database, role);
  const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_PATH: nodePath, PGUSER: role, PGDATABASE: database, PGHOST: '127.0.0.1', TZ: process.env.TZ };
  const results: FileResult[] = [];
  const reports = mkdtempSync(join(tmpdir(), 'hoop-npg-reports-'));
  try {
    for (const file of files) {
      const both = async (): Promise<[FileRun, FileRun]> => {
        await quiesce(cluster);
        const d = await runFile(commandFor(suite, file, deps, reports, 'direct'), { ...baseEnv, PGPORT: String(cluster.port) }, o.timeoutMs);
        await quiesce(cluster);
        const g = await runFile(commandFor(suite, file, deps, reports, 'gateway'), { ...baseEnv, PGPORT: String(gw.port), PGPASSWORD: await gw.token() }, o.timeoutMs);
        return [d, g];
      };
      let [direct, gateway] = await both();
      let { result, reason } = compareRuns(file, direct, gateway);
      if (result === 'differs') {
        // Some files race a 5 s per-test timeout (gh-issues/1105 runs 5,000 statements) on a
        // loaded machine: a difference counts only if a second run of both sides shows it again.
        const first = reason;
        [direct, gateway] = await both();
        ({ result, reason } = compareRuns(file, direct, gateway));
        if (result !== 'differs') reason = `${reason ? `${reason}; ` : ''}on a second run (the first differed: ${first})`;
        else if (reason !== first) reason = `second run: ${reason}; first run: ${first}`;
      }
      const r: FileResult = { file, direct, gateway, result, reason };
      results.push(r);
      if (!o.json) {
        const mark = (x: FileRun): string => (x.ok ? 'pass' : 'FAIL');
        log(`${result.padEnd(9)} ${file.padEnd(60)} direct ${mark(direct)} ${String(direct.passed).padStart(3)}  gateway ${mark(gateway)} ${String(gateway.passed).padStart(3)}${reason ? `  ${reason}` : ''}`);
        if (o.verbose && result !== 'identical') log(`--- direct output\n${direct.output}\n--- gateway output\n${gateway.output}`);
      }
    }
  } finally {
    rmSync(reports, { recursive: true, force: true });
    rmSync(pgLink, { recursive: true, force: true });
    await gw.stop();
    await cluster.stop();
  }
  return { suite, commit, results };
}

/** Compares a file's direct and gateway runs. */
export function compareRuns(file: string, direct: FileRun, gateway: FileRun): Pick<FileResult, 'result' | 'reason'> {
  if (direct.ok && gateway.ok) {
    if (direct.passed === gateway.passed) return { result: 'identical', reason: '' };
    return { result: 'differs', reason: `${direct.passed} tests passed directly, ${gateway.passed} through the gateway` };
  }
  if (!direct.ok && !gateway.ok && direct.test === gateway.test && direct.failure === gateway.failure) {
    return { result: 'identical', reason: `fails both ways in "${direct.test}": ${direct.failure}` };
  }
  const design = BY_DESIGN[file];
  if (design && !gateway.ok && gateway.test === design.test) return { result: 'by-design', reason: `"${gateway.test}": ${design.why}` };
  const where = (x: FileRun): string => (x.test ? `"${x.test}": ${x.failure}` : x.failure);
  const reason = gateway.ok
    ? `passes only through the gateway; directly ${where(direct)}`
    : direct.ok
      ? `fails only through the gateway in ${where(gateway)}`
      : `directly ${where(direct)}; through the gateway ${where(gateway)}`;
  return { result: 'differs', reason };
}

/** A difference is a failure of the run when the file passes directly and not through the gateway. */
export function failed(results: FileResult[]): FileResult[] {
  return results.filter((r) => r.result === 'differs' && r.direct.ok);
}

/** The per-file table of docs/conformance.md. */
export function markdownTable(results: FileResult[]): string {
  const cell = (x: string): string => x.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const run = (x: FileRun): string => (x.ok ? 'pass' : x.timedOut ? 'FAIL (timeout)' : 'FAIL');
  const rows = results.map((r) => `| \`${r.file}\` | ${run(r.direct)} | ${run(r.gateway)} | ${r.result} | ${cell(r.reason)} |`);
  return ['| file | directly | through the gateway | result | reason |', '| --- | --- | --- | --- | --- |', ...rows, ''].join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const { suite, commit, results } = await runSuite(o, o.json || o.markdown ? log : (s) => void process.stdout.write(`${s}\n`));
  const count = (k: FileResult['result']): number => results.filter((r) => r.result === k).length;
  const summary = {
    files: results.length,
    identical: count('identical'),
    differs: count('differs'),
    by_design: count('by-design'),
    direct_pass: results.filter((r) => r.direct.ok).length,
    gateway_pass: results.filter((r) => r.gateway.ok).length,
    direct_tests_passed: results.reduce((n, r) => n + r.direct.passed, 0),
    gateway_tests_passed: results.reduce((n, r) => n + r.gateway.passed, 0),
  };
  if (o.json) {
    process.stdout.write(
      JSON.stringify(
        {
          suite,
          commit,
          summary,
          files: results.map((r) => ({
            file: r.file,
            result: r.result,
            reason: r.reason,
            direct: { ok: r.direct.ok, code: r.direct.code, ms: r.direct.ms, passed: r.direct.passed, test: r.direct.test, failure: r.direct.failure },
            gateway: { ok: r.gateway.ok, code: r.gateway.code, ms: r.gateway.ms, passed: r.gateway.passed, test: r.gateway.test, failure: r.gateway.failure },
          })),
        },
        null,
        2,
      ) + '\n',
    );
  } else if (o.markdown) {
    process.stdout.write(markdownTable(results));
  } else {
    process.stdout.write(
      `\n${summary.files} files: ${summary.identical} identical, ${summary.differs} differing, ${summary.by_design} differing by design; ` +
        `${summary.direct_pass} pass directly, ${summary.gateway_pass} through the gateway ` +
        `(tests passed: ${summary.direct_tests_passed} directly, ${summary.gateway_tests_passed} through the gateway)\n`,
    );
  }
  process.exitCode = failed(results).length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`conformance:node-postgres: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 2;
  });
}
