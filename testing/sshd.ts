// A throwaway OpenSSH server for tests and benchmarks.
//
// `startSshd()` writes its own sshd_config, an ed25519 host key, a client key pair and an
// authorized_keys file into a temp dir and runs the real /usr/sbin/sshd in the foreground on
// 127.0.0.1 and a free port, as the current OS user (root in CI: the privilege separation
// directory /run/sshd is created then). Only public-key authentication with the generated client
// key is accepted. `stop()` ends the server and removes the dir. `home` is a scratch directory
// the tests use as the remote working area (commands run in the user's real home otherwise).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pg-cluster.ts';

export interface Sshd {
  host: string;
  port: number;
  /** The OS user the server runs as and logs in. */
  user: string;
  /** The server's public host key, `ssh-ed25519 AAAA...`. */
  hostKey: string;
  /** Private key file (OpenSSH format) the server accepts for `user`. */
  clientKeyFile: string;
  clientPublicKey: string;
  /** A scratch directory for the tests' files on the "remote" side. */
  scratch: string;
  /** The temp dir holding everything (removed on stop). */
  dir: string;
  /** Runs a command over real `ssh` directly against the server (not through the gateway). */
  ssh(command: string): string;
  stop(): Promise<void>;
}

export function findSshd(): string {
  for (const c of [process.env.SSHD_BIN, '/usr/sbin/sshd']) if (c && existsSync(c)) return c;
  throw new Error('OpenSSH server not found (install the Debian package `openssh-server`, or set SSHD_BIN)');
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export interface SshdOptions {
  /** Extra sshd_config lines. */
  config?: string[];
  /**
   * The OS user the client logs in as (default: the current one). Run as root, a non-root login
   * makes sshd serve the session from an unprivileged child, the only place it delivers `signal`
   * channel requests from (a root login has none: sshd refuses to signal its commands).
   */
  login?: string;
}

/** A login other than root to test what only non-root sessions do (signals): `postgres` (the test clusters' user) when run as root. */
export function nonRootLogin(): string | undefined {
  if (!isRoot) return undefined;
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'pipe' });
    return 'postgres';
  } catch {
    return undefined;
  }
}

/** `ssh-keygen -t ed25519` into FILE (no passphrase); returns the public key line. */
export function generateKey(file: string, comment = 'hoop-test'): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
  chmodSync(file, 0o600);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const bin = findSshd();
  const dir = mkdtempSync(join(tmpdir(), 'hoop-sshd-'));
  chmodSync(dir, 0o700);
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const hostKeyFile = join(dir, 'host_ed25519');
  const hostKey = generateKey(hostKeyFile, 'hoop-test-host').split(' ').slice(0, 2).join(' ');
  const clientKeyFile = join(dir, 'client_ed25519');
  const clientPublicKey = generateKey(clientKeyFile, 'hoop-test-client');
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, `${clientPublicKey}\n`, { mode: 0o600 });
  const login = options.login ?? userInfo().username;
  if (login !== userInfo().username) {
    // sshd reads authorized_keys as the user logging in; the scratch area is that user's too.
    chmodSync(dir, 0o711);
    chmodSync(authorized, 0o644);
    execFileSync('chown', [login, scratch]);
  }
  if (isRoot && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  const port = await freePort();
  const conf = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKeyFile}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorized}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    // A locked account (the system users' `!` password) may still log in by key only through PAM's account check.
    login === userInfo().username ? 'UsePAM no' : 'UsePAM yes',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'PrintLastLog no',
    'AcceptEnv LANG LC_*',
    'LogLevel ERROR',
    'MaxSessions 100',
    'MaxStartups 100:30:200',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    ...(options.config ?? []),
  ];
  const confFile = join(dir, 'sshd_config');
  writeFileSync(confFile, `${conf.join('\n')}\n`);
  const child: ChildProcess = spawn(bin, ['-D', '-e', '-f', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  // Ready when the server sends its identification string.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited during start-up: ${stderr}`);
    if (await banner(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not start within 30s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const user = login;
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user,
    hostKey,
    clientKeyFile,
    clientPublicKey,
    scratch,
    dir,
    ssh(command: string): string {
      return execFileSync('ssh', [
        '-F', '/dev/null', '-i', clientKeyFile, '-p', String(port), '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes', `${user}@127.0.0.1`, command,
      ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\n')) {
        s.destroy();
        resolve(got.startsWith('SSH-2.0-'));
      }
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(got.startsWith('SSH-2.0-')));
  });
}
