// The whole gateway process from one resolved config: the policy source (load + reload), the
// services shared by every front door (one audit writer per file, since the chain has one tail; one
// approval service; one metrics registry), the result masker with a catalog connection per
// resource, the PostgreSQL listener (proxy/gateway.ts, which builds the gateway's one Enforcer),
// the SSH and MCP front doors on that same Enforcer, and the admin API. `hoop gateway` and
// `hoop demo` use it.

import type { ClientConfig } from 'pg';
import type { GatewayConfig, ResourceConfig } from './config.ts';
import { catalogConnection, pgConnection } from './catalog-connection.ts';
import { createFunctionResolver } from './postgres/function-resolver.ts';
import { createNameCatalogs } from './postgres/name-catalog.ts';
import { createTokenVerifier } from './identity/verifier.ts';
import { openAuditLog } from './audit/sink.ts';
import { inlineSyncBelowUs } from './audit/durability.ts';
import { openApprovalService } from './approvals/file-service.ts';
import { createWebhooks, wireWebhooks } from './approvals/webhooks.ts';
import { openPgApprovalService } from './approvals/pg-service.ts';
import type { ApprovalStore } from './approvals/rules.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { startAdminServer, type AdminServer } from './admin/server.ts';
import { startGateway, type Gateway, type GatewayDeps } from './gateway.ts';
import { createResultMasker } from './masking/index.ts';
import type { AuditSink, TokenVerifier } from './ports.ts';
import { openPolicySource, type PolicySource } from './policy-source.ts';
import { createEstimator } from './postgres/estimates.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { createMcpHttp, type McpHttp } from './mcp/http.ts';
import { createCoreEnforcement } from './mcp/core-enforcement.ts';
import { DEFAULT_MCP_SETTINGS } from './mcp/settings.ts';
import { PgUpstreams } from './mcp/upstream.ts';
import { mcpSshRunner } from './mcp/ssh-wiring.ts';
import { createSshEnforcement } from './ssh/interim-enforcement.ts';
import { startSshFrontDoor } from './ssh/start.ts';
import type { SshListener } from './ssh/server.ts';
import { loadShellClassifier } from '../stdlib/shell/index.ts';

export interface RunningGateway {
  gateway: Gateway;
  /** The policy in force; reloads on SIGHUP and file change (`policy.reload()` forces one). */
  policy: PolicySource;
  /** Undefined when `listen.admin` is not configured. */
  admin?: AdminServer;
  /** The MCP front door on the admin address (`/mcp`); undefined without `listen.admin`. */
  mcp?: McpHttp;
  /** The SSH front door on `listen.ssh`, when configured. */
  ssh?: { listener: SshListener; hostKey: string };
  approvals: ApprovalStore;
  audit: AuditSink;
  metrics: Metrics;
  verifier: TokenVerifier;
  close(): Promise<void>;
}

export type RunResult = { ok: true; running: RunningGateway } | { ok: false; errors: string[] };

export interface RunOptions {
  log?: (line: string) => void;
  /** Overrides for tests and the demo (e.g. a catalog connection the config cannot express). */
  catalogConnection?: (resource: ResourceConfig) => ClientConfig;
}

export async function runGateway(config: GatewayConfig, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`hoop gateway: ${line}\n`));
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch((err: Error) => log(`shutdown: ${err.message}`));
  };
  try {
    // The policy: compiled now, then swapped atomically on SIGHUP / file change by the policy
    // source; each statement is decided by the set in force when it is evaluated.
    const { source: policy, first } = await openPolicySource({ path: config.policy, log });
    closers.push(async () => policy.close());
    if (!first.ok) {
      await closeAll();
      return { ok: false, errors: [`policy ${config.policy} does not compile:`, ...first.diagnostics] };
    }
    const verifier = createTokenVerifier(config.identity);
    const audit = await openAuditLog(config.audit.file, { durability: config.audit.durability, maxDelayMs: config.audit.maxDelayMs, inlineSyncBelowUs: inlineSyncBelowUs(config.audit.sync) });
    closers.push(() => audit.close());
    const approvals = config.stateStore
      ? await openPgApprovalService({ connection: { ...pgConnection(config.stateStore.url), ...(config.stateStore.password ? { password: config.stateStore.password } : {}) } })
      : await openApprovalService(config.state);
    closers.push(() => approvals.close());
    const metrics = createMetrics();
    // Webhooks: approval and block events, queued and delivered off every session's path.
    let sink: AuditSink = audit;
    if (config.approvals.webhooks?.length) {
      const hooks = wireWebhooks(createWebhooks({ hooks: config.approvals.webhooks, count: (n, h, l) => metrics.count(n, h, l), log }), { approvals, audit });
      sink = hooks.audit;
      closers.push(() => hooks.close());
    }
    metrics.gauge('hoop_audit_healthy', '1 while audit records can be written (no statement runs otherwise).', () => (audit.health.ok ? 1 : 0));
    metrics.gauge('hoop_audit_sync_inline', '1 when the audit log is fsync\'d on the event loop (fast storage), 0 through the thread pool.', () => (audit.sync.mode === 'inline' ? 1 : 0));
    metrics.gauge('hoop_audit_sync_seconds', 'Median fdatasync of the audit log, issued inline.', () => audit.sync.costUs / 1e6);
    metrics.gauge('hoop_audit_unsynced_records', 'Audit records written but not yet fsync\'d.', () => audit.lastSeq - audit.durableSeq);
    const byName = new Map(config.resources.map((r) => [r.name, r]));
    // The gateway's own reads of a resource's database (the masker's catalog, FunctionCall targets).
    const connectionFor = (r: ResourceConfig): ClientConfig => opts.catalogConnection?.(r) ?? catalogConnection(r);
    // One SQL classifier for the session and the masker: lineage reuses the classifier's parse cache.
    const classifier = await loadSqlClassifier();
    const masker = createResultMasker({
      sqlAnalyzer: (text) => classifier.analyze(text),
      catalogFor: (resource) => {
        const r = byName.get(resource.name);
        if (!r) throw new Error(`internal error: no configured resource ${resource.name}`);
        return { connection: connectionFor(r) };
      },
      ...(config.masking.hashKey ? { hashKey: config.masking.hashKey } : {}),
    });
    closers.push(() => masker.close());
    const functions = createFunctionResolver(config.resources, connectionFor);
    closers.push(() => functions.close());
    const names = createNameCatalogs(config.resources, connectionFor);
    closers.push(() => names.close());
    // Cost facts: EXPLAIN on the same gateway-held connection as the catalog reads.
    const estimator = createEstimator({ connectionFor: (resource) => {
      const r = byName.get(resource.name);
      return r ? connectionFor(r) : undefined;
    } });
    closers.push(() => estimator.close());
    const deps: GatewayDeps = {
      estimator,
      functions,
      names,
      verifier,
      audit: sink,
      approvals,
      metrics,
      masker,
      classifier,
      log,
      // The gateway's own reload is off: the policy source above owns reloading.
      reload: false,
      policy: {
        evaluate: (request) => policy.current()!.evaluate(request),
        needsEstimate: (request) => policy.current()!.needsEstimate(request),
        get hash() {
          return policy.current()?.hash;
        },
        get tableScopes() {
          return policy.current()?.tableScopes ?? [];
        },
      },
    };
    const started = await startGateway(config, deps);
    if (!started.ok) {
      await closeAll();
      return { ok: false, errors: started.errors };
    }
    const gateway = started.gateway;
    closers.push(() => gateway.close());
    metrics.gauge('hoop_classifications_in_flight', 'Long statements being classified off the event loop (queued or in a worker); their sessions wait, the others go on.', () => gateway.classificationsInFlight);
    // One enforcer for every front door (built by startGateway over the services above): one
    // policy source, audit chain, recorder, approval store, masker, metrics, rate budget, shadow
    // set and estimator; SSH and MCP sessions are opened on it with their own `protocol`.
    const enforcer = gateway.enforcer;
    // The shell classifier (tree-sitter-bash) only where ssh requests are decided.
    const shell = config.listen.ssh || config.resources.some((r) => r.kind === 'ssh') ? await loadShellClassifier() : undefined;
    let ssh: RunningGateway['ssh'];
    if (config.listen.ssh) {
      const sshStarted = await startSshFrontDoor(config, createSshEnforcement(enforcer, { verifier, shell: shell!, log }), log);
      if (!sshStarted.ok) {
        await closeAll();
        return { ok: false, errors: sshStarted.errors };
      }
      ssh = { listener: sshStarted.listener, hostKey: sshStarted.hostKey };
      closers.push(() => sshStarted.listener.close());
    }
    let admin: AdminServer | undefined;
    let mcp: McpHttp | undefined;
    if (config.listen.admin) {
      // The MCP front door: tool calls decided like the wire's statements, on connections pooled
      // per identity and resource with the gateway-held credentials.
      const settings = config.mcp ?? DEFAULT_MCP_SETTINGS;
      const upstreams = new PgUpstreams({
        resources: config.resources,
        connectionFor,
        poolSize: settings.poolSize,
        idleTimeoutMs: settings.idleTimeoutMs,
        statementTimeoutMs: settings.statementTimeoutMs,
        log,
      });
      closers.push(() => upstreams.close());
      const enforcement = createCoreEnforcement({
        enforcer,
        classifier,
        names: (resource) => names.catalogFor(resource),
        approvals,
        masker,
        ...(config.limits ? { maxStatementSize: config.limits.maxStatementSize } : {}),
      });
      closers.push(() => enforcement.close());
      mcp = createMcpHttp({
        verifier,
        resources: config.resources.map((r) => ({ kind: r.kind, name: r.name, labels: r.labels })),
        enforcement,
        upstreams,
        settings,
        ssh: shell ? mcpSshRunner({ config, enforcer, verifier, shell, settings, log }) : undefined,
        issuers: config.identity.map((i) => i.issuer),
        tls: config.tls !== undefined,
        log,
      });
      closers.push(() => mcp!.close());
      admin = await startAdminServer({
        routes: (req, res) => mcp!.handle(req, res),
        address: config.listen.admin,
        approvals,
        ...(config.approvals.slack ? { slack: config.approvals.slack } : {}),
        log,
        verifier,
        metrics,
        audit: sink,
        ...(config.tls ? { tls: config.tls } : {}),
        // Unhealthy while no policy is loaded or the audit log cannot be written: no statement runs then.
        health: () => {
          const current = policy.current();
          const auditHealth = audit.health;
          return {
            ok: current !== undefined && auditHealth.ok,
            checks: { policy: current ? `ok ${current.hash.slice(0, 12)}` : 'not loaded', audit: auditHealth.detail },
          };
        },
      });
      closers.push(() => admin!.close());
    }
    return { ok: true, running: { gateway, policy, admin, ...(mcp ? { mcp } : {}), ...(ssh ? { ssh } : {}), approvals, audit, metrics, verifier, close: closeAll } };
  } catch (err) {
    await closeAll();
    const e = err as NodeJS.ErrnoException;
    return { ok: false, errors: [e.code === 'EADDRINUSE' ? `address in use: ${e.message}` : e.message] };
  }
}

