// Wiring: configuration → verifier, policy, classifier, services → the PostgreSQL listener.
// Every service can be injected (tests, the demo); what is not injected is built from the config.

import { watch, type FSWatcher } from 'node:fs';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { compilePolicy, loadPolicySources, type PreparedPolicy } from '../engine/index.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { openAuditLog } from './audit/index.ts';
import type { GatewayConfig } from './config.ts';
import { isLoopback } from './config.ts';
import { createTokenVerifier } from './identity/index.ts';
import type { ApprovalService, AuditSink, GatewayMetrics, ResultMasker, SessionRecorder, TokenVerifier } from './ports.ts';
import { CancelRegistry } from './postgres/cancel.ts';
import type { PolicyEvaluator, SessionClassifier } from './postgres/enforcement/decider.ts';
import { startPgListener } from './postgres/listener.ts';
import type { RoutedResource } from './postgres/session/services.ts';
import { upstreamTarget } from './postgres/session/upstream.ts';
import { createSessionRecorder } from './recording/index.ts';

export interface GatewayDeps {
  verifier?: TokenVerifier;
  /** A fixed policy (tests); otherwise compiled from `config.policy` and reloaded on SIGHUP / change. */
  policy?: PolicyEvaluator;
  classifier?: SessionClassifier;
  audit?: AuditSink;
  recorder?: SessionRecorder | null;
  approvals?: ApprovalService;
  masker?: ResultMasker;
  metrics?: GatewayMetrics;
  /** Watch the policy path and reload on SIGHUP (default true when the policy comes from config). */
  reload?: boolean;
  log?: (line: string) => void;
}

export interface Gateway {
  postgresPort: number;
  /** Sessions currently open. */
  readonly sessions: number;
  /** Recompiles the policy from `config.policy`; on errors the old policy stays. */
  reloadPolicy(): Promise<{ ok: boolean; diagnostics: string[] }>;
  /** The policy now in force (undefined only if none ever compiled). */
  readonly policy: PolicyEvaluator | undefined;
  close(): Promise<void>;
}

export type GatewayStart = { ok: true; gateway: Gateway } | { ok: false; errors: string[] };

/** Compiles the configured policy; returns the diagnostics as `file:line:col: CODE message` lines. */
async function compileFromPath(path: string): Promise<{ policy?: PreparedPolicy; diagnostics: string[] }> {
  const loaded = await loadPolicySources(path);
  const out = loaded.sources.length > 0 ? compilePolicy(loaded.sources) : undefined;
  const diags = [...loaded.diagnostics, ...(out?.diagnostics ?? [])];
  const lines = diags.map((d) => `${d.span.file}:${d.span.startLine}:${d.span.startColumn}: ${d.severity} ${d.code}: ${d.message}`);
  const failed = loaded.diagnostics.some((d) => d.severity === 'error');
  return { ...(out?.policy && !failed ? { policy: out.policy } : {}), diagnostics: lines };
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps = {}): Promise<GatewayStart> {
  const log = deps.log ?? ((line: string) => process.stderr.write(`hoop gateway: ${line}\n`));
  const errors: string[] = [];

  // Resources: the client's dbname selects one.
  const resources = new Map<string, RoutedResource>();
  for (const r of config.resources) {
    if (r.kind !== 'postgres') continue;
    const t = upstreamTarget(r.upstream, { ...(r.user ? { user: r.user } : {}), ...(r.password ? { password: r.password } : {}) }, r.tls);
    if (typeof t === 'string') errors.push(`resource ${r.name}: ${t}`);
    else resources.set(r.name, { resource: { kind: 'postgres', name: r.name, labels: r.labels }, target: t });
  }

  let tls: SecureContext | undefined;
  if (config.tls) {
    try {
      tls = createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) });
    } catch (e) {
      errors.push(`tls: ${(e as Error).message}`);
    }
  } else if (!isLoopback(config.listen.postgres.host)) {
    errors.push(`tls: required when listening off loopback (${config.listen.postgres.host})`);
  }

  // Policy: compiled once now; reload swaps the reference atomically, so a session's next decision uses it.
  let current: PolicyEvaluator | undefined = deps.policy;
  const reloadPolicy = async (): Promise<{ ok: boolean; diagnostics: string[] }> => {
    const r = await compileFromPath(config.policy);
    if (!r.policy) {
      log(`policy reload rejected; keeping the previous policy:\n${r.diagnostics.join('\n')}`);
      return { ok: false, diagnostics: r.diagnostics };
    }
    current = r.policy;
    return { ok: true, diagnostics: r.diagnostics };
  };
  if (!current) {
    const first = await reloadPolicy();
    if (!first.ok) errors.push(`policy ${config.policy}: does not compile`, ...first.diagnostics);
  }
  if (errors.length > 0) return { ok: false, errors };

  const classifier = deps.classifier ?? (await loadSqlClassifier());
  const verifier = deps.verifier ?? createTokenVerifier(config.identity);
  const audit = deps.audit ?? (await openAuditLog(config.audit.file));
  const recorder = deps.recorder === null ? undefined : (deps.recorder ?? createSessionRecorder({ dir: config.recording.dir, results: config.recording.results }));
  const cancels = new CancelRegistry();

  const listener = await startPgListener(config.listen.postgres.host, config.listen.postgres.port, {
    verifier,
    classifier,
    policy: () => current,
    audit,
    ...(recorder ? { recorder } : {}),
    ...(deps.approvals ? { approvals: deps.approvals } : {}),
    approvalMode: config.approvals.mode,
    approvalTimeoutMs: config.approvals.timeoutMs,
    ...(deps.masker ? { masker: deps.masker } : {}),
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    resources,
    ...(tls ? { tls } : {}),
    cancels,
    log,
  });

  // Reload on SIGHUP and on change of the policy path (debounced: editors write in several steps).
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onHup = (): void => void reloadPolicy();
  const reloadEnabled = deps.reload ?? deps.policy === undefined;
  if (reloadEnabled) {
    process.on('SIGHUP', onHup);
    try {
      watcher = watch(config.policy, { recursive: true }, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reloadPolicy(), 200);
      });
      watcher.on('error', () => undefined);
    } catch {
      // Watching is a convenience; SIGHUP still works.
    }
  }

  return {
    ok: true,
    gateway: {
      postgresPort: listener.port,
      get sessions() {
        return listener.sessions;
      },
      get policy() {
        return current;
      },
      reloadPolicy,
      async close() {
        if (reloadEnabled) process.off('SIGHUP', onHup);
        clearTimeout(timer);
        watcher?.close();
        await listener.close();
        if (!deps.audit) await audit.close();
      },
    },
  };
}
