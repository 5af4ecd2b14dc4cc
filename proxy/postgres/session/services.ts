// Everything a session needs from the gateway, as interfaces (proxy/ports.ts) plus plain data.

import type { SecureContext } from 'node:tls';
import type { ApprovalMode, FunctionResolver, TokenVerifier } from '../../ports.ts';
import type { Enforcer } from '../../enforcement/index.ts';
import type { Resource } from '../../../stdlib/facts.ts';
import type { CancelRegistry } from '../cancel.ts';
import type { ClassifierPool } from '../enforcement/classifier-pool.ts';
import type { SessionClassifier } from '../enforcement/statements.ts';
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
  /** Decisions, approvals, masks, the audit log and the recording: every statement goes through it. */
  enforcer: Enforcer;
  /** The default approval mode; a connection may choose its own. */
  approvalMode: ApprovalMode;
  /** Without it, FunctionCall messages are refused. */
  functions?: FunctionResolver;
  /** The catalog unqualified table names are resolved in; without one only a single-schema search_path resolves. */
  names?: (resource: Resource) => NameCatalog | undefined;
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
