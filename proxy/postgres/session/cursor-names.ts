// The session's portals, as the server has them. One namespace for both protocols: a protocol Bind
// to portal P and SQL `DECLARE P CURSOR` make the same server object, which a protocol Execute or
// a SQL FETCH/MOVE can run and a protocol Close or SQL CLOSE can end. A portal is known once the
// server confirms it (BindComplete, DECLARE's CommandComplete) and ends at Close/CLOSE/CLOSE ALL,
// DISCARD ALL, the end of its transaction (a WITH HOLD cursor survives its transaction's commit),
// and ROLLBACK TO a savepoint established before it was opened. A savepoint the gateway did not
// see established makes it forget every cursor of the transaction (a cursor it forgets is refused,
// never run undecided).
//
// What the gateway cannot see — a cursor opened inside a function — is not known, so a FETCH of it
// is `unknown` and an Execute of it is refused.

import type { SqlAction } from '../../../stdlib/facts.ts';
import type { SessionChange } from '../../../stdlib/sql/index.ts';
import type { Ticket } from './name-ledger.ts';
import { TrackedNames } from './tracked-names.ts';

/**
 * A portal: bound through the extended protocol (its statement as decided at Parse), or a SQL
 * cursor (the DECLARE's action, whose facts a FETCH carries, and its text, whose lineage masks the
 * rows a FETCH returns).
 */
export type PortalEntry<S> = (
  | { via: 'protocol'; stmt: S; hold: false; committed: false }
  | { via: 'sql'; action: SqlAction; text: string; hold: boolean; committed: boolean }
) & {
  /** How many savepoints were active when the server opened it (a ROLLBACK TO one of them closes it). */
  level: number;
};

/** The classifier reads `view` as `options.cursors`. */
export class CursorNames<S extends { action: SqlAction | undefined }> extends TrackedNames<S, PortalEntry<S>> {
  /** The transaction's active savepoints, oldest first, as the server confirmed them. */
  private savepoints: string[] = [];
  /** A Bind was forwarded. Binding the unnamed portal replaces it. */
  bind(portal: string, stmt: S): Ticket[] {
    const tickets = portal === '' ? [this.ledger.drop('')] : [];
    tickets.push(this.opened(portal, { via: 'protocol', stmt, hold: false, committed: false, level: 0 }));
    return tickets;
  }

  /** The SQL statement's effect on cursors, pending its CommandComplete. */
  sql(change: SessionChange | null | undefined, action: SqlAction, text: string): Ticket[] {
    if (!change) return [];
    if (change.declare !== undefined) return [this.opened(change.declare.name, { via: 'sql', action, text, hold: change.declare.hold, committed: false, level: 0 })];
    if (change.close !== undefined) return [change.close === null ? this.ledger.dropWhere(() => true) : this.ledger.drop(change.close)];
    if (change.discardAll) return [this.ledger.dropWhere(() => true)];
    if (change.transaction !== undefined) {
      // Projected as a rollback (which ends more); once answered, the tag says what happened
      // (COMMIT of a failed transaction answers ROLLBACK).
      const pending = this.ledger.dropWhere(endsAtRollback);
      const how = change.transaction;
      return [
        {
          confirm: (tag) => {
            pending.discard();
            this.transactionEnded(how === 'commit' && tag === 'COMMIT' ? 'commit' : 'rollback');
          },
          discard: () => pending.discard(),
        },
      ];
    }
    if (change.savepoint !== undefined) return [this.savepoint(change.savepoint)];
    return [];
  }

  /** A portal being opened: its savepoint level is the server's when it confirms. */
  private opened(name: string, entry: PortalEntry<S>): Ticket {
    const t = this.ledger.set(name, entry);
    return {
      confirm: (tag) => {
        entry.level = this.savepoints.length;
        t.confirm(tag);
      },
      discard: () => t.discard(),
    };
  }

  /** SAVEPOINT, RELEASE and ROLLBACK TO, applied when the server confirms them (in its order). */
  private savepoint(sp: { op: 'set' | 'release' | 'rollback_to'; name: string }): Ticket {
    // Until answered, a ROLLBACK TO is projected as closing every cursor of the transaction.
    const pending = sp.op === 'rollback_to' ? this.ledger.dropWhere(endsAtRollback) : undefined;
    return {
      confirm: () => {
        pending?.discard();
        const at = this.savepoints.lastIndexOf(sp.name);
        if (sp.op === 'set') this.savepoints.push(sp.name);
        else if (at < 0) {
          // A savepoint the gateway did not see established: forget the transaction's cursors.
          this.savepoints = [];
          if (sp.op === 'rollback_to') this.ledger.dropConfirmed(endsAtRollback);
        } else if (sp.op === 'release') {
          // Its cursors now belong to the enclosing level.
          this.savepoints.length = at;
          this.ledger.dropConfirmed((_, e) => {
            if (e.level > at) e.level = at;
            return false;
          });
        } else {
          // The savepoint stays; what was opened after it is closed.
          this.savepoints.length = at + 1;
          this.ledger.dropConfirmed((n, e) => e.level > at && endsAtRollback(n, e));
        }
      },
      discard: () => pending?.discard(),
    };
  }

  /**
   * The server ended a transaction: at a transaction statement's CommandComplete (`rollback`: its
   * tag says ROLLBACK, or ROLLBACK TO), or at a ReadyForQuery that is outside any transaction.
   */
  transactionEnded(how: 'commit' | 'rollback'): void {
    this.savepoints = [];
    if (how === 'rollback') {
      this.ledger.dropConfirmed(endsAtRollback);
      return;
    }
    this.ledger.dropConfirmed((_, e) => !e.hold);
    this.ledger.dropConfirmed((_, e) => {
      if (e.hold) {
        e.committed = true;
        e.level = 0;
      }
      return false;
    });
  }
}

/** A rollback ends every portal of the transaction; a WITH HOLD cursor committed earlier stays. */
function endsAtRollback(_: string, e: PortalEntry<unknown>): boolean {
  return !(e.hold && e.committed);
}
