// Wiring: configuration → verifier, policy, classifier, services → the PostgreSQL listener.
// Every service can be injected (tests, the demo); what is not injected is built from the config.

import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { openAuditLog } from './audit/index.ts';
import { inlineSyncBelowUs } from './audit/durability.ts';
import type { GatewayConfig } from './config.ts';
import { isLoopback } from './config.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { createTokenVerifier } from './identity/index.ts';
import type { ApprovalService, AuditSink, FunctionResolver, GatewayMetrics, ResultMasker, SessionRecorder, TokenVerifier } from './ports.ts';
import { createFunctionResolver, type ClosableFunctionResolver } from './postgres/function-resolver.ts';
import { createNameCatalogs, type NameCatalogs } from './postgres/name-catalog.ts';
import { CancelRegistry } from './postgres/cancel.ts';
import { ClassifierPool } from './postgres/enforcement/classifier-pool.ts';
import { Enforcer, type PolicyEvaluator } from './enforcement/index.ts';
import type { SessionClassifier } from './postgres/enforcement/statements.ts';
import { startPgListener } from './postgres/listener.ts';
import type { RoutedResource } from './postgres/session/services.ts';
import { upstreamTarget } from './postgres/session/upstream.ts';
import { openPolicySource, type PolicySource } from './policy-source.ts';
import { createSessionRecorder } from './recording/index.ts';
import { catalogConnection, pgConnection } from './catalog-connection.ts';
import { createEstimator } from './postgres/estimates.ts';
import { openFileRateLimiter, openPgRateLimiter, type RateLimiter } from './state/rate-limits.ts';
import type { EnforcerServices } from './enforcement/index.ts';

export interface GatewayDeps {
  verifier?: TokenVerifier;
  /**
   * The policy to enforce (read once per decision, so swapping what it delegates to is atomic).
   * Without it the gateway opens `config.policy` itself (proxy/policy-source.ts: reload on SIGHUP
   * and file change).
   */
  policy?: PolicyEvaluator;
  classifier?: SessionClassifier;
  audit?: AuditSink;
  recorder?: SessionRecorder | null;
  approvals?: ApprovalService;
  masker?: ResultMasker;
  /** Names FunctionCall targets; by default a catalog connection per resource, opened on first use. */
  functions?: FunctionResolver;
  /** Resolves unqualified table names (search_path); by default a catalog connection per resource, opened on first use. */
  names?: NameCatalogs;
  metrics?: GatewayMetrics;
  /**
   * `policy_shadow`: the candidate set decided next to the active one (never enforced). Without it
   * the gateway opens `config.policyShadow` itself when it is set (reloaded on its own).
   */
  shadowPolicy?: () => PolicyEvaluator | undefined;
  /** `limit rate` counters; by default the state store's (the state directory, or `state: postgres://`). */
  rateLimiter?: RateLimiter;
  /** Cost facts (`sql.estimate`): by default EXPLAIN on each resource's catalog connection. */
  estimator?: EnforcerServices['estimator'];
  /** Accepted for compatibility; reloading belongs to the policy source. */
  reload?: boolean;
  log?: (line: string) => void;
}

export interface Gateway {
  postgresPort: number;
  /** Sessions currently open. */
  readonly sessions: number;
  /** The policy now in force (undefined only if none ever compiled). */
  readonly policy: PolicyEvaluator | undefined;
  /**
   * The gateway's one enforcer (policy, audit chain, recorder, approvals, masker, metrics, rate
   * store, shadow set, estimator): the SSH and MCP front doors open their sessions on it too.
   */
  readonly enforcer: Enforcer;
  /** The rate-limit counters, shadow set and estimator (also inside `enforcer`). */
  readonly guardrails: Pick<EnforcerServices, 'rateLimiter' | 'shadowPolicy' | 'estimator'>;
  /** Long statements being classified off the event loop now (queued or in a worker). */
  readonly classificationsInFlight: number;
  close(): Promise<void>;
}

export type GatewayStart = { ok: true; gateway: Gateway } | { ok: false; errors: string[] };

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

  // Policy: injected, or opened from config.policy (compiled now, swapped atomically on reload).
  let source: PolicySource | undefined;
  if (!deps.policy && errors.length === 0) {
    const opened = await openPolicySource({ path: config.policy, log });
    source = opened.source;
    if (!source.current()) errors.push(`policy ${config.policy}: does not compile`, ...opened.first.diagnostics);
  }
  const current = (): PolicyEvaluator | undefined => deps.policy ?? source?.current();
  // The shadow set: its own source, compiled and reloaded independently of the active one.
  let shadowSource: PolicySource | undefined;
  if (!deps.shadowPolicy && config.policyShadow && errors.length === 0) {
    const opened = await openPolicySource({ path: config.policyShadow, log: (line) => log(`shadow ${line}`) });
    shadowSource = opened.source;
    if (!shadowSource.current()) errors.push(`policy_shadow ${config.policyShadow}: does not compile`, ...opened.first.diagnostics);
  }
  const shadowPolicy = deps.shadowPolicy ?? (shadowSource ? () => shadowSource!.current() : undefined);
  if (errors.length > 0) {
    source?.close();
    shadowSource?.close();
    return { ok: false, errors };
  }
  let ownRates: RateLimiter | undefined;
  try {
    ownRates = deps.rateLimiter ? undefined : config.stateStore
      ? await openPgRateLimiter({ connection: { ...pgConnection(config.stateStore.url), ...(config.stateStore.password ? { password: config.stateStore.password } : {}) } })
      : await openFileRateLimiter(config.state, { log });
  } catch (e) {
    source?.close();
    shadowSource?.close();
    return { ok: false, errors: [`state: the rate-limit counters cannot be opened: ${(e as Error).message}`] };
  }
  const rateLimiter = deps.rateLimiter ?? ownRates!;
  const byName = new Map(config.resources.map((r) => [r.name, r]));
  const ownEstimator = deps.estimator ? undefined : createEstimator({ connectionFor: (resource) => {
    const r = byName.get(resource.name);
    return r ? catalogConnection(r) : undefined;
  } });
  const estimator = deps.estimator ?? ownEstimator;

  const classifier = deps.classifier ?? (await loadSqlClassifier());
  const verifier = deps.verifier ?? createTokenVerifier(config.identity);
  const audit = deps.audit ?? (await openAuditLog(config.audit.file, { durability: config.audit.durability, maxDelayMs: config.audit.maxDelayMs, inlineSyncBelowUs: inlineSyncBelowUs(config.audit.sync) }));
  const ownFunctions: ClosableFunctionResolver | undefined = deps.functions ? undefined : createFunctionResolver(config.resources);
  const functions: FunctionResolver = deps.functions ?? ownFunctions!;
  const ownNames: NameCatalogs | undefined = deps.names ? undefined : createNameCatalogs(config.resources);
  const names: NameCatalogs = deps.names ?? ownNames!;
  const recorder = deps.recorder === null ? undefined : (deps.recorder ?? createSessionRecorder({ dir: config.recording.dir, results: config.recording.results }));
  const cancels = new CancelRegistry();
  // Long statements are classified off the event loop (workers start on first use).
  const limits = config.limits ?? DEFAULT_LIMITS;
  const classifierPool = new ClassifierPool({ size: limits.classifierWorkers, timeoutMs: limits.classificationTimeoutMs });

  // One enforcer for every front door: decisions, approvals, masks, audit and recording.
  const enforcer = new Enforcer({ policy: current, audit, recorder, approvals: deps.approvals, approvalTimeoutMs: config.approvals.timeoutMs, masker: deps.masker, metrics: deps.metrics, shadowPolicy, rateLimiter, estimator });
  const listener = await startPgListener(config.listen.postgres.host, config.listen.postgres.port, {
    verifier,
    classifier,
    classifierPool,
    enforcer,
    approvalMode: config.approvals.mode,
    functions,
    names: (resource) => names.catalogFor(resource),
    resources,
    ...(tls ? { tls } : {}),
    cancels,
    ...(config.limits ? { limits: config.limits } : {}),
    log,
  });

  return {
    ok: true,
    gateway: {
      postgresPort: listener.port,
      get sessions() {
        return listener.sessions;
      },
      get policy() {
        return current();
      },
      enforcer,
      guardrails: { rateLimiter, shadowPolicy, estimator },
      get classificationsInFlight() {
        return classifierPool.inFlight;
      },
      async close() {
        source?.close();
        shadowSource?.close();
        await listener.close();
        await ownRates?.close();
        await ownEstimator?.close();
        await classifierPool.close();
        if (!deps.audit) await audit.close();
        await ownFunctions?.close();
        await ownNames?.close();
      },
    },
  };
}
