// Reading libpg-query's JSON parse tree: nodes are `{ TypeName: {...fields} }`, lists are arrays,
// struct-typed fields (aliases, set-operation branches, RangeVars of DML targets) are bare objects.

export type Node = Record<string, unknown>;

/** `{ SelectStmt: {...} }` → ['SelectStmt', {...}] */
export function unwrap(node: unknown): [string, Node] | undefined {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const body = (node as Node)[keys[0]];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return [keys[0], body as Node];
}

export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

/** `[{String:{sval:'a'}}, ...]` → ['a', ...] (A_Star → '*'). */
export function names(v: unknown): string[] {
  return list(v).map((n) => {
    const u = unwrap(n);
    if (u?.[0] === 'String') return String(u[1].sval ?? '');
    if (u?.[0] === 'A_Star') return '*';
    return '?';
  });
}

/** Set-operation branches are bare SelectStmt bodies; accept a wrapped one too. */
export function selectBody(v: unknown): Node {
  const u = unwrap(v);
  if (u?.[0] === 'SelectStmt') return u[1];
  return v !== null && typeof v === 'object' ? (v as Node) : {};
}

export function unwrapRel(v: unknown): Node | undefined {
  const u = unwrap(v);
  if (u?.[0] === 'RangeVar') return u[1];
  return v && typeof v === 'object' && 'relname' in (v as Node) ? (v as Node) : undefined;
}

export function relName(rel: Node | undefined): string {
  if (!rel) return '?';
  return rel.schemaname ? `${String(rel.schemaname)}.${String(rel.relname)}` : String(rel.relname);
}

export function functionName(body: Node): string | undefined {
  const first = list(unwrap(list(body.functions)[0])?.[1].items)[0];
  const fc = unwrap(first);
  return fc?.[0] === 'FuncCall' ? names(fc[1].funcname).at(-1) : undefined;
}

export function outputName(val: unknown): string {
  const u = unwrap(val);
  if (u?.[0] === 'ColumnRef') return names(u[1].fields).at(-1) ?? '?column?';
  if (u?.[0] === 'FuncCall') return names(u[1].funcname).at(-1) ?? '?column?';
  if (u?.[0] === 'TypeCast') return outputName(u[1].arg);
  return '?column?';
}
