// The catalog answers a session needs to resolve unqualified relation names the way the server
// will (session/search-path.ts): which schemas hold a relation of a name, which schemas the role
// may use. Read over a connection of the gateway's own per resource, opened on first use, with a
// short cache: a table created or dropped elsewhere is seen within NAME_TTL_MS (at once where
// hoop's event trigger is installed, pg-catalog.ts), and a session that changed the schema drops
// the cache when its transaction ends. `fresh` lets a session reuse what it worked out from the
// answers (session/search-path.ts) exactly as long as the cache would give the same answers.

import type { ClientConfig } from 'pg';
import type { ResourceConfig } from '../config.ts';
import { catalogConnection } from '../catalog-connection.ts';
import { PgCatalog } from '../masking/pg-catalog.ts';
import type { Resource } from '../../stdlib/facts.ts';
import type { NameCatalog } from './session/search-path.ts';

export const NAME_TTL_MS = 2_000;

export interface NameCatalogs {
  /** The catalog of this resource, or undefined when the gateway has no connection for it. */
  catalogFor(resource: Resource): NameCatalog | undefined;
  close(): Promise<void>;
}

export function createNameCatalogs(resources: readonly ResourceConfig[], connectionFor: (r: ResourceConfig) => ClientConfig = catalogConnection): NameCatalogs {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const catalogs = new Map<string, PgCatalog>();
  return {
    catalogFor(resource) {
      let catalog = catalogs.get(resource.name);
      if (!catalog) {
        const r = byName.get(resource.name);
        if (!r) return undefined;
        catalog = new PgCatalog({ connection: connectionFor(r), ttlMs: NAME_TTL_MS });
        catalogs.set(resource.name, catalog);
      }
      const c = catalog;
      return {
        relationSchemas: (names, deps) => c.relationSchemas(names, deps),
        usableSchemas: (deps) => c.usableSchemas(deps),
        relationSources: (qualified, deps) => c.relationSources(qualified, deps),
        relationFunctions: (qualified, deps) => c.relationFunctions(qualified, deps),
        statisticsTables: (deps) => c.statisticsTables(deps),
        functionsOutsideCatalog: (deps) => c.routineNamesOutsideCatalog('function', deps),
        operatorsOutsideCatalog: (deps) => c.routineNamesOutsideCatalog('operator', deps),
        invalidate: () => c.invalidate(),
        fresh: (deps) => c.fresh(deps),
      };
    },
    async close() {
      await Promise.all([...catalogs.values()].map((c) => c.close()));
      catalogs.clear();
    },
  };
}
