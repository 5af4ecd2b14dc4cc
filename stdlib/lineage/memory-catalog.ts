// A Catalog held in memory: for benchmarks, tests and offline tools that have a schema description
// but no database. Relations get OIDs in declaration order (from 16384, like user objects);
// functions and operators not declared as user-defined are taken to be built-ins (pg_catalog).

import type { Catalog, CatalogRelation, CatalogRoutine } from './catalog.ts';

export interface MemoryRelation {
  schema?: string;
  name: string;
  /** `r` (default), `v`, `m`, ... */
  kind?: string;
  /** Column names in order, or `{ name, typeOid }`. */
  columns: (string | { name: string; typeOid: number })[];
  viewDefinition?: string;
  ancestors?: { schema: string; name: string }[];
}

export interface MemoryCatalogOptions {
  relations: MemoryRelation[];
  /** Functions defined outside pg_catalog: name → schema. */
  userFunctions?: Record<string, string>;
  userOperators?: Record<string, string>;
}

export class MemoryCatalog implements Catalog {
  readonly relationsList: CatalogRelation[];

  constructor(private readonly options: MemoryCatalogOptions) {
    this.relationsList = options.relations.map((r, i) => {
      const rel: CatalogRelation = {
        oid: 16384 + i,
        schema: r.schema ?? 'public',
        name: r.name,
        kind: r.kind ?? 'r',
        columns: r.columns.map((c, k) => (typeof c === 'string' ? { name: c, attnum: k + 1, typeOid: 25 } : { name: c.name, attnum: k + 1, typeOid: c.typeOid })),
      };
      if (r.viewDefinition !== undefined) rel.viewDefinition = r.viewDefinition;
      if (r.ancestors !== undefined) rel.ancestors = r.ancestors;
      return rel;
    });
  }

  async relations(name: string, schema?: string): Promise<CatalogRelation[]> {
    return this.relationsList.filter((r) => r.name === name && (schema === undefined || r.schema === schema));
  }

  async relationByOid(oid: number): Promise<CatalogRelation | undefined> {
    return this.relationsList.find((r) => r.oid === oid);
  }

  async functions(name: string): Promise<CatalogRoutine[]> {
    const user = this.options.userFunctions?.[name];
    return user === undefined ? [{ schema: 'pg_catalog' }] : [{ schema: user }];
  }

  async operators(name: string): Promise<CatalogRoutine[]> {
    const user = this.options.userOperators?.[name];
    return user === undefined ? [{ schema: 'pg_catalog' }] : [{ schema: 'pg_catalog' }, { schema: user }];
  }
}
