// Everything a session needs from the gateway, as interfaces (proxy/ports.ts) plus plain data.

import type { SecureContext } from 'node:tls';
import type { ApprovalMode, ApprovalService, AuditSink, FunctionResolver, GatewayMetrics, ResultMasker, SessionRecorder, TokenVerifier } from '../../ports.ts';
import type { Resource } from '../../../stdlib/facts.ts';
import type { CancelRegistry } from '../cancel.ts';
import type { ClassifierPool } from '../enforcement/classifier-pool.ts';
import type { PolicyEvaluator, SessionClassifier } from '../enforcement/decider.ts';
import type { GatewayLimits } from '../../limits.ts';
import type { UnauthenticatedConnections } from './unauthenticated.ts';
import type { UpstreamTarget } from './upstream.ts';
import type { NameCatalog } from './search-path.ts';

export interface RoutedResource {
  resource: Resource;
  target: UpstreamTarget;
}

export interface SessionServices {
  verifier: TokenVerifier;
  classifier: SessionClassifier;
  /** Classifies long statements off the event loop; without it every statement is classified inline. */
  classifierPool?: ClassifierPool;
  /** The current policy; read once per decision so a reload swaps atomically. */
  policy(): PolicyEvaluator | undefined;
  audit: AuditSink;
  recorder?: SessionRecorder;
  approvals?: ApprovalService;
  approvalMode: ApprovalMode;
  /** Hold mode: how long a held statement waits for a decision before it errors (config `approvals.timeout`). */
  approvalTimeoutMs?: number;
  masker?: ResultMasker;
  /** Without it, FunctionCall messages are refused. */
  functions?: FunctionResolver;
  /** The catalog unqualified table names are resolved in; without one only a single-schema search_path resolves. */
  names?: (resource: Resource) => NameCatalog | undefined;
  metrics?: GatewayMetrics;
  /** By the name a client puts in `dbname`. */
  resources: ReadonlyMap<string, RoutedResource>;
  /** TLS termination for clients, when configured. */
  tls?: SecureContext;
  cancels: CancelRegistry;
  /** Per-connection limits; omitted: DEFAULT_LIMITS. */
  limits?: GatewayLimits;
  /** Shared by the listener's sessions: unauthenticated connections per client address. */
  unauthenticated?: UnauthenticatedConnections;
  log?(line: string): void;
}
