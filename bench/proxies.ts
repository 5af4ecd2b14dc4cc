// The proxies the gateway bench compares, each started as its own process the way its users start
// it, so that its CPU can be read from /proc (proc-cpu.ts) and nothing shares the bench's event loop:
// - `hoop gateway --config hoop.yaml` (this repository's CLI), its state directory where asked;
// - a bare Node.js byte relay (the floor for any Node.js proxy on this machine);
// - pgbouncer (Debian package, session pooling): the reference C pooler;
// - pgpool-II (Debian `pgpool2`, streaming-replication mode, one backend): a C proxy that parses
//   every statement, the nearest thing to what the gateway does.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDevIssuer } from '../proxy/identity/index.ts';
import { run } from '../proxy/postgres/test-support.ts';
import { freePort, type Cluster } from '../testing/pg-cluster.ts';

export interface Proxy {
  name: string;
  port: number;
  /** The process whose tree's CPU is the proxy's. */
  pid: number;
  user: string;
  password: string;
  database: string;
  stop(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;
const repo = resolve(import.meta.dirname, '..');

function postgresIds(): { uid: number; gid: number } {
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
}

/** Spawns as the `postgres` OS user when running as root (pgbouncer and pgpool refuse root or should not run as it). */
function spawnAsPostgres(bin: string, args: string[]): ChildProcess {
  return isRoot ? spawn('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function chownAll(paths: string[]): void {
  if (!isRoot) return;
  const { uid, gid } = postgresIds();
  for (const p of paths) chownSync(p, uid, gid);
}

async function waitForSql(cluster: Cluster, port: number, database: string, user: string, password: string, what: string, log: () => string): Promise<void> {
  let last = '';
  for (let i = 0; i < 200; i++) {
    const r = await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', 'SELECT 1', `host=127.0.0.1 port=${port} dbname=${database} user=${user} password=${password} sslmode=disable connect_timeout=2`]);
    if (r.code === 0) return;
    last = r.stderr;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`${what} did not accept connections: ${last}\n${log()}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  };
}

/** In a directory of its own (owned by `postgres` when running as root), removed by `stop`. */
export async function startPgbouncer(cluster: Cluster): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-pgbouncer-'));
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'userlist.txt');
  const { user, password } = cluster.appUser;
  writeFileSync(users, `"${user}" "${password}"\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `bench = host=127.0.0.1 port=${cluster.port} dbname=app`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = plain',
      `auth_file = ${users}`,
      'pool_mode = session',
      'max_client_conn = 200',
      'default_pool_size = 50',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      '',
    ].join('\n'),
  );
  chownAll([dir, ini, users]);
  const child = spawnAsPostgres('/usr/sbin/pgbouncer', [ini]);
  let log = '';
  child.stderr!.on('data', (d) => (log += d.toString()));
  await waitForSql(cluster, port, 'bench', user, password, 'pgbouncer', () => log);
  const stop = stopper(child);
  return { name: 'pgbouncer (session)', port, pid: child.pid!, user, password, database: 'bench', stop: async () => (await stop(), rmSync(dir, { recursive: true, force: true })) };
}

export async function startPgpool(cluster: Cluster): Promise<Proxy> {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-pgpool-'));
  const port = await freePort();
  const pcpPort = await freePort();
  const { user, password } = cluster.appUser;
  const conf = join(dir, 'pgpool.conf');
  const hba = join(dir, 'pool_hba.conf');
  const pcp = join(dir, 'pcp.conf');
  const passwd = join(dir, 'pool_passwd');
  writeFileSync(
    conf,
    [
      "backend_clustering_mode = 'streaming_replication'",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "pcp_listen_addresses = '127.0.0.1'",
      `pcp_port = ${pcpPort}`,
      `pcp_socket_dir = '${dir}'`,
      "backend_hostname0 = '127.0.0.1'",
      `backend_port0 = ${cluster.port}`,
      'backend_weight0 = 1',
      "backend_flag0 = 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER'",
      'enable_pool_hba = on',
      `pool_passwd = '${passwd}'`,
      'num_init_children = 32',
      'max_pool = 1',
      'connection_cache = on',
      'load_balance_mode = off',
      'sr_check_period = 0',
      'health_check_period = 0',
      'failover_on_backend_error = off',
      `logdir = '${dir}'`,
      `pid_file_name = '${join(dir, 'pgpool.pid')}'`,
      "log_destination = 'stderr'",
      'log_min_messages = warning',
      '',
    ].join('\n'),
  );
  writeFileSync(hba, 'host all all 127.0.0.1/32 scram-sha-256\n');
  writeFileSync(pcp, '');
  // `TEXT` prefix: the password in clear, so pgpool can run SCRAM with the client and the server.
  writeFileSync(passwd, `${user}:TEXT${password}\n`, { mode: 0o600 });
  chownAll([dir, conf, hba, pcp, passwd]);
  const child = spawnAsPostgres('/usr/sbin/pgpool', ['-n', '-f', conf, '-a', hba, '-F', pcp]);
  let log = '';
  child.stderr!.on('data', (d) => (log += d.toString()));
  await waitForSql(cluster, port, 'app', user, password, 'pgpool-II', () => log);
  const stop = stopper(child);
  return {
    name: 'pgpool-II (streaming)',
    port,
    pid: child.pid!,
    user,
    password,
    database: 'app',
    stop: async () => {
      // pgpool's children exit with it; a fast shutdown does not wait for idle clients.
      await run('/usr/sbin/pgpool', ['-f', conf, '-m', 'fast', 'stop']).catch(() => undefined);
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The floor for any Node.js proxy on this machine: a byte relay (socket.pipe both ways, no framing,
 * no policy, no audit) in its own process. The gateway's distance to it is the price of what it does
 * per statement; its distance to direct is Node's own socket cost.
 */
export async function startNodeRelay(cluster: Cluster): Promise<Proxy> {
  const script = `
    import { connect, createServer } from 'node:net';
    const server = createServer((client) => {
      const upstream = connect(${cluster.port}, '127.0.0.1');
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    server.listen(0, '127.0.0.1', () => process.stderr.write('port ' + server.address().port + '\\n'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise<number>((res, rej) => {
    child.stderr!.on('data', (d) => {
      log += d.toString();
      const m = /port (\d+)/.exec(log);
      if (m) res(Number(m[1]));
    });
    child.once('exit', () => rej(new Error(`node relay exited: ${log}`)));
  });
  const { user, password } = cluster.appUser;
  return { name: 'node relay (floor)', port, pid: child.pid!, user, password, database: 'app', stop: stopper(child) };
}

export interface GatewayOptions {
  name: string;
  /** The state directory (audit log, recordings, approvals). */
  state: string;
  policy: string;
  durability?: 'commit' | 'strict' | 'async';
  /** The checkout whose `hoop` CLI runs (default this one): another commit's, to compare with. */
  repo?: string;
}

/** `hoop gateway --config <state>/hoop.yaml`, the CLI in its own process, as a user starts it. */
export async function startHoopGateway(cluster: Cluster, opts: GatewayOptions): Promise<Proxy> {
  mkdirSync(join(opts.state, 'policies'), { recursive: true });
  writeFileSync(join(opts.state, 'policies', 'bench.hoop'), opts.policy);
  const issuer = await openDevIssuer(join(opts.state, 'issuer'));
  const port = await freePort();
  const adminPort = await freePort();
  const config = join(opts.state, 'hoop.yaml');
  writeFileSync(
    config,
    `listen:
  postgres: 127.0.0.1:${port}
  admin: 127.0.0.1:${adminPort}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
  max_token_ttl: 2h
resources:
  - name: bench
    kind: postgres
    upstream: postgres://127.0.0.1:${cluster.port}/app
    user_env: BENCH_PG_USER
    password_env: BENCH_PG_PASSWORD
policy: ./policies
state: ./state
audit: { durability: ${opts.durability ?? 'commit'} }
`,
  );
  const from = opts.repo ?? repo;
  const child = spawn(process.execPath, ['--import', 'tsx', join(from, 'cli', 'main.ts'), 'gateway', '--config', config], {
    cwd: from,
    env: { ...process.env, BENCH_PG_USER: cluster.appUser.user, BENCH_PG_PASSWORD: cluster.appUser.password },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((res, rej) => {
    child.stderr!.on('data', (d) => {
      log += d.toString();
      if (log.includes('postgres on')) res();
    });
    child.once('exit', (code) => rej(new Error(`hoop gateway exited (${code}): ${log}`)));
  });
  const health = (await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json()) as { status: string; checks: { audit: string } };
  if (health.status !== 'ok') throw new Error(`hoop gateway ${opts.name} is not healthy: ${JSON.stringify(health)}`);
  const token = await issuer.mint({ sub: 'bench', groups: ['data-writer'], ttlMs: 7_000_000 });
  return { name: opts.name, port, pid: child.pid!, user: 'agent', password: token, database: 'bench', stop: stopper(child) };
}

/** The filesystem holding `path` (longest mount point of /proc/mounts that contains it). */
export function filesystemOf(path: string): { type: string; device: string; mount: string } {
  const abs = resolve(path);
  let best = { type: 'unknown', device: '?', mount: '' };
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!device || !mount || !type) continue;
      const m = mount.replace(/\\040/g, ' ');
      if ((abs === m || abs.startsWith(m.endsWith('/') ? m : `${m}/`)) && m.length >= best.mount.length) best = { type, device, mount: m };
    }
  } catch {
    /* not Linux */
  }
  return best;
}

export const MEMORY_FILESYSTEMS = new Set(['tmpfs', 'ramfs']);

