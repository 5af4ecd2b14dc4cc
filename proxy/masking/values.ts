// Turning a masked string back into a DataRow value of the column's type and format.
//
// A masker produces text (`j***@example.com`, `[REDACTED]`, `h:…`). That text is a valid value
// only for text-like types; for json/jsonb it is sent as a JSON string; for every other type
// (numbers, dates, uuid, bytea, arrays, ...) a placeholder would break the client's parser, so the
// value becomes NULL. Binary format follows the same rule with the binary encodings of text
// (raw UTF-8), json (raw UTF-8) and jsonb (version byte 1 + UTF-8).

/** OIDs of built-in types whose text and binary forms are plain UTF-8 text. */
const TEXT_LIKE = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 18 /* char */, 705 /* unknown */]);
const JSON_OID = 114;
const JSONB_OID = 3802;

/**
 * Built-in non-text types (their input functions reject arbitrary text). User-defined types
 * (OID >= 16384: enums, domains, citext, ...) are treated as text-like in text format.
 */
function isBuiltinNonText(oid: number): boolean {
  return oid < 16384 && !TEXT_LIKE.has(oid) && oid !== JSON_OID && oid !== JSONB_OID;
}

export type ValueEncoder = (masked: string | null) => Buffer | null;

/** The value's bytes are its text in UTF-8, both ways (so a byte-level masker can work on them directly). */
export function isRawText(typeOid: number, format: 0 | 1): boolean {
  return TEXT_LIKE.has(typeOid) || (format === 0 && !isBuiltinNonText(typeOid) && typeOid !== JSON_OID && typeOid !== JSONB_OID);
}

/** How a masked string is sent for a field of this type and format. */
export function encoderFor(typeOid: number, format: 0 | 1): ValueEncoder {
  if (TEXT_LIKE.has(typeOid)) return (m) => (m === null ? null : Buffer.from(m, 'utf8'));
  if (typeOid === JSON_OID) return (m) => (m === null ? null : Buffer.from(JSON.stringify(m), 'utf8'));
  if (typeOid === JSONB_OID) {
    return format === 0
      ? (m) => (m === null ? null : Buffer.from(JSON.stringify(m), 'utf8'))
      : (m) => (m === null ? null : Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(m), 'utf8')]));
  }
  if (format === 0 && !isBuiltinNonText(typeOid)) return (m) => (m === null ? null : Buffer.from(m, 'utf8'));
  return () => null;
}

/**
 * The text a value holds, for maskers and detectors; undefined when a binary value's encoding is
 * not understood (then masking sends NULL and detectors cannot look inside: see docs/masking.md).
 */
export function decoderFor(typeOid: number, format: 0 | 1): (value: Buffer) => string | undefined {
  if (format === 0) return (v) => v.toString('utf8');
  if (TEXT_LIKE.has(typeOid) || typeOid === JSON_OID) return (v) => v.toString('utf8');
  if (typeOid === JSONB_OID) return (v) => v.subarray(1).toString('utf8');
  switch (typeOid) {
    case 21:
      return (v) => (v.length === 2 ? String(v.readInt16BE(0)) : undefined);
    case 23:
      return (v) => (v.length === 4 ? String(v.readInt32BE(0)) : undefined);
    case 20:
      return (v) => (v.length === 8 ? v.readBigInt64BE(0).toString() : undefined);
    case 700:
      return (v) => (v.length === 4 ? String(v.readFloatBE(0)) : undefined);
    case 701:
      return (v) => (v.length === 8 ? String(v.readDoubleBE(0)) : undefined);
    case 1700:
      return decodeNumeric;
    default:
      return () => undefined;
  }
}

/** Binary numeric: ndigits, weight, sign, dscale (int16 each), then base-10000 digits. */
function decodeNumeric(v: Buffer): string | undefined {
  if (v.length < 8) return undefined;
  const ndigits = v.readInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  if (sign === 0xc000) return 'NaN';
  if (v.length !== 8 + ndigits * 2) return undefined;
  let int = '';
  let frac = '';
  for (let i = 0; i < ndigits; i++) {
    const d = String(v.readInt16BE(8 + i * 2)).padStart(4, '0');
    if (i <= weight) int += d;
    else frac += d;
  }
  if (weight >= ndigits) int += '0000'.repeat(weight - ndigits + 1);
  if (weight < -1) frac = '0000'.repeat(-weight - 1) + frac;
  int = int.replace(/^0+(?=\d)/, '') || '0';
  return `${sign === 0x4000 ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}
