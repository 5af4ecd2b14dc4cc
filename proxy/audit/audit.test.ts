import { describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InlineSyncCost, openAuditLog } from './sink.ts';
import { verifyAuditFile } from './verify.ts';
import { canonicalJson, recordHash } from './chain.ts';
import type { AuditRecordInput } from '../ports.ts';

const decision = (i: number): AuditRecordInput => ({
  type: 'decision',
  session_id: 's1',
  token: { jti: `j${i}`, iss: 'urn:hoop:dev-issuer' },
  identity: { sub: 'agent-7', groups: ['data-reader'], actor: 'alice' },
  resource: { kind: 'postgres', name: 'prod-main' },
  client_addr: '127.0.0.1:5555',
  statement: { fingerprint: `fp${i}`, normalized: `SELECT $1 FROM t${i}`, kind: 'select' },
  verdict: 'mask',
  rules: ['prod.db.readers_select', 'prod.db.mask_customer_pii'],
  masks: ['public.customers.email'],
  outcome: 'executed',
  rows: i,
  duration_ms: 1.25,
});

async function logWith(n: number): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'hoop-audit-')), 'sub', 'audit.jsonl');
  const log = await openAuditLog(file);
  await Promise.all(Array.from({ length: n }, (_, i) => log.append(decision(i + 1))));
  await log.close();
  return file;
}

const lines = (f: string) => readFileSync(f, 'utf8').split('\n').slice(0, -1);

describe('audit log', () => {
  it('writes a verifiable chain with every field, in order, with sequence numbers', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hoop-audit-')), 'audit.jsonl');
    const log = await openAuditLog(file);
    const seqs = await Promise.all([log.append(decision(1)), log.append(decision(2)), log.append(decision(3))]);
    expect(seqs).toEqual([1, 2, 3]);
    expect(await log.append({ type: 'connection_refused', client_addr: '10.0.0.9:1', outcome: 'refused', reason: 'expired' })).toBe(4);
    await log.close();
    const recs = lines(file).map((l) => JSON.parse(l));
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    expect(recs[0].prev).toBe('0'.repeat(64));
    expect(recs[1].prev).toBe(recs[0].hash);
    expect(recs[0]).toMatchObject({ ...decision(1), seq: 1 });
    expect(Date.parse(recs[0].time)).not.toBeNaN();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4, last_seq: 4, last_hash: recs[3].hash });
  });

  it('batches concurrent appends (group commit) and keeps the chain', async () => {
    const file = await logWith(500);
    const r = await verifyAuditFile(file);
    expect(r).toMatchObject({ ok: true, records: 500 });
  });

  it('continues the chain after a restart', async () => {
    const file = await logWith(3);
    const log = await openAuditLog(file);
    expect(log.lastSeq).toBe(3);
    expect(await log.append(decision(4))).toBe(4);
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4 });
  });

  it('cuts off a torn last line on open (never acknowledged)', async () => {
    const file = await logWith(3);
    appendFileSync(file, '{"seq":4,"type":"deci');
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 4, problem: 'malformed' });
    const log = await openAuditLog(file);
    expect(await log.append(decision(4))).toBe(4);
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4 });
  });

  it('refuses to open on a tampered last record', async () => {
    const file = await logWith(3);
    const ls = lines(file);
    ls[2] = ls[2].replace('"verdict":"mask"', '"verdict":"allow"');
    writeFileSync(file, ls.join('\n') + '\n');
    await expect(openAuditLog(file)).rejects.toMatchObject({ code: 'corrupt_tail' });
  });

  describe('verify pinpoints the first broken record', () => {
    it('an edited line', async () => {
      const file = await logWith(6);
      const ls = lines(file);
      ls[3] = ls[3].replace('"verdict":"mask"', '"verdict":"allow"');
      writeFileSync(file, ls.join('\n') + '\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 4, seq: 4, problem: 'hash_mismatch', records_ok: 3 });
    });

    it('an edited line whose hash was recomputed breaks the next link', async () => {
      const file = await logWith(6);
      const ls = lines(file);
      const rec = JSON.parse(ls[1]);
      rec.verdict = 'allow';
      delete rec.hash;
      rec.hash = recordHash(rec);
      ls[1] = canonicalJson(rec);
      writeFileSync(file, ls.join('\n') + '\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 3, seq: 3, problem: 'prev_mismatch' });
    });

    it('a deleted line', async () => {
      const file = await logWith(6);
      const ls = lines(file);
      ls.splice(2, 1);
      writeFileSync(file, ls.join('\n') + '\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 3, seq: 4, problem: 'prev_mismatch' });
    });

    it('a deleted first line', async () => {
      const file = await logWith(3);
      writeFileSync(file, lines(file).slice(1).join('\n') + '\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 1, seq: 2, problem: 'prev_mismatch' });
    });

    it('reordered lines', async () => {
      const file = await logWith(6);
      const ls = lines(file);
      [ls[3], ls[4]] = [ls[4], ls[3]];
      writeFileSync(file, ls.join('\n') + '\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 4, seq: 5, problem: 'prev_mismatch' });
    });

    it('records cut off the end, given an anchor from an earlier verify', async () => {
      const file = await logWith(5);
      const before = await verifyAuditFile(file);
      if (!before.ok) throw new Error('expected an intact log');
      const anchor = { seq: before.last_seq, hash: before.last_hash };
      expect(await verifyAuditFile(file, { anchors: [anchor] })).toMatchObject({ ok: true });
      writeFileSync(file, lines(file).slice(0, 3).join('\n') + '\n');
      // Without the anchor a shorter chain is indistinguishable from a younger log.
      expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 3 });
      expect(await verifyAuditFile(file, { anchors: [anchor] })).toMatchObject({ ok: false, problem: 'truncated', seq: 5, line: 4 });
      // A rewritten chain (every hash recomputed) no longer matches the anchor.
      const again = join(mkdtempSync(join(tmpdir(), 'hoop-audit-')), 'audit.jsonl');
      const forged = await openAuditLog(again);
      for (let i = 1; i <= 5; i++) await forged.append({ ...decision(i), verdict: 'allow' });
      await forged.close();
      expect(await verifyAuditFile(again)).toMatchObject({ ok: true });
      expect(await verifyAuditFile(again, { anchors: [anchor] })).toMatchObject({ ok: false, problem: 'anchor_mismatch', seq: 5 });
    });

    it('garbage and missing files', async () => {
      const file = await logWith(2);
      appendFileSync(file, 'not json\n');
      expect(await verifyAuditFile(file)).toMatchObject({ ok: false, line: 3, problem: 'malformed' });
      expect(await verifyAuditFile(file + '.missing')).toMatchObject({ ok: false, problem: 'unreadable' });
    });
  });

  it('a failed write rejects the append (the statement must not run)', async () => {
    if (!existsSync('/dev/full')) throw new Error('this test needs /dev/full (Linux)');
    const log = await openAuditLog('/dev/full');
    expect(log.health.ok).toBe(true);
    await expect(log.append(decision(1))).rejects.toMatchObject({ code: 'write_failed' });
    // /healthz reports it: no statement can run.
    expect(log.health).toMatchObject({ ok: false, detail: expect.stringContaining('cannot cut back') });
    // /dev/full cannot be cut back, so the sink refuses everything after (fail closed).
    await expect(log.append(decision(2))).rejects.toMatchObject({ code: 'broken' });
    await log.close();
  });

  it('through the thread pool (slow storage), batches keep the chain, interleave with new appends and fail closed', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hoop-audit-')), 'audit.jsonl');
    const log = await openAuditLog(file, { inlineSyncBelowUs: 0 });
    expect(log.sync.mode).toBe('thread_pool');
    // Appends made while a batch is being written form the next batch, in order.
    const first = Array.from({ length: 50 }, (_, i) => log.append(decision(i + 1)));
    await new Promise((r) => setImmediate(r));
    const second = Array.from({ length: 50 }, (_, i) => log.append(decision(i + 51), { deferred: i % 2 === 0 }));
    expect(await Promise.all([...first, ...second])).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(log.health).toMatchObject({ ok: true, detail: expect.stringMatching(/^ok, record 100, synced in the thread pool/) });
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 100 });
    if (!existsSync('/dev/full')) throw new Error('this test needs /dev/full (Linux)');
    const full = await openAuditLog('/dev/full', { inlineSyncBelowUs: 0 });
    await expect(full.append(decision(1))).rejects.toMatchObject({ code: 'write_failed' });
    await expect(full.append(decision(2))).rejects.toMatchObject({ code: 'broken' });
    await full.close();
  });

  it('allows one writer per file; a stale lock is taken over', async () => {
    const file = await logWith(1);
    const a = await openAuditLog(file);
    await expect(openAuditLog(file)).rejects.toMatchObject({ code: 'locked' });
    await a.close();
    writeFileSync(file + '.lock', '999999999\n'); // a pid that does not exist
    const b = await openAuditLog(file);
    expect(await b.append(decision(2))).toBe(2);
    await b.close();
    expect(existsSync(file + '.lock')).toBe(false);
  });

  it('rejects appends after close', async () => {
    const file = await logWith(1);
    const log = await openAuditLog(file);
    await log.close();
    await expect(log.append(decision(2))).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('canonical JSON', () => {
  it('serialises frozen objects like unfrozen ones, and never serves a stale text for something mutable', () => {
    const groups = ['b', 'a'];
    const identity = Object.freeze({ sub: 'agent-7', groups });
    const plain = { sub: 'agent-7', groups: ['b', 'a'] };
    expect(canonicalJson(identity)).toBe(canonicalJson(plain));
    expect(canonicalJson(identity)).toBe('{"groups":["b","a"],"sub":"agent-7"}');
    // A frozen object around a mutable array is not cached: the change shows.
    groups.push('c');
    expect(canonicalJson(identity)).toBe('{"groups":["b","a","c"],"sub":"agent-7"}');
    // Deeply frozen: the same text every time (and the record hash with it).
    const deep = Object.freeze({ resource: Object.freeze({ name: 'prod-main', kind: 'postgres' }), tags: Object.freeze(['x']) });
    const first = recordHash({ deep });
    expect(recordHash({ deep })).toBe(first);
    expect(recordHash({ deep: { resource: { kind: 'postgres', name: 'prod-main' }, tags: ['x'] } })).toBe(first);
  });

  it('a deferred append rides with the next awaited one and keeps the chain in order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-audit-deferred-'));
    const file = join(dir, 'audit.jsonl');
    const log = await openAuditLog(file);
    const deferred = log.append(decision(1), { deferred: true });
    await new Promise((r) => setImmediate(r));
    // Nothing is written yet: nobody waits on it.
    expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
    expect(await log.append(decision(2))).toBe(2);
    expect(await deferred).toBe(1);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    // Alone, a deferred record is still written within a short bound, and on close.
    const alone = log.append(decision(3), { deferred: true });
    expect(await alone).toBe(3);
    const last = log.append(decision(4), { deferred: true });
    await log.close();
    expect(await last).toBe(4);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4 });
  });
});

describe('durability modes (audit.durability)', () => {
  const fresh = () => join(mkdtempSync(join(tmpdir(), 'hoop-audit-durability-')), 'audit.jsonl');
  const onDisk = (f: string) => (existsSync(f) ? lines(f).length : 0);

  it('commit: a read is forwarded once written and synced within max_delay; a change starts its sync at once and its answer waits for it', async () => {
    const file = fresh();
    // max_delay long enough that only a waiter or a change syncs during the test; fsyncs through
    // the thread pool, so a sync is really in flight while the caller carries on.
    const log = await openAuditLog(file, { maxDelayMs: 10_000, inlineSyncBelowUs: 0 });
    expect(log.durability).toBe('commit');
    const read = await log.beforeForward(decision(1));
    // Handed to the kernel (in the file) before the request would be forwarded; not synced yet.
    expect(onDisk(file)).toBe(1);
    expect([log.lastSeq, log.durableSeq]).toEqual([1, 0]);
    const change = await log.beforeForward({ ...decision(2), statement: { fingerprint: 'f', normalized: 'DELETE FROM t WHERE id = $1', kind: 'delete' } }, { changes: true });
    expect(change).toBe(2);
    // Its answer waits for the sync that started when it was written (and covers the read too).
    const held = log.beforeAnswer(change);
    expect(held).toBeInstanceOf(Promise);
    await held;
    expect(log.durableSeq).toBe(2);
    expect(log.beforeAnswer(change)).toBeUndefined();
    expect(log.beforeAnswer(read)).toBeUndefined();
    // A refusal or an approval (append) resolves only once durable.
    const refusal = await log.append({ ...decision(3), verdict: 'block', outcome: 'blocked' });
    expect(log.durableSeq).toBeGreaterThanOrEqual(refusal);
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 3 });
  });

  it('strict: a record is durable before its request may be forwarded', async () => {
    const file = fresh();
    const log = await openAuditLog(file, { durability: 'strict', maxDelayMs: 10_000, inlineSyncBelowUs: 0 });
    const seq = await log.beforeForward(decision(1));
    expect(log.durableSeq).toBe(seq);
    expect(log.beforeAnswer(seq)).toBeUndefined();
    await log.close();
  });

  it('async: written before forwarding, nothing waits for a sync, and close syncs the rest', async () => {
    const file = fresh();
    const log = await openAuditLog(file, { durability: 'async', maxDelayMs: 10_000, inlineSyncBelowUs: 0 });
    const seq = await log.beforeForward(decision(1), { changes: true });
    const refusal = await log.append(decision(2));
    expect(onDisk(file)).toBe(2);
    expect([seq, refusal, log.durableSeq]).toEqual([1, 2, 0]);
    expect(log.beforeAnswer(seq)).toBeUndefined();
    expect(log.health).toMatchObject({ ok: true, detail: expect.stringContaining('durability async, on disk through record 0') });
    await log.close();
    const again = await openAuditLog(file);
    expect(again.durableSeq).toBe(2);
    await again.close();
  });

  it('a failed fsync breaks the log: waiters reject, sessions hear which records are in doubt, health is red, nothing more is accepted', async () => {
    // A real fsync failure through the production code path: the kernel refuses fdatasync on a
    // character device (EINVAL) while its writes succeed, as a failing disk returns EIO.
    if (!existsSync('/dev/null')) throw new Error('this test needs /dev/null');
    const log = await openAuditLog('/dev/null', { maxDelayMs: 10_000 });
    const heard: number[] = [];
    log.onSyncFailure((_err, from) => heard.push(from));
    const read = await log.beforeForward(decision(1));
    expect(read).toBe(1);
    // The change is written (its request would be forwarded), then its sync fails.
    const change = await log.beforeForward(decision(2), { changes: true });
    expect(change).toBe(2);
    await expect(log.beforeAnswer(change)).rejects.toMatchObject({ code: 'sync_failed' });
    expect(heard).toEqual([1]);
    expect(log.health).toMatchObject({ ok: false, detail: expect.stringMatching(/fsync failed \(EINVAL\): records 1–2 may not be on disk/) });
    await expect(log.beforeForward(decision(3))).rejects.toMatchObject({ code: 'sync_failed' });
    await expect(log.append(decision(3))).rejects.toMatchObject({ code: 'sync_failed' });
    await log.close();
  });
});

describe('how fsyncs are issued', () => {
  it('one slow sync does not move the log off the event loop; sustained slowness does, and fast thread-pool syncs bring it back', () => {
    const cost = new InlineSyncCost(200);
    const inlineSync = (us: number): void => {
      expect(cost.nextInline()).toBe(true);
      cost.record(us);
    };
    for (const us of [8, 9, 5000, 7, 8]) inlineSync(us); // a journal commit once
    expect(cost.state()).toEqual({ mode: 'inline', costUs: 8 });
    let slow = 0;
    while (cost.state().mode === 'inline' && slow < 10) {
      inlineSync(900); // the log moved to a slow disk
      slow++;
    }
    expect(cost.state().mode).toBe('thread_pool');
    expect(slow).toBeLessThanOrEqual(4);
    // Slow thread-pool syncs keep it there, with no inline probe stalling the event loop.
    for (let i = 0; i < 20; i++) {
      cost.recordPool(1200);
      expect(cost.nextInline()).toBe(false);
    }
    // The storage got fast: thread-pool syncs (hand-off included) under the limit bring it back inline.
    cost.recordPool(60);
    cost.recordPool(70);
    cost.recordPool(65);
    cost.recordPool(80);
    expect(cost.nextInline()).toBe(true);
    // 0 disables inline syncing altogether; Infinity makes every sync inline.
    expect(new InlineSyncCost(0).nextInline()).toBe(false);
    const always = new InlineSyncCost(Number.POSITIVE_INFINITY);
    always.record(1e9);
    expect(always.nextInline()).toBe(true);
  });
});
