// A throwaway PostgreSQL 15 cluster for tests and benchmarks.
//
// The server refuses to run as root, and CI runs as root, so when we are root the cluster is
// initialised and started as the `postgres` OS user (runuser). It listens on 127.0.0.1 only, on a
// free port, with trust auth for the superuser `postgres` plus a password user for the gateway
// tests (SCRAM), and is removed on stop().

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cluster {
  host: string;
  port: number;
  /** Superuser connection string (trust auth on loopback). */
  url: string;
  /** A non-superuser with a SCRAM password, owner of database `app`. */
  appUser: { user: string; password: string; database: string; url: string };
  binDir: string;
  dataDir: string;
  /** Runs SQL as the superuser through psql and returns stdout (tuples only, unaligned). */
  psql(sql: string, database?: string): string;
  stop(): Promise<void>;
}

export function findPgBinDir(): string {
  const candidates = [process.env.PG_BIN_DIR, '/usr/lib/postgresql/15/bin'];
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const v of readdirSync(base).sort().reverse()) candidates.push(join(base, v, 'bin'));
  }
  for (const c of candidates) if (c && existsSync(join(c, 'pg_ctl'))) return c;
  throw new Error('PostgreSQL server binaries not found (install the Debian package `postgresql`, or set PG_BIN_DIR)');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pgUid(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** argv to run a server binary as the right OS user. */
function asPgUser(bin: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

export interface ClusterOptions {
  /** Extra lines for postgresql.conf. */
  config?: string[];
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const binDir = findPgBinDir();
  const root = mkdtempSync(join(tmpdir(), 'hoop-pg-'));
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  execFileSync('mkdir', ['-p', socketDir]);
  if (isRoot) {
    const { uid, gid } = pgUid();
    chownSync(root, uid, gid);
    chownSync(socketDir, uid, gid);
  }
  const port = await freePort();
  const [initCmd, initArgs] = asPgUser(join(binDir, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync',
  ]);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${socketDir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 200',
    'shared_buffers = 64MB',
    'log_min_messages = warning',
    ...(options.config ?? []),
  ];
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
  // Superuser by trust on loopback (test tooling); every other role must use SCRAM.
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'),
  );
  const [startCmd, startArgs] = asPgUser(join(binDir, 'postgres'), ['-D', dataDir]);
  const child: ChildProcess = spawn(startCmd, startArgs, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });

  const psqlBin = join(binDir, 'psql');
  const psql = (sql: string, database = 'postgres'): string =>
    execFileSync(psqlBin, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-c', sql], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      psql('SELECT 1');
      break;
    } catch {
      if (child.exitCode !== null) throw new Error(`postgres exited during start-up: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`postgres did not start within 30s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const appUser = { user: 'app', password: 'app-secret-pw', database: 'app', url: '' };
  psql(`CREATE ROLE app LOGIN PASSWORD '${appUser.password}'`);
  psql('CREATE DATABASE app OWNER app');
  appUser.url = `postgres://${appUser.user}:${appUser.password}@127.0.0.1:${port}/${appUser.database}`;

  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    appUser,
    binDir,
    dataDir,
    psql,
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
      // runuser does not forward signals to the server, so ask pg_ctl (immediate: nothing to keep).
      const [stopCmd, stopArgs] = asPgUser(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      try {
        execFileSync(stopCmd, stopArgs, { stdio: 'ignore' });
      } catch {
        child.kill('SIGKILL');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
