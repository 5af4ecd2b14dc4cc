// The audit chain's hashing rule, shared by the writer and the verifier so they cannot drift:
// each record line is canonical JSON (keys sorted at every level, no whitespace); its `hash` is the
// SHA-256 (hex) of the canonical JSON of the record without `hash` (so it covers `prev`, `seq` and
// `time`); `prev` is the previous record's `hash`, and the first record's `prev` is GENESIS.

import { createHash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // undefined never reaches here from records (dropped by the object branch).
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function recordHash(recordWithoutHash: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(recordWithoutHash)).digest('hex');
}

/** Builds the line (without newline) and hash for one record. */
export function sealRecord(body: Record<string, unknown>, seq: number, time: string, prev: string): { line: string; hash: string } {
  const rec: Record<string, unknown> = { ...body, seq, time, prev };
  delete rec.hash;
  const hash = recordHash(rec);
  rec.hash = hash;
  return { line: canonicalJson(rec), hash };
}
