// The audit chain's hashing rule, shared by the writer and the verifier so they cannot drift:
// each record line is canonical JSON (keys sorted at every level, no whitespace); its `hash` is the
// SHA-256 (hex) of the canonical JSON of the record without `hash` (so it covers `prev`, `seq` and
// `time`); `prev` is the previous record's `hash`, and the first record's `prev` is GENESIS.

import { createHash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
        return out + ']';
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined || typeof v === 'function') continue;
        out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
        first = false;
      }
      return out + '}';
    }
    default:
      // undefined, functions, symbols: absent in JSON (callers skip them as object members).
      return 'null';
  }
}

export function recordHash(recordWithoutHash: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(recordWithoutHash)).digest('hex');
}

/** Builds the line (without newline) and hash for one record. */
export function sealRecord(body: Record<string, unknown>, seq: number, time: string, prev: string): { line: string; hash: string } {
  const rec: Record<string, unknown> = { ...body, seq, time, prev };
  // Serialise the top-level members once; the hash member is spliced into its sorted position.
  const keys = Object.keys(rec).filter((k) => k !== 'hash' && rec[k] !== undefined && typeof rec[k] !== 'function').sort();
  const members = keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(rec[k]));
  const hash = createHash('sha256').update('{' + members.join(',') + '}').digest('hex');
  let at = 0;
  while (at < keys.length && keys[at] < 'hash') at++;
  members.splice(at, 0, `"hash":"${hash}"`);
  return { line: '{' + members.join(',') + '}', hash };
}
