// The parameter values of one Bind, as an approver is shown them, and the digest an approval is
// bound to. An approval in the extended protocol covers one execution with the values the approver
// saw (docs/gateway.md "Approval workflow"): text-format values as sent; binary ones decoded where
// the type is known (declared in the Parse, or described by the server), else as hex.

import { createHash } from 'node:crypto';
import type { ApprovalParam } from '../../ports.ts';

/** Longest value shown (characters); the digest always covers the whole value. */
export const MAX_SHOWN_VALUE = 4096;

export interface BoundParams {
  params: ApprovalParam[];
  /** sha256 over the types, formats and exact bytes of every value. */
  digest: string;
}

/**
 * `formats` as the Bind carries them: none (all text), one (applies to all) or one per value.
 * `declared` are the parameter type OIDs the client declared (0 or missing: for the server to
 * infer), part of the digest; `described` the types the server reported, where known, used only
 * to show binary values (so a re-send matches whether or not the client asked for a description).
 */
export function boundParams(values: (Buffer | null)[], formats: number[], declared: readonly number[] = [], described: readonly number[] = []): BoundParams {
  const h = createHash('sha256');
  h.update(`hoop-bind-v1\0${values.length}\0`);
  const params = values.map((v, i): ApprovalParam => {
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
    const type = declared[i] || described[i] || 0;
    h.update(`${declared[i] ?? 0}\0${format}\0${v === null ? -1 : v.length}\0`);
    if (v !== null) h.update(v);
    if (v === null) return { value: null, format: format === 1 ? 'binary' : 'text' };
    return shown(format === 1 ? decodeBinary(v, type) : decodeText(v));
  });
  return { params, digest: h.digest('hex') };
}

/** A FunctionCall's argument formats and values ('F', int32 length, int32 oid, formats, arguments, result format). */
export function functionCallArgs(raw: Buffer): { formats: number[]; values: (Buffer | null)[] } | undefined {
  if (raw.length < 11) return undefined;
  let p = 9;
  const nf = raw.readInt16BE(p);
  p += 2;
  if (nf < 0 || p + 2 * nf + 2 > raw.length) return undefined;
  const formats: number[] = [];
  for (let i = 0; i < nf; i++, p += 2) formats.push(raw.readInt16BE(p));
  const n = raw.readInt16BE(p);
  p += 2;
  if (n < 0) return undefined;
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    if (p + 4 > raw.length) return undefined;
    const len = raw.readInt32BE(p);
    p += 4;
    if (len < 0) values.push(null);
    else {
      if (p + len > raw.length) return undefined;
      values.push(raw.subarray(p, p + len));
      p += len;
    }
  }
  return { formats, values };
}

function shown(p: { value: string; format: ApprovalParam['format'] }): ApprovalParam {
  const chars = Array.from(p.value);
  if (chars.length <= MAX_SHOWN_VALUE) return p;
  return { value: chars.slice(0, MAX_SHOWN_VALUE).join(''), format: p.format, truncated_from: chars.length };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeText(v: Buffer): { value: string; format: ApprovalParam['format'] } {
  try {
    return { value: utf8.decode(v), format: 'text' };
  } catch {
    return { value: v.toString('hex'), format: 'hex' };
  }
}

const TEXTUAL = new Set([25, 1043, 1042, 19, 705, 114, 142, 18]); // text varchar bpchar name unknown json xml "char"
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** A binary value of a known type in its text form, or hex when the type is unknown or the bytes do not fit it. */
export function decodeBinary(v: Buffer, type: number): { value: string; format: ApprovalParam['format'] } {
  const hex = { value: v.toString('hex'), format: 'hex' as const };
  const bin = (value: string) => ({ value, format: 'binary' as const });
  try {
    if (TEXTUAL.has(type)) {
      const t = decodeText(v);
      return t.format === 'text' ? bin(t.value) : hex;
    }
    switch (type) {
      case 16: // bool
        return v.length === 1 ? bin(v[0] ? 'true' : 'false') : hex;
      case 21: // int2
        return v.length === 2 ? bin(String(v.readInt16BE(0))) : hex;
      case 23: // int4
        return v.length === 4 ? bin(String(v.readInt32BE(0))) : hex;
      case 26: // oid
        return v.length === 4 ? bin(String(v.readUInt32BE(0))) : hex;
      case 20: // int8
        return v.length === 8 ? bin(v.readBigInt64BE(0).toString()) : hex;
      case 700: // float4
        return v.length === 4 ? bin(floatText(v.readFloatBE(0))) : hex;
      case 701: // float8
        return v.length === 8 ? bin(floatText(v.readDoubleBE(0))) : hex;
      case 17: // bytea
        return bin(`\\x${v.toString('hex')}`);
      case 2950: // uuid
        return v.length === 16 ? bin(v.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')) : hex;
      case 3802: // jsonb: version 1, then the text
        if (v.length >= 1 && v[0] === 1) {
          const t = decodeText(v.subarray(1));
          return t.format === 'text' ? bin(t.value) : hex;
        }
        return hex;
      case 1082: // date: days since 2000-01-01
        if (v.length !== 4) return hex;
        return bin(dateText(v.readInt32BE(0)));
      case 1114: // timestamp: microseconds since 2000-01-01
      case 1184: // timestamptz (UTC)
        if (v.length !== 8) return hex;
        return bin(timestampText(v.readBigInt64BE(0), type === 1184));
      case 1700: // numeric
        return numericText(v) ?? hex;
      default:
        return hex;
    }
  } catch {
    return hex;
  }
}

function floatText(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return String(x);
}

function dateText(days: number): string {
  if (days === 0x7fffffff) return 'infinity';
  if (days === -0x80000000) return '-infinity';
  const iso = new Date(PG_EPOCH_MS + days * 86_400_000).toISOString();
  if (!/^\d{4}-/.test(iso)) throw new RangeError('year outside 0000-9999');
  return iso.slice(0, 10);
}

function timestampText(us: bigint, tz: boolean): string {
  if (us === 0x7fffffffffffffffn) return 'infinity';
  if (us === -0x8000000000000000n) return '-infinity';
  let ms = us / 1000n;
  let rest = us % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    ms -= 1n;
  }
  const iso = new Date(PG_EPOCH_MS + Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (!/^\d{4}-/.test(iso)) throw new RangeError('year outside 0000-9999');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${iso.slice(20, 23)}${String(rest).padStart(3, '0')}${tz ? '+00' : ''}`;
}

/** PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then base-10000 digits. */
function numericText(v: Buffer): { value: string; format: 'binary' } | undefined {
  if (v.length < 8) return undefined;
  const ndigits = v.readUInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  const dscale = v.readUInt16BE(6);
  if (v.length !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return { value: 'NaN', format: 'binary' };
  if (sign === 0xd000) return { value: 'Infinity', format: 'binary' };
  if (sign === 0xf000) return { value: '-Infinity', format: 'binary' };
  if (sign !== 0 && sign !== 0x4000) return undefined;
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) {
    const d = v.readUInt16BE(8 + 2 * i);
    if (d > 9999) return undefined;
    digits.push(d);
  }
  let int = '';
  for (let w = 0; w <= weight; w++) {
    const d = w < digits.length ? digits[w]! : 0;
    int += w === 0 ? String(d) : String(d).padStart(4, '0');
  }
  if (int === '') int = '0';
  let frac = '';
  for (let w = weight + 1; frac.length < dscale; w++) {
    const d = w >= 0 && w < digits.length ? digits[w]! : 0;
    frac += String(d).padStart(4, '0');
  }
  frac = frac.slice(0, dscale);
  return { value: `${sign === 0x4000 ? '-' : ''}${int}${dscale > 0 ? `.${frac}` : ''}`, format: 'binary' };
}
