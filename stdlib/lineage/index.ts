// Column lineage for result masking: which output columns of a statement carry masked columns,
// and which statements cannot be followed (and must be blocked). See docs/masking.md.

import { LineageAnalyzer, type LineageCache, type LineageOptions, type OutputColumn, type StatementLineage } from './analyze.ts';
import type { CatalogRelation } from './catalog.ts';
import type { Flow } from './flow.ts';

export type { Catalog, CatalogColumn, CatalogRelation, CatalogRoutine } from './catalog.ts';
export { SAFE_EXTENSIONS, TRUSTED_SCHEMAS, routineTrusted } from './catalog.ts';
export type { Flow } from './flow.ts';
export { CLEAR, describe, sourcesOf, union, derive } from './flow.ts';
export type { LineageCache, LineageOptions, OutputColumn, StatementLineage };
export { loadStatementParser, type ParsedStatement, type StatementParser } from './parse.ts';

/**
 * Lineage of one statement (`ast`: libpg-query `RawStmt.stmt`). Rejects only when the catalog
 * does (connection lost): callers treat that as a block.
 */
export function statementLineage(ast: unknown, options: LineageOptions): Promise<StatementLineage> {
  return new LineageAnalyzer(options).statement(ast);
}

/** Flows of a relation's columns (by position in `rel.columns`): masked table columns are direct; view columns follow the view. */
export async function relationFlows(rel: CatalogRelation, options: LineageOptions): Promise<{ columns: Flow[]; blocks: string[] }> {
  const analyzer = new LineageAnalyzer(options);
  const shape = await analyzer.relationColumns(rel);
  return { columns: shape.cols.map((c) => c.flow), blocks: analyzer.recordedBlocks() };
}
export { MemoryCatalog, type MemoryCatalogOptions, type MemoryRelation } from './memory-catalog.ts';
