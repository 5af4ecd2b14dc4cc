// The read a statement contains, for mask rules scoped to reads (docs/masking.md).
//
// A statement whose worst effect is not a read may still read: `SELECT f(1), email FROM customers`
// is kind `call`; `UPDATE customers ... RETURNING email` returns what it wrote; `INSERT INTO
// archive SELECT * FROM customers` and `CREATE TABLE t AS SELECT ...` copy what they read; and any
// write of a table reads the rows it writes (a constraint error quotes the failing row, a trigger
// sees it). A mask rule scoped to reads (`match sql read`, `match sql select on tables [...]`)
// does not match such a statement by its kind, so a policy that allows it would send the masked
// column in clear, or copy it where a later read gets it in clear. DESIGN.md's masking guarantee
// is about values, not kinds: the statement is also decided as this read, and the masks of that
// decision are added (`withReadMasks` in engine/combine.ts; masks only ever tighten).

import type { SqlAction } from '../facts.ts';
import { catalogFunctionName, isKnownBuiltin, ROW_DATA_FUNCTIONS } from './functions.ts';
import type { SqlAnalyzer } from './index.ts';

/** Kinds that are themselves reads, or read no table data. */
const NOT_WRITES = new Set<SqlAction['kind']>(['select', 'set', 'transaction', 'explain', 'utility']);
/**
 * Kinds whose writes read the rows of the tables they write: a constraint error quotes the failing
 * row, and DDL that converts, checks or indexes the rows quotes them in its errors too
 * (`ALTER COLUMN ... TYPE int` → `invalid input syntax for type integer: "<the value>"`,
 * `CREATE UNIQUE INDEX` → `Key (email)=(<the value>) is duplicated`).
 */
const ROW_WRITES = new Set<SqlAction['kind']>(['insert', 'update', 'delete', 'merge', 'ddl']);

export interface ReadView {
  /** The statement as a read: kind `select`, the tables it reads. */
  action: SqlAction;
  /**
   * Set for a row write that returns nothing: only the column masks of these tables (the ones it
   * writes) apply, for its errors, which can quote a written row; its verdict is otherwise its own.
   */
  onlyColumnsOf?: readonly string[];
  /**
   * The statement runs code whose reads cannot be known (a user-defined function, a view that
   * calls one, a DO block, SQL built from strings): it may read any table, so it is decided as
   * reading every table a rule's \`on tables\` names too (\`withReadView\`), and an \`on tables\`
   * mask scope cannot be stepped around through a function.
   */
  opaque?: true;
}

/** Effects of code the classifier cannot see into, whatever functions the statement names. */
const OPAQUE_EFFECTS = new Set<SqlAction['kind']>(['do', 'unknown']);

/** The statement runs code whose reads cannot be known (see ReadView.opaque). */
function isOpaque(action: SqlAction): boolean {
  if (action.effects.some((e) => OPAQUE_EFFECTS.has(e))) return true;
  if (!action.effects.includes('call')) return false;
  // A call with a reason is the gateway's own (stdlib/sql asCall): a built-in's name that may run a
  // user's function of that name.
  if (action.kind === 'call' && action.reason !== undefined) return true;
  // A call: opaque when it names a function that is not a known built-in (a user function, CALL of
  // a procedure) or a built-in returning any table's rows. A call effect naming none is a
  // statement's own (NOTIFY, PREPARE TRANSACTION).
  return action.functions.some((f) => {
    const name = catalogFunctionName(f);
    return name === undefined || !isKnownBuiltin(name) || ROW_DATA_FUNCTIONS.has(name);
  });
}

/**
 * The statement as the read it contains, or undefined when it is a read already or reads nothing.
 * A statement with the `select` effect (a call, `RETURNING`, `INSERT ... SELECT`, `CREATE TABLE
 * AS`) reads what it reads; any other row write reads the rows it writes. `ast` is the libpg-query
 * statement node when the caller has it: a view definition copies nothing (reads of the view are
 * masked through its definition), so it has no read view.
 */
export function readView(action: SqlAction, ast?: unknown): ReadView | undefined {
  if (NOT_WRITES.has(action.kind)) return undefined;
  if (ast !== null && typeof ast === 'object' && 'ViewStmt' in ast) return undefined;
  if (isOpaque(action)) return { action: asRead(action, action.reads), opaque: true };
  if (action.effects.includes('select') && action.reads.length > 0) return { action: asRead(action, action.reads) };
  if (ROW_WRITES.has(action.kind) && action.writes.length > 0) return { action: asRead(action, action.writes), onlyColumnsOf: action.writes };
  return undefined;
}

function asRead(action: SqlAction, reads: readonly string[]): SqlAction {
  return Object.assign(Object.create(Object.getPrototypeOf(action) as object) as SqlAction, action, { kind: 'select', effects: ['select'], reads: [...reads], writes: [] });
}

/** `readView` for callers that hold only the action: its statement's AST from the analyzer's cache. */
export function readViewWith(analyzer: SqlAnalyzer): (action: SqlAction) => ReadView | undefined {
  return (action) => readView(action, analyzer.analyze(action.text)[0]?.ast);
}
