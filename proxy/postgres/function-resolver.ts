// FunctionCall messages (the legacy fast-path protocol that libpq's large-object functions use)
// name their function by OID only. To decide one like any statement, the gateway looks the OID up
// in the resource's catalog, over a connection of its own opened on first use.

import type { ClientConfig } from 'pg';
import type { ResourceConfig } from '../config.ts';
import { catalogConnection } from '../catalog-connection.ts';
import { PgCatalog } from '../masking/pg-catalog.ts';
import type { FunctionResolver } from '../ports.ts';

export interface ClosableFunctionResolver extends FunctionResolver {
  close(): Promise<void>;
}

export function createFunctionResolver(
  resources: readonly ResourceConfig[],
  connectionFor: (r: ResourceConfig) => ClientConfig = catalogConnection,
): ClosableFunctionResolver {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const catalogs = new Map<string, PgCatalog>();
  return {
    byOid(resource, oid) {
      let catalog = catalogs.get(resource.name);
      if (!catalog) {
        const r = byName.get(resource.name);
        if (!r) return Promise.resolve(undefined);
        // Function OIDs do not change while the function exists: a long cache.
        catalog = new PgCatalog({ connection: connectionFor(r), ttlMs: 60_000 });
        catalogs.set(resource.name, catalog);
      }
      return catalog.functionByOid(oid);
    },
    async close() {
      await Promise.all([...catalogs.values()].map((c) => c.close()));
      catalogs.clear();
    },
  };
}
