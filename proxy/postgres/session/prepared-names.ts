// The session's prepared statements, as the server has them. One namespace for both protocols:
// a protocol Parse named S and SQL `PREPARE S` make the same server object (and `DEALLOCATE`, a
// protocol Close, `DISCARD ALL` remove either), so one tracker answers "what does S run" for a
// Bind and for `EXECUTE S`. Names are taken when the server confirms (ParseComplete, PREPARE's
// CommandComplete), never before: a Parse or PREPARE the server refuses (42P05: the name is taken;
// any other error) leaves the name as it was.

import type { SqlAction } from '../../../stdlib/facts.ts';
import type { SessionChange } from '../../../stdlib/sql/index.ts';
import { NameLedger, type Lookup, type Ticket } from './name-ledger.ts';

/** What a prepared statement name holds: a statement the session decided at Parse, or a SQL PREPARE. */
export type PreparedEntry<S> = { via: 'protocol'; stmt: S } | { via: 'sql'; action: SqlAction; text: string };

export class PreparedNames<S extends { action: SqlAction | undefined }> {
  private readonly ledger = new NameLedger<PreparedEntry<S>>();
  /** What `EXECUTE name` runs, for the classifier (`options.prepared`). */
  readonly view: ReadonlyMap<string, SqlAction>;

  constructor() {
    this.view = new ActionView(this.ledger, (e) => (e.via === 'protocol' ? e.stmt.action : e.action));
  }

  lookup(name: string): Lookup<PreparedEntry<S>> {
    return this.ledger.lookup(name);
  }

  /** A Parse was forwarded. PostgreSQL drops the unnamed statement before parsing, whatever follows. */
  parse(name: string, stmt: S | undefined): Ticket[] {
    const tickets = name === '' ? [this.ledger.drop('')] : [];
    if (stmt) tickets.push(this.ledger.set(name, { via: 'protocol', stmt }));
    return tickets;
  }

  /** A protocol Close of a statement (closing a name that does not exist is not an error). */
  close(name: string): Ticket[] {
    return [this.ledger.drop(name)];
  }

  /** A simple Query was forwarded: the server drops the unnamed statement when it starts one. */
  query(): Ticket[] {
    return [this.ledger.drop('')];
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

  endBatch(): void {
    this.ledger.endBatch();
  }

  anyAmbiguous(): boolean {
    return this.ledger.anyAmbiguous();
  }

  settled(): Promise<void> {
    return this.ledger.settled();
  }
}

/**
 * A ReadonlyMap over a ledger for the classifier: a name's action if the name holds one entry, and
 * nothing otherwise (an EXECUTE or FETCH of it is then `unknown`).
 */
export class ActionView<E> implements ReadonlyMap<string, SqlAction> {
  constructor(
    private readonly ledger: NameLedger<E>,
    private readonly actionOf: (e: E) => SqlAction | undefined,
  ) {}

  get(name: string): SqlAction | undefined {
    const found = this.ledger.lookup(name);
    return found.t === 'known' ? this.actionOf(found.entry) : undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  get size(): number {
    let n = 0;
    for (const _ of this.entries()) n++;
    return n;
  }

  *entries(): IterableIterator<[string, SqlAction]> {
    for (const name of this.ledger.names()) {
      const a = this.get(name);
      if (a !== undefined) yield [name, a];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): IterableIterator<SqlAction> {
    for (const [, v] of this.entries()) yield v;
  }

  forEach(cb: (value: SqlAction, key: string, map: ReadonlyMap<string, SqlAction>) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this);
  }

  [Symbol.iterator](): IterableIterator<[string, SqlAction]> {
    return this.entries();
  }
}
