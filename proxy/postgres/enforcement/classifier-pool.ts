// Classification of long statements off the event loop (issue 14 item 11): parsing and walking a
// statement costs about 150 ms per MiB of small expressions (and its normalised text and fingerprint
// as much again), during which one event loop would answer no other session. Texts longer than
// `inlineBelow` go to a small pool of worker threads running the same classifier (stdlib/sql);
// shorter ones stay inline, where they cost less than a round trip to a worker.
//
// Fail closed: a worker that crashes, runs out of memory or exceeds the timeout answers a refusal
// for its statement (never a verdict), and is replaced. A worker that classified a long text is
// replaced too, so the parser's memory (wasm memory never shrinks) returns to the system.

import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { SqlAction, SqlClassifyOptions } from '../../../stdlib/facts.ts';
import { portableRawNames, restoredAction, type AnalyzedStatement, type PortableRawNames, type SessionChange } from '../../../stdlib/sql/index.ts';
import type { SessionEffect } from '../../../stdlib/sql/search-path.ts';

export interface PoolJob {
  id: number;
  text: string;
  /** The session's SQL-level prepared statements and cursors, as the facts EXECUTE and FETCH merge. */
  prepared: [string, Partial<SqlAction> & { raw?: PortableRawNames }][];
  cursors: [string, Partial<SqlAction> & { raw?: PortableRawNames }][];
}

/**
 * A statement classified in a worker: an AnalyzedStatement without its AST (`ast` is null), with
 * what the session would read from the AST instead: its change of session names and its
 * search_path / temporary-table effects.
 */
export interface PooledStatement extends AnalyzedStatement {
  change: SessionChange | null;
  effects: SessionEffect[];
  /** The walker's facts with the unqualified names in (stdlib `portableRawNames`): the session resolves them on its search_path. */
  raw?: PortableRawNames;
}

export type PoolAnswer = { id: number; ok: true; statements: PooledStatement[] } | { id: number; ok: false; reason: string };
export type PoolResult = { ok: true; statements: PooledStatement[] } | { ok: false; reason: string };

export interface ClassifierPoolOptions {
  /** Worker threads (default 1). */
  size?: number;
  /** A classification taking longer is refused and its worker replaced (default 10 s). */
  timeoutMs?: number;
  /** JS heap of each worker, MiB (default 1024): past it the worker dies and its statement is refused. */
  maxHeapMb?: number;
  /** A worker that classified a text longer than this is replaced afterwards (default 1 MiB). */
  recycleAbove?: number;
}

const require = createRequire(import.meta.url);

/** The worker's entry: registers tsx (the project runs TypeScript without a build), then loads the worker module. */
function bootstrapUrl(): URL {
  const tsx = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const worker = new URL('./classifier-worker.ts', import.meta.url).href;
  const code = `const m = await import(${JSON.stringify(tsx)}); (m.register ?? m.default.register)(); await import(${JSON.stringify(worker)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

interface Job {
  job: PoolJob;
  resolve(r: PoolResult): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  busy: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Replaced (or being closed): its events no longer matter. */
  retired: boolean;
}

export class ClassifierPool {
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;
  private readonly recycleAbove: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers replaced after a crash or timeout (tests, metrics). */
  replaced = 0;

  constructor(options: ClassifierPoolOptions = {}) {
    this.size = Math.max(1, options.size ?? 1);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxHeapMb = options.maxHeapMb ?? 1024;
    this.recycleAbove = options.recycleAbove ?? 1024 * 1024;
  }

  /** Classifications queued or running in a worker now (the sessions that sent them wait; the others go on). */
  get inFlight(): number {
    let running = 0;
    for (const s of this.slots) if (s.busy) running++;
    return this.queue.length + running;
  }

  /** Classifies `text` in a worker; never rejects. */
  analyze(text: string, names?: SqlClassifyOptions): Promise<PoolResult> {
    if (this.closed) return Promise.resolve({ ok: false, reason: 'the gateway is shutting down' });
    const slimAll = (m: ReadonlyMap<string, SqlAction> | undefined): [string, Partial<SqlAction> & { raw?: PortableRawNames }][] => (m ? [...m].map(([name, a]) => [name, slim(a)]) : []);
    const job: PoolJob = { id: this.nextId++, text, prepared: slimAll(names?.prepared), cursors: slimAll(names?.cursors) };
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.queue.splice(0)) j.resolve({ ok: false, reason: 'the gateway is shutting down' });
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => this.retire(s, 'the gateway is shutting down')));
  }

  private dispatch(): void {
    while (this.slots.length < this.size && this.queue.length > this.slots.filter((s) => !s.busy).length) this.spawn();
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.busy) continue;
      const j = this.queue.shift()!;
      slot.busy = j;
      slot.timer = setTimeout(() => {
        void this.replace(slot, `classification took longer than ${this.timeoutMs / 1000}s`);
      }, this.timeoutMs);
      slot.worker.ref();
      slot.worker.postMessage(j.job);
    }
  }

  private spawn(): void {
    const worker = new Worker(bootstrapUrl(), { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    const slot: Slot = { worker, ready: false, busy: undefined, timer: undefined, retired: false };
    // An idle worker does not keep the process alive; one with work does (see dispatch).
    worker.on('message', (m: PoolAnswer | { ready: true }) => {
      if (slot.retired) return;
      if ('ready' in m) {
        slot.ready = true;
        this.dispatch();
        return;
      }
      const j = slot.busy;
      if (!j || j.job.id !== m.id) return;
      clearTimeout(slot.timer);
      slot.busy = undefined;
      slot.worker.unref();
      j.resolve(m.ok ? { ok: true, statements: m.statements.map((st) => withInput(st, j.job.text)) } : { ok: false, reason: m.reason });
      if (j.job.text.length > this.recycleAbove) void this.replace(slot, undefined);
      else this.dispatch();
    });
    worker.on('error', (e: Error) => void this.replace(slot, `the classifier worker failed: ${e.message}`));
    worker.on('exit', (code) => void this.replace(slot, `the classifier worker exited (code ${code})`));
    this.slots.push(slot);
  }

  /** Ends a worker and fails its statement (if any) with `reason`; another takes its place on demand. */
  private async replace(slot: Slot, reason: string | undefined): Promise<void> {
    if (slot.retired) return;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (reason !== undefined) this.replaced++;
    const done = this.retire(slot, reason ?? 'the classifier worker was replaced');
    // A worker that could not even start fails what waits for it, rather than respawning forever.
    if (!slot.ready) for (const j of this.queue.splice(0)) j.resolve({ ok: false, reason: reason ?? 'the classifier worker did not start' });
    this.dispatch();
    await done;
  }

  private async retire(slot: Slot, reason: string): Promise<void> {
    slot.retired = true;
    clearTimeout(slot.timer);
    const j = slot.busy;
    slot.busy = undefined;
    j?.resolve({ ok: false, reason });
    await slot.worker.terminate().catch(() => undefined);
  }
}

/** What EXECUTE of a prepared statement takes from it (walk.ts mergeAction), without its text. */
function slim(a: SqlAction): Partial<SqlAction> & { raw?: PortableRawNames } {
  const raw = portableRawNames(a);
  return {
    kind: a.kind, effects: [...a.effects], reads: [...a.reads], writes: [...a.writes], columns: [...a.columns], functions: [...a.functions],
    has_where: a.has_where, limit: a.limit, ...(a.reason !== undefined ? { reason: a.reason } : {}), ...(raw ? { raw } : {}),
  };
}

/** A worker's statement with the texts it did not send back (they were the job's text) put back; frozen, like the classifier's. */
function withInput(s: PooledStatement, text: string): PooledStatement {
  const SAME = '\u0000input';
  if (s.action.text === SAME) s.action.text = text;
  if (s.action.normalized === SAME) s.action.normalized = text;
  if (s.text === SAME) s.text = text;
  // An action again (frozen), whose unqualified names the session can resolve.
  s.action = restoredAction(s.action, s.raw);
  delete s.raw;
  return Object.freeze(s);
}
