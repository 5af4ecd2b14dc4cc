// How a statement changes what unqualified relation names mean in its session: the search_path
// setting (SET, RESET, set_config) and its transaction scoping, and temporary relations, which the
// server searches before everything else (pg_temp). Read from libpg-query ASTs; the session keeps
// the state (proxy/postgres/session/search-path.ts).

type Obj = Record<string, unknown>;

/** PostgreSQL's NAMEDATALEN - 1: identifiers are truncated to this many bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/** truncate_identifier(): at most 63 bytes, never splitting a UTF-8 character. */
function truncateIdentifier(s: string): string {
  if (Buffer.byteLength(s) <= MAX_IDENTIFIER_BYTES) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > MAX_IDENTIFIER_BYTES) break;
    out += ch;
  }
  return out;
}

const LIST_SPACE = /[ \t\n\r\f\v]/;

/**
 * A search_path value as the server reads it (SplitIdentifierString in varlena.c): comma-separated
 * identifiers, double-quoted ones exact (`""` is a quote), unquoted ones lower-cased (ASCII), each
 * truncated to 63 bytes; `$user` stays as written. Null when the server would refuse the value
 * ("invalid list syntax").
 */
export function parseSearchPath(value: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = value.length;
  while (i < n && LIST_SPACE.test(value[i]!)) i++;
  if (i >= n) return out; // an empty value is an empty list
  for (;;) {
    let name: string;
    if (value[i] === '"') {
      name = '';
      i++;
      for (;;) {
        const q = value.indexOf('"', i);
        if (q < 0) return null; // unterminated quoted name
        name += value.slice(i, q);
        if (value[q + 1] === '"') {
          name += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      if (name === '') return null; // "" is not a name
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !LIST_SPACE.test(value[i]!) && value[i] !== '"') i++;
      if (i === start) return null; // empty unquoted name
      name = value.slice(start, i).replace(/[A-Z]/g, (c) => c.toLowerCase());
    }
    out.push(truncateIdentifier(name));
    while (i < n && LIST_SPACE.test(value[i]!)) i++;
    if (i >= n) return out;
    if (value[i] !== ',') return null;
    i++;
    while (i < n && LIST_SPACE.test(value[i]!)) i++;
    if (i >= n) return null; // trailing comma
  }
}

/**
 * Why a search_path is not followed, or undefined when it is: a schema ahead of pg_catalog (named
 * explicitly later in the path) would shadow built-in functions and operators, so `now()` or `=`
 * could run the schema's own code, which the classifier takes for the built-in. pg_temp is never
 * searched for functions, so it may come first.
 */
export function searchPathRisk(path: readonly string[]): string | undefined {
  const i = path.indexOf('pg_catalog');
  if (i < 0) return undefined; // pg_catalog is searched first, implicitly
  const before = path.slice(0, i).filter((x) => x !== 'pg_temp');
  return before.length === 0 ? undefined : `search_path puts ${before.map((x) => JSON.stringify(x)).join(', ')} before pg_catalog, so its functions and operators would shadow the built-ins`;
}

/** What one statement does to the session's name resolution, in the order it happens. */
export type SessionEffect =
  /** search_path := value (a list), or back to its value at connection time ('default'). */
  | { k: 'set'; value: string[] | 'default'; local: boolean }
  /** Changes search_path in a way that cannot be followed (why). */
  | { k: 'untracked'; reason: string }
  | { k: 'begin' }
  | { k: 'commit'; chain: boolean }
  | { k: 'rollback'; chain: boolean }
  | { k: 'savepoint'; name: string }
  | { k: 'release'; name: string }
  | { k: 'rollback_to'; name: string }
  /** DISCARD TEMP / DISCARD ALL: temporary relations are gone. */
  | { k: 'discard_temp' }
  /** A relation is created; `schema` when the statement names it (pg_temp for TEMP). */
  | { k: 'create'; name: string; schema?: string; onCommitDrop: boolean; view: boolean }
  /** A relation is dropped (DROP TABLE/VIEW/SEQUENCE/...); `schema` when named. */
  | { k: 'drop'; name: string; schema?: string }
  /** ALTER ... RENAME of a relation. */
  | { k: 'rename'; name: string; schema?: string; to: string };

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function constText(v: unknown): string | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Obj;
  const c = o.A_Const as Obj | undefined;
  if (!c) return null;
  if (c.sval && typeof c.sval === 'object') return str((c.sval as Obj).sval);
  if (c.ival && typeof c.ival === 'object') return String((c.ival as Obj).ival ?? 0);
  if (c.fval && typeof c.fval === 'object') return str((c.fval as Obj).fval);
  return null;
}

function constBool(v: unknown): boolean | null {
  if (!v || typeof v !== 'object') return null;
  const c = (v as Obj).A_Const as Obj | undefined;
  if (!c) return null;
  if (c.boolval && typeof c.boolval === 'object') return (c.boolval as Obj).boolval === true;
  return null;
}

function relation(rv: unknown): { name: string; schema?: string; temp: boolean } | null {
  if (!rv || typeof rv !== 'object') return null;
  const r = rv as Obj;
  if (typeof r.relname !== 'string') return null;
  const schema = typeof r.schemaname === 'string' && r.schemaname !== '' ? r.schemaname : undefined;
  return { name: r.relname, ...(schema ? { schema } : {}), temp: r.relpersistence === 't' };
}

function created(rv: unknown, onCommit: unknown, view: boolean): SessionEffect | null {
  const r = relation(rv);
  if (!r) return null;
  const schema = r.temp ? 'pg_temp' : r.schema;
  return { k: 'create', name: r.name, ...(schema ? { schema } : {}), onCommitDrop: onCommit === 'ONCOMMIT_DROP', view };
}

/**
 * `SELECT set_config('search_path', 'const', const)` and nothing else: the one shape where the
 * call certainly runs exactly once. Undefined when the statement does not call set_config on
 * search_path at all.
 */
function setConfigEffect(sel: Obj, hasSetConfig: boolean): SessionEffect | undefined {
  if (!hasSetConfig) return undefined;
  const targets = Array.isArray(sel.targetList) ? (sel.targetList as Obj[]) : [];
  const only = Object.keys(sel).every((k) => ['targetList', 'limitOption', 'op'].includes(k));
  const call = targets.length === 1 ? (((targets[0]!.ResTarget as Obj | undefined)?.val as Obj | undefined)?.FuncCall as Obj | undefined) : undefined;
  const fname = Array.isArray(call?.funcname) ? (call!.funcname as Obj[]).map((x) => str((x.String as Obj | undefined)?.sval)) : [];
  const args = Array.isArray(call?.args) ? (call!.args as unknown[]) : [];
  const isSetConfig = fname.length > 0 && fname[fname.length - 1] === 'set_config' && (fname.length === 1 || (fname.length === 2 && fname[0] === 'pg_catalog'));
  if (only && call && isSetConfig && args.length === 3 && constText(args[0])?.toLowerCase() === 'search_path') {
    const value = constText(args[1]);
    const local = constBool(args[2]);
    const list = value === null ? null : parseSearchPath(value);
    if (list !== null && local !== null) return { k: 'set', value: list, local };
  }
  return { k: 'untracked', reason: "set_config('search_path', ...) is followed only as `SELECT set_config('search_path', 'constant', true|false)` on its own" };
}

/** Does this subtree call set_config with 'search_path' (or a name that is not a constant)? */
function callsSetConfig(node: unknown): boolean {
  if (node === null || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some(callsSetConfig);
  const o = node as Obj;
  const fc = o.FuncCall as Obj | undefined;
  if (fc && Array.isArray(fc.funcname)) {
    const names = (fc.funcname as Obj[]).map((x) => str((x.String as Obj | undefined)?.sval));
    if (names[names.length - 1] === 'set_config') {
      const first = Array.isArray(fc.args) ? constText((fc.args as unknown[])[0]) : null;
      if (first === null || first.toLowerCase() === 'search_path') return true;
    }
  }
  for (const k in o) if (callsSetConfig(o[k])) return true;
  return false;
}

/**
 * The effects of one top-level statement (a libpg-query `RawStmt.stmt`) on name resolution.
 * Statements that run code the gateway cannot see (functions, DO, CALL) are the caller's concern:
 * their kind says so.
 */
export function sessionEffects(ast: unknown): SessionEffect[] {
  if (ast === null || typeof ast !== 'object') return [];
  const type = Object.keys(ast as Obj)[0];
  const n = ((ast as Obj)[type ?? ''] ?? {}) as Obj;
  switch (type) {
    case 'VariableSetStmt': {
      const name = str(n.name).toLowerCase();
      if (n.kind === 'VAR_RESET_ALL') return [{ k: 'set', value: 'default', local: false }];
      if (name !== 'search_path') return [];
      const local = n.is_local === true;
      if (n.kind === 'VAR_RESET' || n.kind === 'VAR_SET_DEFAULT') return [{ k: 'set', value: 'default', local }];
      if (n.kind === 'VAR_SET_CURRENT') return [{ k: 'untracked', reason: 'SET search_path FROM CURRENT' }];
      if (n.kind !== 'VAR_SET_VALUE') return [{ k: 'untracked', reason: `SET search_path (${str(n.kind)})` }];
      // Each argument is one schema name, exactly (the server quotes each one: GUC_LIST_QUOTE).
      const value: string[] = [];
      for (const a of Array.isArray(n.args) ? n.args : []) {
        const t = constText(a);
        if (t === null || t === '') return [{ k: 'untracked', reason: 'SET search_path to a value that is not a list of names' }];
        value.push(truncateIdentifier(t));
      }
      return [{ k: 'set', value, local }];
    }
    case 'TransactionStmt':
      switch (n.kind) {
        case 'TRANS_STMT_BEGIN':
        case 'TRANS_STMT_START':
          return [{ k: 'begin' }];
        case 'TRANS_STMT_COMMIT':
        case 'TRANS_STMT_PREPARE': // GUC changes of a prepared transaction stay, as at COMMIT
          return [{ k: 'commit', chain: n.chain === true }];
        case 'TRANS_STMT_ROLLBACK':
          return [{ k: 'rollback', chain: n.chain === true }];
        case 'TRANS_STMT_SAVEPOINT':
          return [{ k: 'savepoint', name: str(n.savepoint_name) }];
        case 'TRANS_STMT_RELEASE':
          return [{ k: 'release', name: str(n.savepoint_name) }];
        case 'TRANS_STMT_ROLLBACK_TO':
          return [{ k: 'rollback_to', name: str(n.savepoint_name) }];
        default:
          return [];
      }
    case 'DiscardStmt':
      if (n.target === 'DISCARD_ALL') return [{ k: 'set', value: 'default', local: false }, { k: 'discard_temp' }];
      return n.target === 'DISCARD_TEMP' ? [{ k: 'discard_temp' }] : [];
    case 'CreateStmt':
      return nonNull([created(n.relation, n.oncommit, false)]);
    case 'CreateForeignTableStmt':
      return nonNull([created((n.base as Obj | undefined)?.relation, undefined, false)]);
    case 'CreateTableAsStmt': {
      const into = (n.into ?? {}) as Obj;
      return nonNull([created(into.rel, into.onCommit, n.objtype === 'OBJECT_MATVIEW')]);
    }
    case 'ViewStmt':
      return nonNull([created(n.view, undefined, true)]);
    case 'CreateSeqStmt':
      return nonNull([created(n.sequence, undefined, false)]);
    case 'SelectStmt': {
      const out: SessionEffect[] = [];
      if (n.intoClause) {
        const into = n.intoClause as Obj;
        const c = created(into.rel, into.onCommit, false);
        if (c) out.push(c);
      }
      const sc = setConfigEffect(n, callsSetConfig(n));
      if (sc) out.push(sc);
      return out;
    }
    case 'DropStmt': {
      if (!/^OBJECT_(TABLE|VIEW|MATVIEW|SEQUENCE|FOREIGN_TABLE|INDEX)$/.test(str(n.removeType))) return [];
      const out: SessionEffect[] = [];
      for (const o of (Array.isArray(n.objects) ? n.objects : []) as Obj[]) {
        const parts = (((o.List as Obj | undefined)?.items ?? []) as Obj[]).map((x) => str((x.String as Obj | undefined)?.sval));
        if (parts.length === 0) continue;
        const name = parts[parts.length - 1]!;
        out.push(parts.length >= 2 ? { k: 'drop', name, schema: parts[parts.length - 2]! } : { k: 'drop', name });
      }
      return out;
    }
    case 'RenameStmt': {
      const r = relation(n.relation);
      if (!r || typeof n.newname !== 'string' || !/^OBJECT_(TABLE|VIEW|MATVIEW|SEQUENCE|FOREIGN_TABLE|INDEX)$/.test(str(n.renameType))) return [];
      return [{ k: 'rename', name: r.name, ...(r.schema ? { schema: r.schema } : {}), to: n.newname }];
    }
    default: {
      // Any other statement that calls set_config on search_path inside an expression: untracked.
      return callsSetConfig(n) ? [{ k: 'untracked', reason: "set_config('search_path', ...) inside a larger statement" }] : [];
    }
  }
}

function nonNull<T>(xs: (T | null)[]): T[] {
  return xs.filter((x): x is T => x !== null);
}
