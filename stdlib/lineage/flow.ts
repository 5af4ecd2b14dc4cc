// Where a value comes from, relative to the masked columns.
//
// - clear:   no masked column contributes to it.
// - direct:  it *is* the value of one masked column (a bare reference, through aliases, subqueries,
//            CTEs, views, `*`): the column's own masker applies.
// - derived: masked columns contribute to it through some expression: it is redacted.
// - opaque:  the gateway cannot follow the flow (or the construct can leak through a side channel):
//            the statement is blocked, with `reason` saying which column and why.

export type Flow =
  | { t: 'clear' }
  | { t: 'direct'; column: string }
  | { t: 'derived'; sources: readonly string[] }
  | { t: 'opaque'; reason: string };

export const CLEAR: Flow = Object.freeze({ t: 'clear' });

export const direct = (column: string): Flow => ({ t: 'direct', column });
export const opaque = (reason: string): Flow => ({ t: 'opaque', reason });

/** The masked columns a flow carries. */
export function sourcesOf(f: Flow): readonly string[] {
  return f.t === 'direct' ? [f.column] : f.t === 'derived' ? f.sources : [];
}

export const isClear = (f: Flow): boolean => f.t === 'clear';

function derivedOf(sources: Iterable<string>): Flow {
  const s = [...new Set(sources)].sort();
  return s.length === 0 ? CLEAR : { t: 'derived', sources: s };
}

/** A value computed from all of `flows` (an expression over them). */
export function derive(flows: readonly Flow[]): Flow {
  const sources: string[] = [];
  for (const f of flows) {
    if (f.t === 'opaque') return f;
    sources.push(...sourcesOf(f));
  }
  return derivedOf(sources);
}

/**
 * A value that is one of `flows` (UNION branches, a USING column, the same name in several
 * candidate relations). A masked column with clear alternatives stays direct (its masker is applied
 * to the whole column, harmlessly to the clear values); two different masked columns → derived.
 */
export function union(flows: readonly Flow[]): Flow {
  let directCol: string | undefined;
  const sources: string[] = [];
  let onlyDirect = true;
  for (const f of flows) {
    if (f.t === 'opaque') return f;
    if (f.t === 'direct') {
      if (directCol !== undefined && directCol !== f.column) onlyDirect = false;
      directCol ??= f.column;
    } else if (f.t === 'derived') onlyDirect = false;
    sources.push(...sourcesOf(f));
  }
  if (directCol !== undefined && onlyDirect) return direct(directCol);
  return derivedOf(sources);
}

/** A readable description for messages: `public.customers.email`, `public.customers.email, public.customers.ssn`. */
export function describe(f: Flow): string {
  return f.t === 'opaque' ? f.reason : sourcesOf(f).join(', ');
}
