// Shared set-up for the gateway's integration tests and the benchmark: a real gateway (real token
// verifier with the development issuer, real classifier, engine, audit log and recorder) in front
// of a throwaway PostgreSQL cluster. Not a mock: the same startGateway the CLI runs.

import { execFile, type ExecFileOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicy } from '../../engine/index.ts';
import type { Cluster } from '../../testing/pg-cluster.ts';
import { openAuditLog } from '../audit/index.ts';
import type { GatewayConfig } from '../config.ts';
import { startGateway, type Gateway, type GatewayDeps } from '../gateway.ts';
import { createTokenVerifier, openDevIssuer, type DevIssuer } from '../identity/index.ts';
import type { AuditRecordInput, AuditSink } from '../ports.ts';
import type { Identity } from '../../stdlib/facts.ts';

export const ALLOW_ALL = `package t
default allow
`;

export const READ_ONLY = `package t
default block "this resource is read-only"

rule reads {
  match sql read, set, transaction, explain, utility
  allow
}
`;

/** Reads allowed, writes held for the `dba` group: the approval tests' policy. */
export const WRITES_NEED_DBA = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, utility
  allow
}

rule writes_need_dba {
  match sql insert, update, delete
  approve by group "dba" within 5m
}
`;

/** An approver in WRITES_NEED_DBA's group. */
export const DBA: Identity = { sub: 'dba-1', groups: ['dba'], claims: {} };

/** The audit sink used by tests: the real log, plus the records kept in memory for assertions. */
export interface RecordingAudit extends AuditSink {
  records: AuditRecordInput[];
  /** Makes every following append fail (to prove fail-closed behaviour). */
  failing: boolean;
  /** Keep `records` (default true); the benchmark turns it off so memory stays flat. */
  keepRecords: boolean;
}

async function auditFor(file: string): Promise<RecordingAudit> {
  const log = await openAuditLog(file);
  const sink: RecordingAudit = {
    records: [],
    failing: false,
    keepRecords: true,
    append(r, options) {
      if (sink.failing) return Promise.reject(new Error('audit disk is gone'));
      if (sink.keepRecords) sink.records.push(r);
      return log.append(r, options);
    },
    beforeForward(r, options) {
      if (sink.failing) return Promise.reject(new Error('audit disk is gone'));
      if (sink.keepRecords) sink.records.push(r);
      return log.beforeForward(r, options);
    },
    beforeAnswer: (seq) => log.beforeAnswer(seq),
    onSyncFailure: (listener) => log.onSyncFailure(listener),
    close: () => log.close(),
  };
  return sink;
}

export interface TestGateway {
  gateway: Gateway;
  /** The configuration it was started with (after `tweak`). */
  config: GatewayConfig;
  issuer: DevIssuer;
  audit: RecordingAudit;
  stateDir: string;
  resourceName: string;
  token(opts?: { sub?: string; groups?: string[]; ttlMs?: number }): Promise<string>;
  /** libpq connection string through the gateway. */
  conninfo(token: string, extra?: string): string;
  /** pg driver config through the gateway. */
  pgConfig(token: string): { host: string; port: number; user: string; password: string; database: string };
  close(): Promise<void>;
}

export function gatewayConfig(cluster: Cluster, stateDir: string, issuer: DevIssuer, resourceName: string): GatewayConfig {
  return {
    baseDir: stateDir,
    listen: { postgres: { host: '127.0.0.1', port: 0 } },
    identity: [
      {
        issuer: issuer.issuer,
        audience: [issuer.audience],
        jwksFile: issuer.jwksFile,
        groupsClaim: 'groups',
        algorithms: ['ES256'],
        maxTokenTtlMs: 3_600_000,
        clockToleranceS: 5,
      },
    ],
    resources: [
      {
        name: resourceName,
        kind: 'postgres',
        upstream: `postgres://127.0.0.1:${cluster.port}/${cluster.appUser.database}`,
        labels: {},
        user: cluster.appUser.user,
        password: cluster.appUser.password,
        tls: { mode: 'disable' },
      },
    ],
    policy: join(stateDir, 'policies'),
    state: stateDir,
    approvals: { mode: 'hold', timeoutMs: 60_000 },
    recording: { dir: join(stateDir, 'sessions'), results: false },
    audit: { file: join(stateDir, 'audit.jsonl') },
    masking: {},
  };
}

export async function startTestGateway(
  cluster: Cluster,
  policyText: string,
  deps: GatewayDeps = {},
  resourceName = 'prod-main',
  tweak?: (config: GatewayConfig) => void,
): Promise<TestGateway> {
  // State on tmpfs: the audit log's fsyncs (a write's answer waits for one) do not dominate test time.
  const stateDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hoop-gw-'));
  const issuer = await openDevIssuer(stateDir);
  const config = gatewayConfig(cluster, stateDir, issuer, resourceName);
  tweak?.(config);
  const compiled = compilePolicy([{ file: 'test.hoop', text: policyText }]);
  if (!compiled.policy) throw new Error(`test policy does not compile: ${compiled.diagnostics.map((d) => d.message).join('; ')}`);
  const audit = await auditFor(config.audit.file);
  const started = await startGateway(config, {
    policy: compiled.policy,
    verifier: createTokenVerifier(config.identity),
    audit,
    log: () => undefined,
    ...deps,
  });
  if (!started.ok) throw new Error(started.errors.join('\n'));
  const gateway = started.gateway;
  return {
    gateway,
    config,
    issuer,
    audit,
    stateDir,
    resourceName,
    token: (o = {}) => issuer.mint({ sub: o.sub ?? 'agent-7', groups: o.groups ?? ['data-reader'], ttlMs: o.ttlMs ?? 600_000 }),
    conninfo: (token, extra = '') =>
      `host=127.0.0.1 port=${gateway.postgresPort} dbname=${resourceName} user=agent-7 password=${token} sslmode=disable ${extra}`.trim(),
    pgConfig: (token) => ({ host: '127.0.0.1', port: gateway.postgresPort, user: 'agent-7', password: token, database: resourceName }),
    async close() {
      await gateway.close();
      await audit.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a PostgreSQL client binary; never rejects (the exit code is part of the result). */
export function run(cmd: string, args: string[], opts: ExecFileOptions & { input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8', ...opts }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
