// What the two server namespaces share (prepared statements; portals and cursors): a ledger of
// entries made by a protocol message or a SQL statement, the classifier's view of what a name
// runs, and the operations both protocols spell the same way.

import type { SqlAction } from '../../../stdlib/facts.ts';
import { NameLedger, type Lookup, type Ticket } from './name-ledger.ts';

/** An entry made by a protocol message (holding the session's decided statement) or by SQL. */
export type NamedEntry<S extends { action: SqlAction | undefined }> = { via: 'protocol'; stmt: S } | { via: 'sql'; action: SqlAction };

export abstract class TrackedNames<S extends { action: SqlAction | undefined }, E extends NamedEntry<S>> {
  protected readonly ledger = new NameLedger<E>();
  /** What `EXECUTE name` / `FETCH name` runs, for the classifier. */
  readonly view: ReadonlyMap<string, SqlAction> = new ActionView(this.ledger, (e) => (e.via === 'protocol' ? e.stmt.action : e.action));

  lookup(name: string): Lookup<E> {
    return this.ledger.lookup(name);
  }

  /** A protocol Close of the name (closing a name that does not exist is not an error). */
  close(name: string): Ticket[] {
    return [this.ledger.drop(name)];
  }

  /** A simple Query was forwarded: the server drops the unnamed statement and portal when it starts one. */
  query(): Ticket[] {
    return [this.ledger.drop('')];
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
