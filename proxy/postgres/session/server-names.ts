// The session's two server namespaces (prepared statements; portals and cursors) together: what
// the classifier sees of them, the name changes of a message, what a FETCH's or EXECUTE's rows are
// masked by, and whether a statement decided at Parse still runs what it was decided for.

import type { SqlAction, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import type { SessionChange } from '../../../stdlib/sql/index.ts';
import { CursorNames } from './cursor-names.ts';
import type { Ticket } from './name-ledger.ts';
import { PreparedNames } from './prepared-names.ts';

interface Statement {
  action: SqlAction | undefined;
  text: string;
  change?: SessionChange | null | undefined;
  lineageText?: string | undefined;
}

/**
 * The prepared statement or cursor an `EXECUTE name` / `FETCH name` was decided with (at Parse, for
 * the extended protocol): `action` is what the name held then (undefined: nothing).
 */
export interface NameDependency {
  namespace: 'prepared' | 'cursors';
  name: string;
  action: SqlAction | undefined;
}

export class ServerNames<S extends Statement> {
  readonly prepared = new PreparedNames<S>();
  readonly cursors = new CursorNames<S>();
  /** For the classifier: `EXECUTE name` and `FETCH name` take the facts of what the name holds. */
  readonly options: SqlClassifyOptions = { prepared: this.prepared.view, cursors: this.cursors.view };

  /** A Query's effect on names: the server drops the unnamed statement and portal when it starts one. */
  query(): Ticket[] {
    return [...this.prepared.query(), ...this.cursors.query()];
  }

  /** A statement's pending effect on prepared statements and cursors when it runs (PREPARE, DECLARE, CLOSE, COMMIT...). */
  statement(stmt: S | undefined): Ticket[] | undefined {
    if (!stmt?.change || !stmt.action) return undefined;
    return [...this.prepared.sql(stmt.change, stmt.action, stmt.text), ...this.cursors.sql(stmt.change, stmt.action, stmt.text)];
  }

  /** The client ended a batch (Sync, Query, FunctionCall): the server will answer everything before. */
  endBatch(): void {
    this.prepared.endBatch();
    this.cursors.endBatch();
  }

  /**
   * A name a message may use holds different things depending on how earlier batches end: wait for
   * the server's answers (they come: those batches are complete). Resolves at once otherwise.
   */
  settledIfAmbiguous(): Promise<void> | undefined {
    if (!this.prepared.anyAmbiguous() && !this.cursors.anyAmbiguous()) return undefined;
    return this.settled();
  }

  settled(): Promise<void> {
    return Promise.all([this.prepared.settled(), this.cursors.settled()]).then(() => undefined);
  }

  /** What an EXECUTE or FETCH decided now depends on (recorded at Parse, checked at each Execute). */
  dependency(change: SessionChange | null | undefined): NameDependency | undefined {
    if (change?.execute !== undefined) return { namespace: 'prepared', name: change.execute, action: this.prepared.view.get(change.execute) };
    if (change?.fetch !== undefined) return { namespace: 'cursors', name: change.fetch, action: this.cursors.view.get(change.fetch) };
    return undefined;
  }

  /**
   * Whether the name still holds what the statement was decided with: `EXECUTE p` Parse'd while p
   * read nothing masked must not run once p was re-prepared over a masked table.
   */
  stillHolds(dep: NameDependency): 'yes' | 'no' | 'ambiguous' {
    const found = (dep.namespace === 'prepared' ? this.prepared : this.cursors).lookup(dep.name);
    if (found.t === 'ambiguous') return 'ambiguous';
    const now = found.t === 'known' ? (dep.namespace === 'prepared' ? this.prepared.view : this.cursors.view).get(dep.name) : undefined;
    // Nothing then and nothing now: the server fails it. Otherwise the same facts, or no.
    return now === dep.action ? 'yes' : 'no';
  }

  /**
   * A FETCH returns its cursor's rows and an EXECUTE its statement's: they are masked with the
   * lineage of that query (the DECLARE or PREPARE, or the statement a protocol name was parsed or
   * bound to), not of their own text, which says nothing about their columns. A cursor declared or
   * a statement prepared earlier in the same message counts.
   */
  lineageTexts<V extends { readonly action: SqlAction; readonly change: SessionChange | null; readonly lineageText?: string | undefined }>(verdicts: V[]): V[] {
    if (!verdicts.some((v) => v.change?.fetch !== undefined || v.change?.execute !== undefined)) return verdicts;
    const cursors = new Map<string, string>();
    const prepared = new Map<string, string>();
    return verdicts.map((v) => {
      const change = v.change;
      if (change?.declare !== undefined && !cursors.has(change.declare.name)) cursors.set(change.declare.name, v.action.text);
      if (change?.prepare !== undefined && !prepared.has(change.prepare)) prepared.set(change.prepare, v.action.text);
      let text: string | undefined;
      if (change?.fetch !== undefined) {
        text = cursors.get(change.fetch);
        const found = text === undefined ? this.cursors.lookup(change.fetch) : undefined;
        if (found?.t === 'known') text = found.entry.via === 'sql' ? found.entry.text : (found.entry.stmt.lineageText ?? found.entry.stmt.text);
      } else if (change?.execute !== undefined) {
        text = prepared.get(change.execute);
        const found = text === undefined ? this.prepared.lookup(change.execute) : undefined;
        if (found?.t === 'known') text = found.entry.via === 'sql' ? found.entry.text : (found.entry.stmt.lineageText ?? found.entry.stmt.text);
      }
      return text === undefined ? v : { ...v, lineageText: text };
    });
  }
}
