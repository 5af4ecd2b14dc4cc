import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decoderFor, encoderFor, isRawText } from './values.ts';

/** Binary numeric as PostgreSQL sends it (numeric_send), for a decimal string. */
function numericSend(text: string): Buffer {
  const neg = text.startsWith('-');
  const [intPart, fracPart = ''] = text.replace('-', '').split('.');
  const intDigits = intPart.replace(/^0+/, '');
  const padInt = intDigits.padStart(Math.ceil(intDigits.length / 4) * 4, '0');
  const padFrac = fracPart.padEnd(Math.ceil(fracPart.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < padInt.length; i += 4) groups.push(Number(padInt.slice(i, i + 4)));
  const weight = groups.length - 1;
  for (let i = 0; i < padFrac.length; i += 4) groups.push(Number(padFrac.slice(i, i + 4)));
  const b = Buffer.alloc(8 + groups.length * 2);
  b.writeInt16BE(groups.length, 0);
  b.writeInt16BE(groups.length === 0 ? 0 : weight, 2);
  b.writeUInt16BE(neg ? 0x4000 : 0, 4);
  b.writeInt16BE(fracPart.length, 6);
  groups.forEach((g, i) => b.writeInt16BE(g, 8 + i * 2));
  return b;
}

describe('masked value encoding', () => {
  it('sends masked text as UTF-8 for text-like types in both formats', () => {
    for (const oid of [25, 1043, 1042, 19]) {
      expect(encoderFor(oid, 0)('j***@x.io')?.toString()).toBe('j***@x.io');
      expect(encoderFor(oid, 1)('j***@x.io')?.toString()).toBe('j***@x.io');
      expect(isRawText(oid, 1)).toBe(true);
    }
  });

  it('sends a JSON string for json and jsonb (binary jsonb with its version byte)', () => {
    expect(encoderFor(114, 0)('[REDACTED]')?.toString()).toBe('"[REDACTED]"');
    expect(encoderFor(3802, 0)('a"b')?.toString()).toBe('"a\\"b"');
    expect([...encoderFor(3802, 1)('x')!]).toEqual([1, ...Buffer.from('"x"')]);
  });

  it('sends NULL for built-in non-text types, in both formats', () => {
    for (const oid of [23, 20, 1700, 1082, 2950, 17, 16, 1009]) {
      expect(encoderFor(oid, 0)('[REDACTED]')).toBeNull();
      expect(encoderFor(oid, 1)('[REDACTED]')).toBeNull();
    }
  });

  it('treats user-defined types (citext, enums, domains) as text in text format only', () => {
    expect(encoderFor(70000, 0)('x')?.toString()).toBe('x');
    expect(encoderFor(70000, 1)('x')).toBeNull();
  });

  it('decodes binary integers, floats and numerics to the digits detectors look for', () => {
    const i8 = Buffer.alloc(8);
    i8.writeBigInt64BE(4111111111111111n);
    expect(decoderFor(20, 1)(i8)).toBe('4111111111111111');
    const f8 = Buffer.alloc(8);
    f8.writeDoubleBE(4111111111111111);
    expect(decoderFor(701, 1)(f8)).toBe('4111111111111111');
    expect(decoderFor(17, 1)(Buffer.from('x'))).toBeUndefined();
  });

  it('property: binary numeric decodes to the value PostgreSQL would print', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 12 }), (n, scale) => {
        const abs = (n < 0n ? -n : n).toString().padStart(scale + 1, '0');
        const text = `${n < 0n ? '-' : ''}${scale === 0 ? abs : `${abs.slice(0, abs.length - scale)}.${abs.slice(abs.length - scale)}`}`;
        const trimmed = text.replace(/^(-?)0+(?=\d)/, '$1');
        const got = decoderFor(1700, 1)(numericSend(trimmed));
        expect(got).toMatch(/^-?\d+(\.\d+)?$/);
        // Same value: digits × 10^scale cross-multiplied (trailing zeros of a base-10000 group may be printed).
        const [i, f = ''] = got!.replace('-', '').split('.');
        const decoded = BigInt(i + f) * (got!.startsWith('-') ? -1n : 1n);
        expect(decoded * 10n ** BigInt(scale)).toBe(n * 10n ** BigInt(f.length));
      }),
      { numRuns: 300 },
    );
  });
});
