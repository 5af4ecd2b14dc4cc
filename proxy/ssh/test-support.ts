// Shared set-up for the SSH gateway's integration tests: the real SSH listener (real token
// verifier with the development issuer, shell classifier, engine, audit log, approvals and
// recorder) in front of a throwaway sshd (testing/sshd.ts), and helpers that run the real OpenSSH
// clients against it with the token as the password (sshpass).

import { execFile, spawn, type ExecFileOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type Client as ClientT } from 'ssh2';
import { compilePolicy } from '../../engine/index.ts';
import { loadShellClassifier } from '../../stdlib/shell/index.ts';
import type { Sshd } from '../../testing/sshd.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { openAuditLog } from '../audit/index.ts';
import { createTokenVerifier, openDevIssuer, type DevIssuer } from '../identity/index.ts';
import type { AuditRecordInput, AuditSink, ApprovalMode } from '../ports.ts';
import { createSessionRecorder } from '../recording/index.ts';
import { openFileRateLimiter } from '../state/rate-limits.ts';
import type { SshUpstream } from './config.ts';
import { loadOrCreateHostKey } from './host-key.ts';
import { createInterimEnforcement } from './interim-enforcement.ts';
import { startSshListener, type SshListener, type SshRoute } from './server.ts';

export interface SshTestAudit extends AuditSink {
  records: AuditRecordInput[];
}

export interface SshTestGateway {
  listener: SshListener;
  port: number;
  issuer: DevIssuer;
  audit: SshTestAudit;
  approvals: FileApprovalService;
  stateDir: string;
  resourceName: string;
  /** The gateway's public host key line (`ssh-ed25519 AAAA...`). */
  hostKey: string;
  knownHosts: string;
  token(opts?: { sub?: string; groups?: string[]; ttlMs?: number }): Promise<string>;
  /** `ssh` argv (after `sshpass -e`) for `resource@gateway` with the given extra options. */
  sshArgs(extra?: string[]): string[];
  /** Runs `ssh ... resource@gateway COMMAND` with the token as the password. */
  ssh(token: string, command: string, opts?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

export interface RunOptions {
  input?: string | Buffer;
  /** Extra ssh options (`-o X=y`, `-t`). */
  args?: string[];
  encoding?: 'utf8' | 'buffer';
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  signal?: string;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface SshGatewayOptions {
  approvalMode?: ApprovalMode;
  resourceName?: string;
  /** Override the upstream (a wrong host key, a dead port). */
  upstream?: Partial<SshUpstream>;
  env?: string[];
  /** `recording.results`: keep channels' output (asciicast files next to the recordings). */
  recordResults?: boolean;
  /** `limit time`: SIGTERM → SIGKILL → channel close spacing (server.ts `killGraceMs`). */
  killGraceMs?: number;
}

export async function startSshTestGateway(sshd: Sshd, policyText: string, options: SshGatewayOptions = {}): Promise<SshTestGateway> {
  const stateDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hoop-sshgw-'));
  const issuer = await openDevIssuer(stateDir);
  const compiled = compilePolicy([{ file: 'test.hoop', text: policyText }]);
  if (!compiled.policy) throw new Error(`test policy does not compile: ${compiled.diagnostics.map((d) => d.message).join('; ')}`);
  const policy = compiled.policy;
  const log = await openAuditLog(join(stateDir, 'audit.jsonl'));
  const audit: SshTestAudit = {
    records: [],
    append(r, o) {
      audit.records.push(r);
      return log.append(r, o);
    },
    beforeForward(r, o) {
      audit.records.push(r);
      return log.beforeForward(r, o);
    },
    beforeAnswer: (seq) => log.beforeAnswer(seq),
    onSyncFailure: (listener) => log.onSyncFailure(listener),
    close: () => log.close(),
  };
  const approvals = await openApprovalService(stateDir);
  // The gateway's own rate-limit store (limit rate), as `hoop gateway` opens one in its state directory.
  const rateLimiter = await openFileRateLimiter(stateDir);
  const hostKey = loadOrCreateHostKey(join(stateDir, 'ssh_host_ed25519_key'));
  if (!hostKey.ok) throw new Error(hostKey.error);
  const { readFileSync } = await import('node:fs');
  const resourceName = options.resourceName ?? 'bastion-1';
  const upstream: SshUpstream = {
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKey: readFileSync(sshd.clientKeyFile, 'utf8'),
    hostKeys: [sshd.hostKey],
    hostKeySource: 'host_key',
    ...options.upstream,
  };
  const route: SshRoute = { resource: { kind: 'ssh', name: resourceName, labels: {} }, upstream };
  const enforcement = createInterimEnforcement({
    verifier: createTokenVerifier({
      issuer: issuer.issuer,
      audience: [issuer.audience],
      jwksFile: issuer.jwksFile,
      groupsClaim: 'groups',
      algorithms: ['ES256'],
      maxTokenTtlMs: 3_600_000,
      clockToleranceS: 5,
    }),
    policy: () => policy,
    shell: await loadShellClassifier(),
    audit,
    approvals,
    recorder: createSessionRecorder({ dir: join(stateDir, 'sessions'), ...(options.recordResults ? { results: true } : {}) }),
    approvalTimeoutMs: 60_000,
    guardrails: { rateLimiter },
  });
  const listener = await startSshListener({
    host: '127.0.0.1',
    port: 0,
    hostKey: hostKey.privateKey,
    resources: new Map([[resourceName, route]]),
    enforcement,
    approvalMode: options.approvalMode ?? 'hold',
    env: options.env ?? ['LANG', 'LC_*'],
    ...(options.killGraceMs !== undefined ? { killGraceMs: options.killGraceMs } : {}),
    log: () => undefined,
  });
  const knownHosts = join(stateDir, 'known_hosts');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(knownHosts, `[127.0.0.1]:${listener.port} ${hostKey.publicKey}\n`);
  const sshArgs = (extra: string[] = []) => [
    'ssh', '-F', '/dev/null', '-p', String(listener.port),
    '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes',
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1',
    '-o', 'LogLevel=ERROR',
    ...extra, `${resourceName}@127.0.0.1`,
  ];
  return {
    listener,
    port: listener.port,
    issuer,
    audit,
    approvals,
    stateDir,
    resourceName,
    hostKey: hostKey.publicKey,
    knownHosts,
    token: (o = {}) => issuer.mint({ sub: o.sub ?? 'agent-7', groups: o.groups ?? ['ops'], ttlMs: o.ttlMs ?? 600_000 }),
    sshArgs,
    ssh: (token, command, opts = {}) => runWithToken(token, [...sshArgs(opts.args), command], opts),
    async close() {
      await listener.close();
      await approvals.close();
      await rateLimiter.close();
      await audit.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Runs `sshpass -e ARGV...` with the token in SSHPASS; never rejects. */
export function runWithToken(token: string, argv: string[], opts: RunOptions & ExecFileOptions = {}): Promise<RunResult> {
  return run('sshpass', ['-e', ...argv], { ...opts, env: { ...process.env, SSHPASS: token } });
}

export function run(cmd: string, args: string[], opts: RunOptions & ExecFileOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, ...(signal ? { signal } : {}), stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** An ssh2 client logged in to the gateway as its resource, the token as the password. */
export function connectThrough(gw: Pick<SshTestGateway, 'port' | 'resourceName'>, token: string): Promise<ClientT> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c)).on('error', reject);
    c.connect({ host: '127.0.0.1', port: gw.port, username: gw.resourceName, password: token, hostVerifier: () => true });
  });
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One exec on an open ssh2 connection: stdout, stderr and the exit status; `endStdin` closes its stdin at once. */
export function execOn(conn: ClientT, command: string, opts: { endStdin?: boolean } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    conn.exec(command, (err, ch) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('exit', (c: number | null) => (code = c));
      ch.on('close', () => resolve({ code, stdout, stderr }));
      if (opts.endStdin) ch.end();
    });
  });
}

export { execFile };
