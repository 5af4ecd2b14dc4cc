// Everything the PostgreSQL regression differential needs before it can run: the Debian packages
// it builds with, the regression suite from Debian's source package of the installed server
// (fetched at run time into a cache directory, never into the repository), and the C test
// modules regress.so, refint.so and autoinc.so built against the server's headers.
//
// The machine's apt configuration is not touched: the deb-src entry lives in the cache directory
// and apt is pointed at it (and at its own lists and cache) with -o options.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const SERVER_PACKAGE = 'postgresql-15';
export const SERVER_DEV_PACKAGE = 'postgresql-server-dev-15';
export const PG_LIB_DIR = '/usr/lib/postgresql/15';

export type Log = (line: string) => void;

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOOP_PG_REGRESS_CACHE) return env.HOOP_PG_REGRESS_CACHE;
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'hoop', 'pg-regress');
}

function dpkgVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}\t${Version}', pkg], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [status, version] = r.stdout.split('\t');
  return status?.endsWith(' installed') ? version : undefined;
}

/** Installs the build tools and server headers that are missing, saying which. */
export function ensurePackages(log: Log): void {
  const wanted = ['dpkg-dev', SERVER_DEV_PACKAGE, 'gcc', 'make', 'libc6-dev'];
  const missing = wanted.filter((p) => dpkgVersion(p) === undefined);
  if (missing.length === 0) return;
  log(`installing missing packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, stdio: ['ignore', 2, 2] });
  // The server headers must match the installed server exactly.
  const server = dpkgVersion(SERVER_PACKAGE);
  if (server && missing.includes(SERVER_DEV_PACKAGE)) missing[missing.indexOf(SERVER_DEV_PACKAGE)] = `${SERVER_DEV_PACKAGE}=${server}`;
  if (install().status !== 0) {
    log('apt-get install failed; running apt-get update and trying again');
    spawnSync('apt-get', ['update', '-q'], { env, stdio: ['ignore', 2, 2] });
    if (install().status !== 0) throw new Error(`could not install ${missing.join(' ')}`);
  }
}

export interface Suite {
  /** Debian version of the installed server, e.g. 15.18-0+deb12u1. */
  version: string;
  /** The unpacked source tree. */
  sourceDir: string;
  /** src/test/regress inside it (inputdir for pg_regress). */
  regressDir: string;
}

/** Fetches Debian's source package of the installed server into the cache (once per version). */
export function fetchSuite(root: string, log: Log): Suite {
  const version = dpkgVersion(SERVER_PACKAGE);
  if (!version) throw new Error(`${SERVER_PACKAGE} is not installed`);
  const upstream = version.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
  const sourceDir = join(root, `${SERVER_PACKAGE}-${upstream}`);
  const regressDir = join(sourceDir, 'src', 'test', 'regress');
  const marker = join(root, `.fetched-${version}`);
  if (existsSync(marker) && existsSync(join(regressDir, 'parallel_schedule'))) return { version, sourceDir, regressDir };

  const aptDir = join(root, 'apt');
  mkdirSync(join(aptDir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  const sources = join(aptDir, 'sources.list');
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  writeFileSync(
    sources,
    [
      '# Written by conformance/pg-regress: the deb-src entries used to fetch the regression suite.',
      ...['debian bookworm', 'debian bookworm-updates', 'debian-security bookworm-security'].map((s) => {
        const [archive, suite] = s.split(' ');
        return `deb-src [signed-by=${keyring}] http://deb.debian.org/${archive} ${suite} main`;
      }),
      '',
    ].join('\n'),
  );
  const aptOpts = [
    '-q',
    '-o', `Dir::Etc::SourceList=${sources}`,
    '-o', 'Dir::Etc::SourceParts=-',
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o', 'APT::Sandbox::User=root',
  ];
  log(`fetching Debian's source package ${SERVER_PACKAGE}=${version} into ${root}`);
  const quiet = { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] as ('ignore' | 'pipe' | 'inherit')[] };
  execFileSync('apt-get', [...aptOpts, 'update'], quiet);
  const got = spawnSync('apt-get', [...aptOpts, 'source', `${SERVER_PACKAGE}=${version}`], { ...quiet, encoding: 'utf8' });
  if (got.status !== 0) {
    // A point release that has left the archive: the expected outputs must be those of the
    // installed server, so no other version will do.
    throw new Error(`apt-get source ${SERVER_PACKAGE}=${version} failed (is that version still in bookworm or bookworm-security?):\n${got.stdout}`);
  }
  if (!existsSync(join(regressDir, 'parallel_schedule'))) throw new Error(`the source package did not unpack to ${sourceDir}`);
  writeFileSync(marker, `${version}\n`);
  return { version, sourceDir, regressDir };
}

export function pgConfig(): string {
  const own = join(PG_LIB_DIR, 'bin', 'pg_config');
  if (existsSync(own)) return own;
  throw new Error(`${own} not found (install ${SERVER_DEV_PACKAGE})`);
}

/** Builds regress.so, refint.so and autoinc.so with PGXS; returns the directory (pg_regress --dlpath). */
export function buildModules(root: string, suite: Suite, log: Log): string {
  const dir = join(root, `build-${suite.version}`);
  const libs = ['regress', 'refint', 'autoinc'];
  if (libs.every((l) => existsSync(join(dir, `${l}.so`)))) return dir;
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(suite.regressDir, 'regress.c'), join(dir, 'regress.c'));
  copyFileSync(join(suite.sourceDir, 'contrib', 'spi', 'refint.c'), join(dir, 'refint.c'));
  copyFileSync(join(suite.sourceDir, 'contrib', 'spi', 'autoinc.c'), join(dir, 'autoinc.c'));
  // contrib/spi builds refint with REFINT_VERBOSE "for the regression tests" (its Makefile).
  writeFileSync(
    join(dir, 'Makefile'),
    [
      'MODULES = regress refint autoinc',
      'PG_CPPFLAGS = -DREFINT_VERBOSE',
      `PG_CONFIG = ${pgConfig()}`,
      'PGXS := $(shell $(PG_CONFIG) --pgxs)',
      'include $(PGXS)',
      '',
    ].join('\n'),
  );
  log(`building ${libs.map((l) => `${l}.so`).join(', ')} in ${dir}`);
  const r = spawnSync('make', ['-C', dir, '-s'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`building the test modules failed:\n${r.stdout}${r.stderr}`);
  return dir;
}

/** The installed pg_regress (Debian ships it in postgresql-client-15, same version as the server). */
export function pgRegressBinary(): string {
  const bin = join(PG_LIB_DIR, 'lib', 'pgxs', 'src', 'test', 'regress', 'pg_regress');
  if (!existsSync(bin)) throw new Error(`${bin} not found (install postgresql-client-15)`);
  return bin;
}

/** The tests of a schedule file, in the order pg_regress runs them with --max-connections=1. */
export function readSchedule(file: string): string[] {
  const tests: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^test:\s*(.*)$/.exec(line.trim());
    if (m) tests.push(...m[1]!.split(/\s+/).filter(Boolean));
  }
  return tests;
}
