// The driver matrix: each real client's everyday paths (parameters of many types, prepared
// statements, binary format, savepoints, COPY, cursors, LISTEN/NOTIFY, cancel, a 200,000-row
// fetch, an error inside a transaction) run once directly against PostgreSQL and once through the
// gateway (allow-all policy); every step must give the same result both ways. The scripts are in
// conformance/drivers/ (one per driver, one JSON line per step; see its README.md). A driver that
// is not installed fails its test with the package to install (`.ci/run` installs them).

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { ALLOW_ALL, startTestGateway, type TestGateway } from '../proxy/postgres/test-support.ts';

const here = join(dirname(fileURLToPath(import.meta.url)), 'drivers');
const PYTHON = '/usr/bin/python3'; // the Debian interpreter: the python3-* driver packages install for it
const JDBC_JAR = '/usr/share/java/postgresql.jar';
const SCRIPT_TIMEOUT_MS = 90_000;

/** Resolves with stdout+stderr and the exit code; never rejects. */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = SCRIPT_TIMEOUT_MS): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${timeout} ms]`;
      child.kill('SIGKILL');
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}\n${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const ok = async (cmd: string, args: string[]): Promise<boolean> => (await exec(cmd, args, process.env, 30_000)).code === 0;

/** Compiles the JDBC script once per source text (javac is slow; the class is cached in a temp dir). */
async function jdbcClassDir(): Promise<string> {
  const src = join(here, 'Jdbc.java');
  const dir = join(tmpdir(), `hoop-jdbc-${createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16)}`);
  if (existsSync(join(dir, 'Jdbc.class'))) return dir;
  // Compiled aside and renamed into place, so an interrupted javac never leaves a half-written cache.
  const work = mkdtempSync(join(tmpdir(), 'hoop-jdbc-build-'));
  const r = await exec('javac', ['-cp', JDBC_JAR, '-d', work, src], process.env, 120_000);
  if (r.code !== 0) throw new Error(`javac failed: ${r.stderr}`);
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another run cached it first
  }
  return dir;
}

interface Driver {
  name: string;
  /** What to install when the check fails. */
  install: string;
  available(): Promise<boolean>;
  argv(): Promise<[string, string[]]>;
}

const node = (script: string, module: string): Pick<Driver, 'available' | 'argv'> => ({
  available: async () => ok(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(module)})`]),
  argv: async () => [process.execPath, ['--import', 'tsx', join(here, script)]],
});
const python = (script: string, module: string): Pick<Driver, 'available' | 'argv'> => ({
  available: async () => ok(PYTHON, ['-c', `import ${module}`]),
  argv: async () => [PYTHON, [join(here, script)]],
});

const DRIVERS: Driver[] = [
  { name: 'node-postgres', install: 'the npm module `pg` (npm ci)', ...node('node-postgres.ts', 'pg') },
  { name: 'postgres.js', install: 'the npm module `postgres` (npm ci)', ...node('postgres-js.ts', 'postgres') },
  { name: 'psycopg 3', install: 'the Debian package python3-psycopg', ...python('py_psycopg3.py', 'psycopg') },
  { name: 'asyncpg', install: 'the Debian package python3-asyncpg', ...python('py_asyncpg.py', 'asyncpg') },
  { name: 'psycopg2', install: 'the Debian package python3-psycopg2', ...python('py_psycopg2.py', 'psycopg2') },
  {
    name: 'Ruby pg',
    install: 'the Debian package ruby-pg',
    available: async () => ok('ruby', ['-e', "require 'pg'"]),
    argv: async () => ['ruby', [join(here, 'ruby-pg.rb')]],
  },
  {
    name: 'DBD::Pg',
    install: 'the Debian package libdbd-pg-perl',
    available: async () => ok('perl', ['-MDBD::Pg', '-e', '1']),
    argv: async () => ['perl', [join(here, 'dbd-pg.pl')]],
  },
  {
    name: 'JDBC',
    install: 'the Debian packages default-jdk-headless and libpostgresql-jdbc-java',
    available: async () => existsSync(JDBC_JAR) && (await ok('javac', ['-version'])) && (await ok('java', ['-version'])),
    argv: async () => ['java', ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${await jdbcClassDir()}:${JDBC_JAR}`, 'Jdbc']],
  },
];

let cluster: Cluster;
let gw: TestGateway;
let direct: NodeJS.ProcessEnv;
let via: NodeJS.ProcessEnv;

beforeAll(async () => {
  cluster = await startCluster();
  gw = await startTestGateway(cluster, ALLOW_ALL);
  const token = await gw.token({ ttlMs: 1_800_000 });
  const base = { ...process.env, TZ: 'UTC', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PGSSLMODE: 'disable' };
  direct = { ...base, DRV_HOST: '127.0.0.1', DRV_PORT: String(cluster.port), DRV_USER: cluster.appUser.user, DRV_PASSWORD: cluster.appUser.password, DRV_DATABASE: cluster.appUser.database };
  via = { ...base, DRV_HOST: '127.0.0.1', DRV_PORT: String(gw.gateway.postgresPort), DRV_USER: 'agent-7', DRV_PASSWORD: token, DRV_DATABASE: gw.resourceName };
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

interface Step {
  step: string;
  value?: unknown;
  error?: string;
}

function steps(out: string): Step[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Step);
}

describe('driver matrix: each step gives the same result through the gateway as directly', () => {
  for (const d of DRIVERS) {
    it(d.name, { timeout: 150_000 }, async () => {
      if (!(await d.available())) throw new Error(`driver ${d.name} is not installed: install ${d.install} (.ci/run does)`);
      const [cmd, args] = await d.argv();
      const [a, b] = await Promise.all([exec(cmd, args, direct), exec(cmd, args, via)]);
      const ds = steps(a.stdout);
      const vs = steps(b.stdout);
      // The script itself must work against PostgreSQL: every step ran, none failed unexpectedly.
      expect(a.code, `direct run exited ${a.code}: ${a.stderr}`).toBe(0);
      expect(ds.filter((s) => s.error !== undefined), 'steps that failed directly').toEqual([]);
      expect(ds.length).toBeGreaterThanOrEqual(8);
      const byName = (xs: Step[]): Record<string, unknown> => Object.fromEntries(xs.map((s) => [s.step, s.error !== undefined ? { error: s.error } : s.value]));
      expect(byName(vs), `through the gateway (exit ${b.code}): ${b.stderr.slice(-2000)}`).toEqual(byName(ds));
      expect(vs.map((s) => s.step)).toEqual(ds.map((s) => s.step));
      expect(b.code, b.stderr).toBe(0);
    });
  }
});
