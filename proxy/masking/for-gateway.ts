// The masker as the gateway builds it: one catalog connection per resource, to the same upstream
// with the same gateway-held credentials and TLS settings the sessions use.
//
//   const masker = createGatewayMasker(resources, { hashKey: config.masking.hashKey, sqlAnalyzer: (t) => classifier.analyze(t) });
//   startPgListener(..., { masker, ... });   // and masker.close() on shutdown

import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { StatementParser } from '../../stdlib/lineage/index.ts';
import type { RoutedResource } from '../postgres/session/services.ts';
import type { UpstreamTarget } from '../postgres/session/upstream.ts';
import { createResultMasker, type GatewayResultMasker } from './index.ts';

/** pg driver settings for the catalog connection of an upstream. */
export function catalogConnection(target: UpstreamTarget): pg.ClientConfig {
  const ssl =
    target.tls.mode === 'disable'
      ? false
      : target.tls.mode === 'require'
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true, ...(target.tls.ca ? { ca: readFileSync(target.tls.ca, 'utf8') } : {}), ...(target.tls.servername ? { servername: target.tls.servername } : {}) };
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    ...(target.password !== undefined ? { password: target.password } : {}),
    ssl,
    connectionTimeoutMillis: 10_000,
    query_timeout: 10_000,
  };
}

export function createGatewayMasker(
  resources: ReadonlyMap<string, RoutedResource>,
  options: { hashKey?: string | Buffer; sqlAnalyzer?: StatementParser; catalogTtlMs?: number } = {},
): GatewayResultMasker {
  return createResultMasker({
    ...options,
    catalogFor(resource) {
      const routed = resources.get(resource.name);
      if (!routed) throw new Error(`resource ${resource.name} is not configured`);
      return { connection: catalogConnection(routed.target) };
    },
  });
}
