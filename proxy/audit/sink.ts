// The audit log writer: append-only JSON Lines, hash-chained (chain.ts), with the durability of
// `audit.durability` (durability.ts).
//
// Two steps per record. **Write**: the records appended in one event-loop turn are sealed and
// handed to the kernel in one `write` (on the event loop: a page-cache write costs a few µs, and
// the request waits for it). **Sync**: `fdatasync`, group-committed: one sync at a time covers
// everything written before it started. Under `commit` a sync starts as soon as a record that an
// answer waits on is written (a state-changing request: the sync runs while the upstream executes
// it; a refusal; an approval), and otherwise `max_delay` after the first unsynced write, so reads
// are durable within `max_delay`. `strict` syncs before the request is forwarded; `async` syncs
// every `max_delay` and never waits.
//
// A deferred append (nobody waits on it: a statement's result record) takes its place in the queue
// but does not start a write; it rides with the next one, or is written after `max_delay` at most.
//
// Failure rules (fail closed):
// - a write that fails rejects every append in it: their requests must not run. The file is cut
//   back to its size before that write (a torn line), so the chain stays valid; if even that
//   fails, the log refuses all further appends;
// - an fsync that fails leaves the log broken until the gateway restarts (the kernel may have
//   dropped the pages it could not write; a later fsync could succeed without them): every waiter
//   rejects, `onSyncFailure` listeners hear which records are in doubt (their sessions end), every
//   further append is refused, and `health` is red.
//
// On open, the chain tail is recovered from the file: a torn last line (a crash mid-write) is cut
// off; a last record whose hash does not verify stops the gateway from starting — someone edited
// the log.

import { fdatasyncSync, ftruncateSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditAppendOptions, AuditRecordInput, AuditSink, AuditSyncFailure } from '../ports.ts';
import { GENESIS, recordHash, sealRecord } from './chain.ts';
import { DEFAULT_AUDIT_DURABILITY, DEFAULT_AUDIT_MAX_DELAY_MS, type AuditDurability } from './durability.ts';

export class AuditError extends Error {
  constructor(
    readonly code: 'write_failed' | 'sync_failed' | 'closed' | 'broken' | 'corrupt_tail' | 'locked',
    message: string,
  ) {
    super(message);
    this.name = 'AuditError';
  }
}

export interface AuditLog extends AuditSink {
  readonly file: string;
  readonly durability: AuditDurability;
  readonly maxDelayMs: number;
  /** Sequence number of the last record written (0 when empty). */
  readonly lastSeq: number;
  /** Sequence number of the last record known to be on disk (fsync'd). */
  readonly durableSeq: number;
  /** How fsyncs are issued now (see `AuditLogOptions.inlineSyncBelowUs`) and what one costs. */
  readonly sync: { mode: 'inline' | 'thread_pool'; costUs: number };
  /** Not ok while the last write failed or the log is unusable (an fsync failed): statements are not running. */
  readonly health: { ok: boolean; detail: string };
}

interface Pending {
  body: AuditRecordInput;
  /** When the append resolves: once written, or once durable. */
  until: 'written' | 'durable';
  /** A sync starts as soon as it is written. */
  urgent: boolean;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface AuditLogOptions {
  now?: () => Date;
  /** `audit.durability` (default `commit`). */
  durability?: AuditDurability;
  /** `audit.max_delay` in ms (default 20). */
  maxDelayMs?: number;
  /**
   * Issue `fdatasync` on the event loop while one costs less than this (µs, median of recent inline
   * syncs); above it, through the thread pool. Default 200. 0: always the thread pool.
   */
  inlineSyncBelowUs?: number;
}

export async function openAuditLog(file: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
  const now = opts.now ?? (() => new Date());
  const durability = opts.durability ?? DEFAULT_AUDIT_DURABILITY;
  const maxDelayMs = opts.maxDelayMs ?? DEFAULT_AUDIT_MAX_DELAY_MS;
  const inlineBelowUs = opts.inlineSyncBelowUs ?? 200;
  mkdirSync(dirname(file), { recursive: true });
  const releaseLock = acquireLock(file);
  let fh: FileHandle;
  try {
    fh = await open(file, 'a+', 0o640);
  } catch (err) {
    releaseLock();
    throw err;
  }
  let size: number;
  let seq = 0;
  let prev = GENESIS;
  try {
    const st = await fh.stat();
    size = st.isFile() ? st.size : 0;
    if (size > 0) {
      ({ size, seq, prev } = await recoverTail(fh, file, size));
      // What a crashed writer left in the page cache is on disk from here on.
      await fh.datasync();
    }
  } catch (err) {
    await fh.close();
    releaseLock();
    throw err;
  }

  /** Appended, not yet written. */
  let queue: Pending[] = [];
  let writeScheduled = false;
  let deferredTimer: NodeJS.Timeout | undefined;
  let durableSeq = seq;
  let syncing = false;
  /** Someone waits for what is written now: sync again as soon as the running sync ends. */
  let syncWanted = false;
  let syncTimer: NodeJS.Timeout | undefined;
  let waiters: Waiter[] = [];
  const listeners = new Set<AuditSyncFailure>();
  const syncCost = new InlineSyncCost(inlineBelowUs);
  let broken: AuditError | undefined;
  /** The last write's failure, until a write succeeds. */
  let lastFailure: string | undefined;
  let closed = false;

  function writeQueued(): void {
    writeScheduled = false;
    if (deferredTimer) clearTimeout(deferredTimer);
    deferredTimer = undefined;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    if (broken) {
      for (const p of batch) p.reject(broken);
      return;
    }
    const startSeq = seq;
    const startPrev = prev;
    const startSize = size;
    const time = now().toISOString();
    let lines = '';
    let urgent = false;
    try {
      for (const p of batch) {
        seq += 1;
        const sealed = sealRecord(p.body as unknown as Record<string, unknown>, seq, time, prev);
        prev = sealed.hash;
        lines += sealed.line + '\n';
        urgent ||= p.urgent;
      }
      const buf = Buffer.from(lines);
      let off = 0;
      while (off < buf.length) off += writeSync(fh.fd, buf, off, buf.length - off);
      size += buf.length;
    } catch (err) {
      seq = startSeq;
      prev = startPrev;
      const failure = new AuditError('write_failed', `audit write to ${file} failed: ${(err as Error).message}`);
      lastFailure = failure.message;
      try {
        ftruncateSync(fh.fd, startSize);
      } catch (terr) {
        broken = new AuditError('broken', `audit log ${file} is unusable after a failed write (${(err as Error).message}; cannot cut back: ${(terr as Error).message})`);
      }
      for (const p of batch) p.reject(failure);
      return;
    }
    lastFailure = undefined;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const s = startSeq + 1 + i;
      if (p.until === 'written') p.resolve(s);
      else waiters.push({ seq: s, resolve: () => p.resolve(s), reject: p.reject });
    }
    if (urgent) requestSync();
    else armSyncTimer();
  }

  function scheduleWrite(): void {
    if (writeScheduled) return;
    writeScheduled = true;
    // Appends issued in the same turn (other sessions' statements) join this write.
    setImmediate(writeQueued);
  }

  function armSyncTimer(): void {
    if (syncTimer || syncing || seq === durableSeq || broken) return;
    syncTimer = setTimeout(() => {
      syncTimer = undefined;
      startSync();
    }, maxDelayMs);
    syncTimer.unref();
  }

  function requestSync(): void {
    syncWanted = true;
    startSync();
  }

  function startSync(): void {
    if (syncing || broken) return;
    if (syncTimer) clearTimeout(syncTimer);
    syncTimer = undefined;
    syncWanted = false;
    if (seq === durableSeq) return;
    syncing = true;
    const target = seq;
    const started = performance.now();
    if (syncCost.nextInline()) {
      try {
        fdatasyncSync(fh.fd);
      } catch (err) {
        return syncDone(target, err as Error);
      }
      syncCost.record((performance.now() - started) * 1000);
      syncDone(target);
    } else {
      // The event loop keeps relaying while the disk syncs; what is written meanwhile waits for the next sync.
      fh.datasync().then(
        () => (syncCost.recordPool((performance.now() - started) * 1000), syncDone(target)),
        (err: Error) => syncDone(target, err),
      );
    }
  }

  function syncDone(target: number, err?: Error): void {
    syncing = false;
    if (err) return syncFailed(err);
    if (target > durableSeq) durableSeq = target;
    if (waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of waiters) {
        if (w.seq <= durableSeq) w.resolve();
        else still.push(w);
      }
      waiters = still;
    }
    if (seq > durableSeq) {
      if (syncWanted || waiters.length > 0) startSync();
      else armSyncTimer();
    }
  }

  function syncFailed(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    const from = durableSeq + 1;
    broken = new AuditError(
      'sync_failed',
      `audit log ${file}: fsync failed (${code ?? err.message}): records ${from}–${seq} may not be on disk; no statement runs until the gateway is restarted`,
    );
    if (syncTimer) clearTimeout(syncTimer);
    syncTimer = undefined;
    // Sessions first (they end with an error), then whoever waited on a record.
    for (const l of [...listeners]) {
      try {
        l(broken, from);
      } catch {
        /* a listener's failure does not stop the others */
      }
    }
    const failed = waiters;
    waiters = [];
    for (const w of failed) w.reject(broken);
  }

  function enqueue(body: AuditRecordInput, until: 'written' | 'durable', urgent: boolean, deferred: boolean): Promise<number> {
    if (closed) return Promise.reject(new AuditError('closed', 'audit log is closed'));
    if (broken) return Promise.reject(broken);
    return new Promise<number>((resolve, reject) => {
      queue.push({ body, until, urgent, resolve, reject });
      if (!deferred) scheduleWrite();
      else deferredTimer ??= setTimeout(writeQueued, maxDelayMs);
    });
  }

  return {
    file,
    durability,
    maxDelayMs,
    get lastSeq() {
      return seq;
    },
    get durableSeq() {
      return durableSeq;
    },
    get health() {
      const problem = broken?.message ?? lastFailure ?? (closed ? 'closed' : undefined);
      if (problem) return { ok: false, detail: problem };
      const { mode, costUs } = syncCost.state();
      const how = mode === 'inline' ? `synced inline (~${costUs} µs per fsync)` : `synced in the thread pool${costUs > 0 ? ` (an inline fsync costs ~${costUs} µs)` : ''}`;
      return { ok: true, detail: `ok, record ${seq}, ${how}; durability ${durability}, on disk through record ${durableSeq}` };
    },
    get sync() {
      return syncCost.state();
    },
    append(record: AuditRecordInput, options?: AuditAppendOptions): Promise<number> {
      if (options?.deferred) return enqueue(record, 'written', false, true);
      if (durability === 'async') return enqueue(record, 'written', false, false);
      return enqueue(record, 'durable', true, false);
    },
    beforeForward(record: AuditRecordInput, options?: { changes?: boolean }): Promise<number> {
      if (durability === 'strict') return enqueue(record, 'durable', true, false);
      return enqueue(record, 'written', durability === 'commit' && options?.changes === true, false);
    },
    beforeAnswer(s: number): Promise<void> | undefined {
      if (durability === 'async' || s <= durableSeq) return undefined;
      if (broken) return Promise.reject(broken);
      return new Promise<void>((resolve, reject) => {
        waiters.push({ seq: s, resolve, reject });
        requestSync();
      });
    },
    onSyncFailure(listener: AuditSyncFailure): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      writeQueued();
      if (deferredTimer) clearTimeout(deferredTimer);
      if (syncTimer) clearTimeout(syncTimer);
      syncTimer = undefined;
      // Everything written is on disk before the file is closed.
      while (syncing) await new Promise((r) => setImmediate(r));
      if (!broken && seq > durableSeq) {
        const target = seq;
        syncing = true;
        try {
          await fh.datasync();
          syncDone(target);
        } catch (err) {
          syncDone(target, err as Error);
        }
      }
      listeners.clear();
      await fh.close();
      releaseLock();
    },
  };
}

/**
 * Picks how the next fsync is issued. Inline fsyncs are measured; the decision is the median of
 * the last few, so one slow sync (a journal commit, the file's first block) does not flip it to the
 * thread pool. Thread-pool fsyncs are measured too, hand-off included: when even those are under
 * the limit the storage is fast (again), and the log goes back inline. (An inline probe once a
 * second, as before, stalled the event loop for a whole disk sync every second on a busy disk.)
 */
export class InlineSyncCost {
  private readonly inline = new Window();
  private readonly pool = new Window();

  constructor(private readonly limitUs: number) {}

  nextInline(): boolean {
    return this.limitUs > 0 && this.inline.median < this.limitUs;
  }

  /** An inline fsync took `us`. */
  record(us: number): void {
    this.inline.add(us);
  }

  /** A thread-pool fsync took `us` from issue to completion. */
  recordPool(us: number): void {
    this.pool.add(us);
    if (this.pool.size >= 3 && this.pool.median < this.limitUs) {
      this.inline.clear();
      this.pool.clear();
    }
  }

  state(): { mode: 'inline' | 'thread_pool'; costUs: number } {
    return { mode: this.nextInline() ? 'inline' : 'thread_pool', costUs: Math.round(this.inline.median) };
  }
}

/** The last few samples and their median (kept up to date on add: read once per sync). */
class Window {
  private samples: number[] = [];
  private next = 0;
  median = 0;
  private static readonly SIZE = 7;

  get size(): number {
    return this.samples.length;
  }

  add(us: number): void {
    if (this.samples.length < Window.SIZE) this.samples.push(us);
    else this.samples[this.next] = us;
    this.next = (this.next + 1) % Window.SIZE;
    const sorted = [...this.samples].sort((a, b) => a - b);
    this.median = sorted[sorted.length >> 1]!;
  }

  clear(): void {
    this.samples = [];
    this.next = 0;
    this.median = 0;
  }
}

/**
 * One writer per log: a second writer would fork the chain. `<file>.lock` holds the writer's pid;
 * a lock left by a process that no longer exists is taken over. Devices (tests use /dev/full) are not locked.
 */
function acquireLock(file: string): () => void {
  try {
    if (!statSync(file).isFile()) return () => undefined;
  } catch {
    /* not there yet: a regular file will be created */
  }
  const lock = `${file}.lock`;
  const mine = `${process.pid}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, mine, { flag: 'wx', mode: 0o640 });
      return () => {
        try {
          if (readFileSync(lock, 'utf8') === mine) unlinkSync(lock);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new AuditError('locked', `${file} is being written by process ${pid}${pid === process.pid ? ' (this process)' : ''}; one audit writer per file`);
      }
      unlinkSync(lock); // stale: its writer is gone
    }
  }
  throw new AuditError('locked', `cannot lock ${file}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Finds the last complete record, cutting off a torn trailing line. */
async function recoverTail(fh: FileHandle, file: string, size: number): Promise<{ size: number; seq: number; prev: string }> {
  // Read backwards in growing chunks until the last complete line is in view.
  let chunk = 64 * 1024;
  for (;;) {
    const start = Math.max(0, size - chunk);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let end = buf.length;
    if (buf[end - 1] !== 0x0a) {
      const nl = buf.lastIndexOf(0x0a);
      if (nl < 0 && start > 0) {
        chunk *= 4;
        continue;
      }
      // Torn write: never acknowledged, so it is safe to drop.
      const keep = start + nl + 1;
      await fh.truncate(keep);
      if (keep === 0) return { size: 0, seq: 0, prev: GENESIS };
      return recoverTail(fh, file, keep);
    }
    end -= 1;
    const nl = buf.lastIndexOf(0x0a, end - 1);
    if (nl < 0 && start > 0) {
      chunk *= 4;
      continue;
    }
    const line = buf.subarray(nl + 1, end).toString('utf8');
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new AuditError('corrupt_tail', `${file}: the last record is not valid JSON; run \`hoop audit verify ${file}\``);
    }
    const { hash, ...rest } = rec;
    if (typeof hash !== 'string' || typeof rec.seq !== 'number' || recordHash(rest) !== hash) {
      throw new AuditError('corrupt_tail', `${file}: the last record does not verify; run \`hoop audit verify ${file}\``);
    }
    return { size, seq: rec.seq, prev: hash };
  }
}
