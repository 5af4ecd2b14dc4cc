// Masker implementations (declarations live in stdlib/registry.ts). A masker is a total function
// from a value's text to its masked text, or `null` for SQL NULL. Every masker accepts any string
// (empty, astral-plane unicode, lone surrogates, megabytes long) and never throws.
//
// Maskers work on code points, not UTF-16 units, so a kept suffix never splits a surrogate pair and
// the hidden part is replaced one `*` per code point (the length leaks, which is what `last4` and
// `partial` are for; `redact` and `hash` do not leak it).

import { createHmac } from 'node:crypto';
import { isSpaceLike } from '../detectors/chars.ts';

export type Masker = (value: string) => string | null;

/** What a policy names: `partial(4)` → `{ name: 'partial', args: [4] }` (structurally `MaskerSpec`). */
export interface MaskerRef {
  name: string;
  args: readonly (number | string)[];
}

export interface MaskerOptions {
  /** Key of the `hash` masker (HMAC-SHA256). Required when a policy uses `hash`. */
  hashKey?: string | Buffer;
}

export type MaskerResult = { ok: true; masker: Masker } | { ok: false; code: 'unknown_masker' | 'bad_arguments' | 'no_hash_key'; message: string };

/** The fixed placeholder of `redact` (and of values derived from masked columns). */
export const REDACTED = '[REDACTED]';
/** Prefix of `hash` output: marks the value as a keyed digest, and keeps `hash` idempotent. */
export const HASH_PREFIX = 'h:';

const STAR = '*';

export const redact: Masker = () => REDACTED;

export const toNull: Masker = () => null;

/** `j***@example.com`: the first character of the local part, then `***`, then the domain. Non-emails → `[REDACTED]`. */
export const email: Masker = (value) => {
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return REDACTED;
  const domain = value.slice(at + 1);
  // An address has no whitespace or second `@`, and its domain has a dot between labels.
  if (!plausibleDomain(domain) || !plausibleLocal(value, at)) return REDACTED;
  // Already masked (`j***`) stays as it is: idempotent.
  return `${firstCodePoint(value)}***@${domain}`;
};

function plausibleDomain(domain: string): boolean {
  const dot = domain.indexOf('.');
  if (dot <= 0 || domain.endsWith('.') || domain.includes('..')) return false;
  for (let i = 0; i < domain.length; i++) {
    const c = domain.charCodeAt(i);
    // Whitespace, `@`, and control characters are never part of a domain.
    if (c <= 0x20 || c === 0x40 || c === 0x7f) return false;
  }
  return true;
}

/** No whitespace (ASCII or Unicode) and no `@` in value[0, end). */
function plausibleLocal(value: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c === 0x40 || c === 0x7f || isSpaceLike(c)) return false;
  }
  return true;
}

function firstCodePoint(s: string): string {
  const cp = s.codePointAt(0);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

/** Code points in s[from, to). */
function codePoints(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point; lone surrogates count as one each.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** UTF-16 index where the last `keep` code points of s begin (0 when s has no more than `keep`). */
function startOfLast(s: string, keep: number): number {
  let i = s.length;
  for (let k = 0; k < keep && i > 0; k++) {
    i--;
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const h = s.charCodeAt(i - 1);
      if (h >= 0xd800 && h <= 0xdbff) i--;
    }
  }
  return i;
}

/** UTF-16 index just after the first `keep` code points of s. */
function endOfFirst(s: string, keep: number): number {
  let i = 0;
  for (let k = 0; k < keep && i < s.length; k++) {
    const c = s.charCodeAt(i);
    i++;
    if (c >= 0xd800 && c <= 0xdbff && i < s.length) {
      const d = s.charCodeAt(i);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return i;
}

/**
 * Keep the last `keep` code points, one `*` for each hidden one. A value with no more than `keep`
 * code points is fully hidden (showing all of a short value would show everything).
 */
function keepLast(value: string, keep: number): string {
  const cut = startOfLast(value, keep);
  if (cut === 0) return STAR.repeat(codePoints(value, 0, value.length));
  return STAR.repeat(codePoints(value, 0, cut)) + value.slice(cut);
}

/** Keep the first `keep` code points, one `*` for each hidden one; short values fully hidden. */
function keepFirst(value: string, keep: number): string {
  const cut = endOfFirst(value, keep);
  if (cut === value.length) return STAR.repeat(codePoints(value, 0, value.length));
  return value.slice(0, cut) + STAR.repeat(codePoints(value, cut, value.length));
}

/** `************1234`; values of four code points or fewer are fully hidden. */
export const last4: Masker = (value) => keepLast(value, 4);

/** `partial(n)`: the first n code points stay visible (registry: "Keep the first n characters"). */
export function partial(n: number): Masker {
  const keep = Math.max(0, Math.floor(n));
  return (value) => keepFirst(value, keep);
}

/**
 * `h:` + hex HMAC-SHA256 of the UTF-8 value under the configured key. Stable for a key, so joins and
 * GROUP BY on the masked value still work. A value that already is a digest of this shape is left
 * as is (idempotent: masking twice, e.g. a direct column inside a detector pass, changes nothing).
 */
export function hash(key: string | Buffer): Masker {
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (value) => {
    if (isDigest(value)) return value;
    return HASH_PREFIX + createHmac('sha256', k).update(value, 'utf8').digest('hex');
  };
}

function isDigest(value: string): boolean {
  if (value.length !== HASH_PREFIX.length + 64 || !value.startsWith(HASH_PREFIX)) return false;
  for (let i = HASH_PREFIX.length; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Build the masker a policy names. Unknown names and bad arguments are coded failures. */
export function createMasker(ref: MaskerRef, options: MaskerOptions = {}): MaskerResult {
  const noArgs = (m: Masker): MaskerResult =>
    ref.args.length === 0 ? { ok: true, masker: m } : { ok: false, code: 'bad_arguments', message: `masker \`${ref.name}\` takes no arguments` };
  switch (ref.name) {
    case 'redact':
      return noArgs(redact);
    case 'null':
      return noArgs(toNull);
    case 'email':
      return noArgs(email);
    case 'last4':
      return noArgs(last4);
    case 'hash':
      if (ref.args.length !== 0) return { ok: false, code: 'bad_arguments', message: 'masker `hash` takes no arguments' };
      if (options.hashKey === undefined || options.hashKey.length === 0) {
        return { ok: false, code: 'no_hash_key', message: 'masker `hash` needs a key (gateway config `masking.hash_key`)' };
      }
      return { ok: true, masker: hash(options.hashKey) };
    case 'partial': {
      const n = ref.args[0];
      if (ref.args.length !== 1 || typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
        return { ok: false, code: 'bad_arguments', message: 'masker `partial` takes one non-negative integer: partial(n)' };
      }
      return { ok: true, masker: partial(n) };
    }
    default:
      return { ok: false, code: 'unknown_masker', message: `unknown masker \`${ref.name}\`` };
  }
}

/** How much a masker reveals, for choosing between two rules masking the same column. Lower reveals less. */
export function maskerStrength(name: string): number {
  switch (name) {
    case 'null':
      return 0;
    case 'redact':
      return 1;
    case 'hash':
      return 2;
    default:
      return 3;
  }
}

/**
 * Two rules mask the same value with different maskers: keep the one that reveals less; two
 * different partial views (e.g. `email` and `last4`) together could reveal more than either, so
 * they combine to `redact`.
 */
export function strictest(a: MaskerRef, b: MaskerRef): MaskerRef {
  if (a.name === b.name && JSON.stringify(a.args) === JSON.stringify(b.args)) return a;
  const sa = maskerStrength(a.name);
  const sb = maskerStrength(b.name);
  if (sa < sb) return a;
  if (sb < sa) return b;
  return sa <= 1 ? a : { name: 'redact', args: [] };
}
