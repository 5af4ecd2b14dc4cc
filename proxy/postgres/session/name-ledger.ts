// One server namespace of a session (prepared statements, or portals and cursors) as the server
// has it: an entry is committed only when the server confirms the message that made it
// (ParseComplete, BindComplete, CloseComplete, the statement's CommandComplete); until then it is
// pending, and dropped if the server refuses it or skips it (an error discards the rest of an
// extended-protocol batch until Sync, and the rest of a simple Query).
//
// Messages are decided before the server has answered the ones sent before them (clients
// pipeline), so `lookup` projects the pending operations in order:
// - within the batch still being sent (since the last Sync or Query), a message runs only if
//   every message before it in the batch succeeded, so those operations are taken as done;
// - a batch already sent may have stopped anywhere: each prefix of its operations is a possible
//   outcome.
// A name with one possible entry is that entry (or does not exist, and the server fails the
// message that uses it). A name with several possible entries, or one that may or may not have
// come into existence in a batch already sent, is `ambiguous`: the caller waits (`settled()`) for
// the server's answers, which always come because every earlier batch is complete.

export type Lookup<E> = { t: 'known'; entry: E } | { t: 'absent' } | { t: 'ambiguous' };

type Op<E> =
  | { k: 'set'; name: string; entry: E }
  | { k: 'drop'; name: string }
  /** Drops every entry the predicate selects (DEALLOCATE ALL, CLOSE ALL, a transaction's end). */
  | { k: 'dropWhere'; pred: (name: string, entry: E) => boolean };

/** A pending operation: the session confirms or discards it when the server answers. */
export interface Ticket {
  /** The server confirmed it (`tag`: the CommandComplete tag, when a statement made it). */
  confirm(tag?: string): void;
  discard(): void;
}

interface Pending<E> extends Ticket {
  op: Op<E>;
  batch: number;
  done: boolean;
}

const ABSENT: unique symbol = Symbol('absent');
type Value<E> = E | typeof ABSENT;

export class NameLedger<E> {
  private readonly confirmed = new Map<string, E>();
  /** Unresolved operations, in the order the client sent them. */
  private pending: Pending<E>[] = [];
  /** The batch being sent; batches before it are complete (the server will answer them). */
  private batch = 0;
  private waiters: (() => void)[] = [];
  /** Pending `set` operations per name (a drop of a name that holds nothing and gets nothing is a no-op). */
  private readonly pendingSets = new Map<string, number>();
  /** Pending operations a SQL statement can name (the unnamed statement and portal it cannot). */
  private namedPending = 0;

  /** The client sent an operation that sets `name` (Parse, Bind, PREPARE, DECLARE). */
  set(name: string, entry: E): Ticket {
    return this.add({ k: 'set', name, entry });
  }

  /** The client sent an operation that removes `name` (Close, DEALLOCATE, CLOSE, a Query's unnamed statement). */
  drop(name: string): Ticket {
    // Every Query drops the unnamed statement and portal: most of the time there is none.
    if (!this.confirmed.has(name) && !this.pendingSets.has(name)) return NO_OP;
    return this.add({ k: 'drop', name });
  }

  dropWhere(pred: (name: string, entry: E) => boolean): Ticket {
    return this.add({ k: 'dropWhere', pred });
  }

  /** The batch being sent ended (Sync, or a simple Query). */
  endBatch(): void {
    this.batch++;
  }

  /** Applies a change the server has already made (e.g. a transaction ended). */
  dropConfirmed(pred: (name: string, entry: E) => boolean): void {
    for (const [name, entry] of this.confirmed) if (pred(name, entry)) this.confirmed.delete(name);
  }

  lookup(name: string): Lookup<E> {
    const pending = this.pending;
    // Fast path: the batch being sent sets or drops the name itself, whatever came before.
    for (let j = pending.length - 1; j >= 0 && pending[j]!.batch === this.batch; j--) {
      const op = pending[j]!.op;
      if (op.k === 'dropWhere' || op.name !== name) continue;
      let v: Value<E> = op.k === 'set' ? op.entry : ABSENT;
      for (let k = j + 1; k < pending.length; k++) v = apply(pending[k]!.op, name, v);
      return v === ABSENT ? { t: 'absent' } : { t: 'known', entry: v };
    }
    let values: Value<E>[] = [this.confirmed.has(name) ? this.confirmed.get(name)! : ABSENT];
    let i = 0;
    // Complete batches: every prefix is a possible outcome.
    while (i < pending.length && pending[i]!.batch < this.batch) {
      const b = pending[i]!.batch;
      const possible = new Set(values);
      let current = values;
      for (; i < pending.length && pending[i]!.batch === b; i++) {
        const op = pending[i]!.op;
        if (!touches(op, name)) continue;
        current = current.map((v) => apply(op, name, v));
        for (const v of current) possible.add(v);
      }
      values = [...possible];
    }
    // The batch being sent: everything before this message succeeded, or this message does not run.
    for (; i < pending.length; i++) {
      const op = pending[i]!.op;
      if (touches(op, name)) values = values.map((v) => apply(op, name, v));
    }
    const entries = new Set(values);
    const absent = entries.delete(ABSENT);
    if (entries.size === 0) return { t: 'absent' };
    if (entries.size > 1 || absent) {
      // `absent` with an entry: the entry's creation may have failed because the server had the
      // name already, from something the gateway cannot see (a cursor opened by a function).
      return { t: 'ambiguous' };
    }
    return { t: 'known', entry: entries.values().next().value as E };
  }

  /** Some name is ambiguous now (checked before deciding a statement that may name any of them). */
  anyAmbiguous(): boolean {
    if (this.namedPending === 0) return false;
    const names = new Set<string>();
    let all = false;
    for (const p of this.pending) {
      if (p.batch >= this.batch) break;
      if (p.op.k === 'dropWhere') all = true;
      else if (p.op.name !== '') names.add(p.op.name);
    }
    if (all) for (const n of this.confirmed.keys()) if (n !== '') names.add(n);
    for (const n of names) if (this.lookup(n).t === 'ambiguous') return true;
    return false;
  }

  /** Resolves once every operation of the complete batches has been answered. */
  settled(): Promise<void> {
    if (!this.pending.some((p) => p.batch < this.batch)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Confirmed names and entries (for the classifier's view). */
  names(): IterableIterator<string> {
    const all = new Set(this.confirmed.keys());
    for (const p of this.pending) if (p.op.k !== 'dropWhere') all.add(p.op.name);
    return all.values();
  }

  private add(op: Op<E>): Ticket {
    const p: Pending<E> = {
      op,
      batch: this.batch,
      done: false,
      confirm: () => this.resolve(p, true),
      discard: () => this.resolve(p, false),
    };
    this.pending.push(p);
    if (op.k === 'set') this.pendingSets.set(op.name, (this.pendingSets.get(op.name) ?? 0) + 1);
    if (op.k === 'dropWhere' || op.name !== '') this.namedPending++;
    return p;
  }

  private resolve(p: Pending<E>, confirmed: boolean): void {
    if (p.done) return;
    p.done = true;
    if (confirmed) {
      const op = p.op;
      if (op.k === 'set') this.confirmed.set(op.name, op.entry);
      else if (op.k === 'drop') this.confirmed.delete(op.name);
      else this.dropConfirmed(op.pred);
    }
    const at = this.pending.indexOf(p);
    if (at >= 0) this.pending.splice(at, 1);
    if (p.op.k === 'set') {
      const n = this.pendingSets.get(p.op.name)! - 1;
      if (n === 0) this.pendingSets.delete(p.op.name);
      else this.pendingSets.set(p.op.name, n);
    }
    if (p.op.k === 'dropWhere' || p.op.name !== '') this.namedPending--;
    if (this.waiters.length > 0 && !this.pending.some((x) => x.batch < this.batch)) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }
}

const NO_OP: Ticket = { confirm: () => undefined, discard: () => undefined };

function touches<E>(op: Op<E>, name: string): boolean {
  return op.k === 'dropWhere' || op.name === name;
}

function apply<E>(op: Op<E>, name: string, v: Value<E>): Value<E> {
  switch (op.k) {
    case 'set':
      return op.entry;
    case 'drop':
      return ABSENT;
    case 'dropWhere':
      return v !== ABSENT && op.pred(name, v) ? ABSENT : v;
  }
}

/** Confirms or discards a list of tickets (those not yet answered are discarded). */
export function settle(tickets: readonly Ticket[] | undefined, confirmed: boolean, tag?: string): void {
  if (!tickets) return;
  for (const t of tickets) (confirmed ? t.confirm(tag) : t.discard());
}
