// The session's two server namespaces (prepared statements; portals and cursors) together: what
// the classifier sees of them, the name changes of a message, and what a FETCH's rows are masked by.

import type { SqlAction, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import type { SessionChange } from '../../../stdlib/sql/index.ts';
import type { StatementVerdict } from '../enforcement/decider.ts';
import { CursorNames } from './cursor-names.ts';
import type { Ticket } from './name-ledger.ts';
import { PreparedNames } from './prepared-names.ts';

interface Statement {
  action: SqlAction | undefined;
  text: string;
  change?: SessionChange | null | undefined;
  lineageText?: string | undefined;
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
    return [...this.prepared.sql(stmt.change, stmt.action), ...this.cursors.sql(stmt.change, stmt.action, stmt.text)];
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

  /**
   * A FETCH returns its cursor's rows: they are masked with the lineage of the cursor's query (the
   * DECLARE, or the statement a protocol portal was bound to), not of the FETCH's own text, which
   * says nothing about its columns. A cursor declared earlier in the same message counts.
   */
  lineageTexts(verdicts: StatementVerdict[]): StatementVerdict[] {
    if (!verdicts.some((v) => v.change?.fetch !== undefined)) return verdicts;
    const local = new Map<string, string>();
    return verdicts.map((v) => {
      const change = v.change;
      if (change?.declare !== undefined && !local.has(change.declare.name)) local.set(change.declare.name, v.action.text);
      if (change?.fetch === undefined) return v;
      let text = local.get(change.fetch);
      if (text === undefined) {
        const found = this.cursors.lookup(change.fetch);
        if (found.t === 'known') text = found.entry.via === 'sql' ? found.entry.text : (found.entry.stmt.lineageText ?? found.entry.stmt.text);
      }
      return text === undefined ? v : { ...v, lineageText: text };
    });
  }
}
