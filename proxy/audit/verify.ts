// `hoop audit verify`: streams an audit log (constant memory) and reports the first record where
// the chain breaks, with its line number, its sequence number and what is wrong.
//
// What it proves: every record is unchanged since it was written, and no record was removed,
// inserted or reordered before the last one. What it cannot prove on its own: that records were
// not cut off the END of the file. For that, keep `last_seq`/`last_hash` somewhere else and pass
// them back as an anchor (`--anchor SEQ:HASH`): the log must still contain that record, unchanged.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { GENESIS, recordHash } from './chain.ts';

export type AuditProblem = 'unreadable' | 'malformed' | 'hash_mismatch' | 'prev_mismatch' | 'seq_mismatch' | 'torn_line' | 'anchor_mismatch' | 'truncated';

/** A (seq, hash) pair saved elsewhere earlier (`last_seq`/`last_hash` of a previous verify). */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

export interface VerifyOptions {
  /** Prove the log still contains this record unchanged: detects records cut off the end. */
  anchors?: AuditAnchor[];
}

/** `SEQ:HASH` as given on the command line. */
export function parseAnchor(text: string): AuditAnchor | undefined {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  return m ? { seq: Number(m[1]), hash: m[2] } : undefined;
}

export type AuditVerifyResult =
  | { ok: true; file: string; records: number; last_seq: number; last_hash: string }
  | { ok: false; file: string; records_ok: number; line: number; seq?: number; problem: AuditProblem; message: string };

export async function verifyAuditFile(file: string, opts: VerifyOptions = {}): Promise<AuditVerifyResult> {
  const anchors = new Map((opts.anchors ?? []).map((a) => [a.seq, a.hash]));
  let records = 0;
  let prev = GENESIS;
  let expectedSeq = 1;
  let lineNo = 0;
  const fail = (problem: AuditProblem, message: string, seq?: number): AuditVerifyResult => ({
    ok: false,
    file,
    records_ok: records,
    line: lineNo,
    seq,
    problem,
    message,
  });

  let endsWithNewline = true;
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        endsWithNewline = last[0] === 0x0a;
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    return fail('unreadable', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }

  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      lineNo += 1;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return fail('malformed', line.trim() === '' ? 'empty line' : 'not valid JSON');
      }
      if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return fail('malformed', 'not a JSON object');
      const { hash, ...rest } = rec;
      const seq = typeof rec.seq === 'number' ? rec.seq : undefined;
      if (typeof hash !== 'string' || typeof rec.prev !== 'string' || seq === undefined) {
        return fail('malformed', 'missing `hash`, `prev` or `seq`', seq);
      }
      if (recordHash(rest) !== hash) return fail('hash_mismatch', 'the record\'s content does not match its hash: it was modified after it was written', seq);
      if (rec.prev !== prev) {
        return fail(
          'prev_mismatch',
          lineNo === 1
            ? 'the first record does not start the chain: records before it were removed'
            : `the record does not chain to the one on line ${lineNo - 1}: a record was edited, removed, inserted or reordered here`,
          seq,
        );
      }
      if (seq !== expectedSeq) return fail('seq_mismatch', `expected seq ${expectedSeq}, found ${seq}`, seq);
      const anchored = anchors.get(seq);
      if (anchored !== undefined && anchored !== hash) {
        return fail('anchor_mismatch', `record ${seq} differs from the anchor (${anchored.slice(0, 12)}...): the log was rewritten from here or earlier`, seq);
      }
      prev = hash;
      expectedSeq += 1;
      records += 1;
    }
  } catch (err) {
    return fail('unreadable', `cannot read ${file}: ${(err as Error).message}`);
  } finally {
    rl.close();
  }
  if (!endsWithNewline) {
    // readline already yielded the torn line; if it parsed and verified, it is complete but unterminated.
    return fail('torn_line', 'the file does not end with a newline: the last write was interrupted', expectedSeq - 1);
  }
  const missing = [...anchors.keys()].filter((seq) => seq >= expectedSeq).sort((a, b) => a - b);
  if (missing.length > 0) {
    lineNo += 1;
    return fail('truncated', `the log ends at seq ${expectedSeq - 1}, but the anchor names seq ${missing[0]}: records were removed from the end`, missing[0]);
  }
  return { ok: true, file, records, last_seq: expectedSeq - 1, last_hash: prev };
}

export function renderAuditResult(r: AuditVerifyResult): string {
  if (r.ok) return `${r.file}: ok, ${r.records} records, chain intact (last seq ${r.last_seq}, last hash ${r.last_hash})`;
  return `${r.file}:${r.line}: ${r.problem}${r.seq !== undefined ? ` (seq ${r.seq})` : ''}: ${r.message}\n${r.records_ok} records before it verify`;
}
