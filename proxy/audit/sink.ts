// The audit log writer: append-only JSON Lines, hash-chained (chain.ts), durable before `append`
// resolves. Concurrent appends are batched into one write + fdatasync (group commit), so the cost
// of durability is paid once per batch rather than once per statement. A deferred append (nobody
// waits on it: a statement's result record) takes its place in the queue but does not start a
// batch; it rides with the next awaited record, or is written after DEFERRED_FLUSH_MS at most.
//
// Failure rule (fail closed): if a batch cannot be written and synced, every append in it rejects,
// and the session must not run those statements. The file is cut back to the last durable record
// so the chain stays valid; if even that fails, the sink refuses all further appends.
//
// On open, the chain tail is recovered from the file: a torn last line (a crash mid-write; never
// acknowledged, because fsync had not returned) is cut off; a last record whose hash does not
// verify stops the gateway from starting — someone edited the log.

import { fdatasyncSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditAppendOptions, AuditRecordInput, AuditSink } from '../ports.ts';
import { GENESIS, recordHash, sealRecord } from './chain.ts';

export class AuditError extends Error {
  constructor(
    readonly code: 'write_failed' | 'closed' | 'broken' | 'corrupt_tail' | 'locked',
    message: string,
  ) {
    super(message);
    this.name = 'AuditError';
  }
}

export interface AuditLog extends AuditSink {
  readonly file: string;
  /** Sequence number of the last durable record (0 when empty). */
  readonly lastSeq: number;
  /** How batches are written now (see `AuditLogOptions.inlineSyncBelowUs`) and what one costs. */
  readonly sync: { mode: 'inline' | 'thread_pool'; costUs: number };
  /** Not ok while the last batch failed or the log is unusable: statements are not running. */
  readonly health: { ok: boolean; detail: string };
}

/** The longest a deferred record waits for a batch to join. */
const DEFERRED_FLUSH_MS = 50;

interface Pending {
  body: AuditRecordInput;
  resolve: (seq: number) => void;
  reject: (err: Error) => void;
}

export interface AuditLogOptions {
  now?: () => Date;
  /**
   * Write and sync on the event loop while a batch's `write` + `fdatasync` costs less than this
   * (µs, median of recent inline batches); above it, through the thread pool. Default 200.
   * 0: always the thread pool.
   */
  inlineSyncBelowUs?: number;
}

export async function openAuditLog(file: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
  const now = opts.now ?? (() => new Date());
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
    if (size > 0) ({ size, seq, prev } = await recoverTail(fh, file, size));
  } catch (err) {
    await fh.close();
    releaseLock();
    throw err;
  }

  let queue: Pending[] = [];
  let flushing: Promise<void> | undefined;
  let deferredTimer: NodeJS.Timeout | undefined;
  const syncCost = new InlineSyncCost(inlineBelowUs);
  let broken: AuditError | undefined;
  /** The last batch's failure, until a batch succeeds. */
  let lastFailure: string | undefined;
  let closed = false;

  async function flush(): Promise<void> {
    if (deferredTimer) clearTimeout(deferredTimer);
    deferredTimer = undefined;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      if (broken) {
        for (const p of batch) p.reject(broken);
        continue;
      }
      const startSeq = seq;
      const startPrev = prev;
      const startSize = size;
      const time = now().toISOString();
      const lines: string[] = [];
      const seqs: number[] = [];
      try {
        for (const p of batch) {
          seq += 1;
          const sealed = sealRecord(p.body as unknown as Record<string, unknown>, seq, time, prev);
          prev = sealed.hash;
          lines.push(sealed.line);
          seqs.push(seq);
        }
        const buf = Buffer.from(lines.join('\n') + '\n');
        // Fast storage (tmpfs, a disk with a write cache): write and sync on the event loop. A
        // thread-pool write and fdatasync cost two cross-thread hand-offs (~80 µs measured on
        // tmpfs) against ~8 µs inline, and every statement waits for its record anyway (audit
        // before forward). Slow storage (0.7–1.5 ms per fdatasync on this machine's disk): through the
        // thread pool, so other sessions' results keep flowing while the disk syncs, and the appends
        // that arrive meanwhile form the next batch. Either way one write + fdatasync per batch.
        const inline = syncCost.nextInline(Date.now());
        const started = performance.now();
        if (inline) {
          let off = 0;
          while (off < buf.length) off += writeSync(fh.fd, buf, off, buf.length - off);
          fdatasyncSync(fh.fd);
          syncCost.record((performance.now() - started) * 1000, Date.now());
        } else {
          let off = 0;
          while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
          await fh.datasync();
        }
        size += buf.length;
        lastFailure = undefined;
        batch.forEach((p, i) => p.resolve(seqs[i]));
      } catch (err) {
        seq = startSeq;
        prev = startPrev;
        const failure = new AuditError('write_failed', `audit write to ${file} failed: ${(err as Error).message}`);
        lastFailure = failure.message;
        try {
          await fh.truncate(startSize);
        } catch (terr) {
          broken = new AuditError('broken', `audit log ${file} is unusable after a failed write (${(err as Error).message}; cannot cut back: ${(terr as Error).message})`);
        }
        for (const p of batch) p.reject(failure);
      }
    }
  }

  function schedule(): void {
    if (flushing) return;
    // Let appends issued in the same tick join this batch before the write starts.
    flushing = new Promise<void>((r) => setImmediate(r))
      .then(flush)
      .finally(() => {
        flushing = undefined;
        // Appends that arrived after the last drain but before this callback ran.
        if (queue.length > 0) schedule();
      });
  }

  return {
    file,
    get lastSeq() {
      return seq;
    },
    get health() {
      const problem = broken?.message ?? lastFailure ?? (closed ? 'closed' : undefined);
      if (problem) return { ok: false, detail: problem };
      const { mode, costUs } = syncCost.state();
      const how = mode === 'inline' ? `synced inline (~${costUs} µs per batch)` : `synced in the thread pool${costUs > 0 ? ` (an inline sync costs ~${costUs} µs)` : ''}`;
      return { ok: true, detail: `ok, record ${seq}, ${how}` };
    },
    get sync() {
      return syncCost.state();
    },
    append(record: AuditRecordInput, options?: AuditAppendOptions): Promise<number> {
      if (closed) return Promise.reject(new AuditError('closed', 'audit log is closed'));
      if (broken) return Promise.reject(broken);
      return new Promise<number>((resolve, reject) => {
        queue.push({ body: record, resolve, reject });
        if (!options?.deferred) schedule();
        else deferredTimer ??= setTimeout(schedule, DEFERRED_FLUSH_MS);
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (queue.length > 0) schedule();
      while (flushing) await flushing;
      await fh.close();
      releaseLock();
    },
  };
}

/**
 * Picks how the next batch is written. Only inline batches are measured (a thread-pool batch's
 * time is mostly the hand-off, which would keep the log in thread-pool mode for ever), and the
 * decision is the median of the last few, so one slow sync (a journal commit, the file's first
 * block) does not flip it. In thread-pool mode one batch a second is written inline as a probe,
 * so storage that got fast again (or a first slow spell) brings the log back inline.
 */
export class InlineSyncCost {
  private readonly samples: number[] = [];
  private next = 0;
  private lastInlineAt = 0;
  /** Median of `samples`, kept up to date by `record` (read once per batch). */
  private medianUs = 0;
  private static readonly WINDOW = 7;
  private static readonly PROBE_EVERY_MS = 1000;

  constructor(private readonly limitUs: number) {}

  private inlineNow(): boolean {
    return this.limitUs > 0 && this.medianUs < this.limitUs;
  }

  nextInline(nowMs: number): boolean {
    if (this.limitUs <= 0) return false;
    return this.inlineNow() || nowMs - this.lastInlineAt >= InlineSyncCost.PROBE_EVERY_MS;
  }

  record(us: number, nowMs: number): void {
    this.lastInlineAt = nowMs;
    if (this.samples.length < InlineSyncCost.WINDOW) this.samples.push(us);
    else this.samples[this.next] = us;
    this.next = (this.next + 1) % InlineSyncCost.WINDOW;
    const sorted = [...this.samples].sort((a, b) => a - b);
    this.medianUs = sorted[sorted.length >> 1]!;
  }

  state(): { mode: 'inline' | 'thread_pool'; costUs: number } {
    return { mode: this.inlineNow() ? 'inline' : 'thread_pool', costUs: Math.round(this.medianUs) };
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
