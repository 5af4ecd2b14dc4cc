// The session's prepared statements, as the server has them. One namespace for both protocols:
// a protocol Parse named S and SQL `PREPARE S` make the same server object (and `DEALLOCATE`, a
// protocol Close, `DISCARD ALL` remove either), so one tracker answers "what does S run" for a
// Bind and for `EXECUTE S`. Names are taken when the server confirms (ParseComplete, PREPARE's
// CommandComplete), never before: a Parse or PREPARE the server refuses (42P05: the name is taken;
// any other error) leaves the name as it was.

import type { SqlAction } from '../../../stdlib/facts.ts';
import type { SessionChange } from '../../../stdlib/sql/index.ts';
import type { Ticket } from './name-ledger.ts';
import { TrackedNames } from './tracked-names.ts';

/** What a prepared statement name holds: a statement the session decided at Parse, or a SQL PREPARE. */
export type PreparedEntry<S> = { via: 'protocol'; stmt: S } | { via: 'sql'; action: SqlAction; text: string };

/** The classifier reads `view` as `options.prepared`. */
export class PreparedNames<S extends { action: SqlAction | undefined }> extends TrackedNames<S, PreparedEntry<S>> {
  /** A Parse was forwarded. PostgreSQL drops the unnamed statement before parsing, whatever follows. */
  parse(name: string, stmt: S | undefined): Ticket[] {
    const tickets = name === '' ? [this.ledger.drop('')] : [];
    if (stmt) tickets.push(this.ledger.set(name, { via: 'protocol', stmt }));
    return tickets;
  }

  /** The SQL statement's effect on prepared statements, pending its CommandComplete. */
  sql(change: SessionChange | null | undefined, action: SqlAction, text: string): Ticket[] {
    if (!change) return [];
    if (change.prepare !== undefined) return [this.ledger.set(change.prepare, { via: 'sql', action, text })];
    if (change.deallocate !== undefined) {
      // DEALLOCATE ALL and DISCARD ALL drop every named statement, however it was made.
      return [change.deallocate === null ? this.ledger.dropWhere((n) => n !== '') : this.ledger.drop(change.deallocate)];
    }
    if (change.discardAll) return [this.ledger.dropWhere((n) => n !== '')];
    return [];
  }
}
