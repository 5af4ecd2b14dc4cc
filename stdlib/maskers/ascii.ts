// Byte-level versions of the maskers for pure-ASCII values: the common case on the data path
// (e-mail addresses, card numbers, codes), done without decoding to a string and encoding back.
// Each returns exactly the UTF-8 bytes of the string masker's answer for the same input (a property
// test holds them to that); callers must check `isAscii` first.

import { createHmac } from 'node:crypto';
import { HASH_PREFIX, REDACTED, type MaskerRef } from './index.ts';

export type AsciiMasker = (value: Buffer) => Buffer | null;

export function isAscii(v: Uint8Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] >= 0x80) return false;
  return true;
}

const REDACTED_BYTES = Buffer.from(REDACTED, 'latin1');
const STAR = 0x2a;

function stars(n: number): Buffer {
  return Buffer.alloc(n, STAR);
}

function keepLast(v: Buffer, keep: number): Buffer {
  if (v.length <= keep) return stars(v.length);
  const out = Buffer.allocUnsafe(v.length);
  out.fill(STAR, 0, v.length - keep);
  v.copy(out, v.length - keep, v.length - keep);
  return out;
}

function keepFirst(v: Buffer, keep: number): Buffer {
  if (v.length <= keep) return stars(v.length);
  const out = Buffer.allocUnsafe(v.length);
  v.copy(out, 0, 0, keep);
  out.fill(STAR, keep);
  return out;
}

function email(v: Buffer): Buffer {
  const at = v.lastIndexOf(0x40);
  if (at <= 0 || at === v.length - 1) return REDACTED_BYTES;
  // Domain: a dot after its first byte, not at the end, no `..`, no space/control/`@`.
  const dot = v.indexOf(0x2e, at + 1);
  if (dot <= at + 1 || v[v.length - 1] === 0x2e) return REDACTED_BYTES;
  for (let i = at + 1; i < v.length; i++) {
    const c = v[i];
    if (c <= 0x20 || c === 0x40 || c === 0x7f || (c === 0x2e && v[i + 1] === 0x2e)) return REDACTED_BYTES;
  }
  for (let i = 0; i < at; i++) {
    const c = v[i];
    if (c <= 0x20 || c === 0x40 || c === 0x7f) return REDACTED_BYTES;
  }
  const domainLen = v.length - at - 1;
  const out = Buffer.allocUnsafe(5 + domainLen);
  out[0] = v[0];
  out.write('***@', 1, 'latin1');
  v.copy(out, 5, at + 1);
  return out;
}

function isDigest(v: Buffer): boolean {
  if (v.length !== HASH_PREFIX.length + 64 || v[0] !== 0x68 || v[1] !== 0x3a) return false;
  for (let i = 2; i < v.length; i++) {
    const c = v[i];
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** The ASCII fast path of a masker, when it has one. */
export function asciiMasker(ref: MaskerRef, hashKey?: string | Buffer): AsciiMasker | undefined {
  switch (ref.name) {
    case 'redact':
      return () => REDACTED_BYTES;
    case 'null':
      return () => null;
    case 'email':
      return email;
    case 'last4':
      return (v) => keepLast(v, 4);
    case 'partial': {
      const n = ref.args[0];
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? (v) => keepFirst(v, n) : undefined;
    }
    case 'hash': {
      if (hashKey === undefined || hashKey.length === 0) return undefined;
      const key = typeof hashKey === 'string' ? Buffer.from(hashKey, 'utf8') : hashKey;
      return (v) => (isDigest(v) ? v : Buffer.from(HASH_PREFIX + createHmac('sha256', key).update(v).digest('hex'), 'latin1'));
    }
    default:
      return undefined;
  }
}
