import { describe, expect, it } from 'vitest';
import { boundParams, decodeBinary, MAX_SHOWN_VALUE } from './bind-params.ts';

const int4 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('boundParams', () => {
  it('shows text values as sent, NULL as null, and non-UTF-8 text as hex', () => {
    const r = boundParams([Buffer.from('42'), null, Buffer.from([0xff, 0xfe])], []);
    expect(r.params).toEqual([
      { value: '42', format: 'text' },
      { value: null, format: 'text' },
      { value: 'fffe', format: 'hex' },
    ]);
  });

  it('decodes binary values of known types and shows the rest as hex; one format code applies to all', () => {
    const r = boundParams([int4(-7), Buffer.from([1, 2])], [1], [23, 0]);
    expect(r.params).toEqual([
      { value: '-7', format: 'binary' },
      { value: '0102', format: 'hex' },
    ]);
  });

  it('binds the digest to the exact bytes, formats and types', () => {
    const base = boundParams([Buffer.from('1')], []).digest;
    expect(boundParams([Buffer.from('1')], []).digest).toBe(base);
    expect(boundParams([Buffer.from('2')], []).digest).not.toBe(base);
    expect(boundParams([Buffer.from('1')], [1]).digest).not.toBe(base);
    expect(boundParams([Buffer.from('1')], [], [23]).digest).not.toBe(base);
    // The server's description only changes how a value is shown, not what the approval is for.
    expect(boundParams([int4(1)], [1], [], [23]).params).toEqual([{ value: '1', format: 'binary' }]);
    expect(boundParams([int4(1)], [1], [], [23]).digest).toBe(boundParams([int4(1)], [1]).digest);
    expect(boundParams([null], []).digest).not.toBe(boundParams([Buffer.alloc(0)], []).digest);
    expect(boundParams([Buffer.from('1'), Buffer.from('')], []).digest).not.toBe(boundParams([Buffer.from(''), Buffer.from('1')], []).digest);
  });

  it('shows the start of a long value and says how long it is', () => {
    const r = boundParams([Buffer.from('x'.repeat(MAX_SHOWN_VALUE + 10))], []);
    expect(r.params[0]).toMatchObject({ format: 'text', truncated_from: MAX_SHOWN_VALUE + 10 });
    expect(r.params[0]!.value).toHaveLength(MAX_SHOWN_VALUE);
  });
});

describe('decodeBinary', () => {
  it('reads the common types as PostgreSQL prints them', () => {
    const i8 = Buffer.alloc(8);
    i8.writeBigInt64BE(-9007199254740993n);
    const f8 = Buffer.alloc(8);
    f8.writeDoubleBE(1.5);
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(-1n); // one microsecond before 2000-01-01
    const date = Buffer.alloc(4);
    date.writeInt32BE(366);
    // numeric -12345.6789: ndigits 3, weight 1, sign 0x4000, dscale 4, digits 1 2345 6789
    const num = Buffer.from([0, 3, 0, 1, 0x40, 0, 0, 4, 0, 1, 0x09, 0x29, 0x1a, 0x85]);
    const small = Buffer.from([0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1]); // 0.0001
    expect(decodeBinary(Buffer.from([1]), 16)).toEqual({ value: 'true', format: 'binary' });
    expect(decodeBinary(i8, 20).value).toBe('-9007199254740993');
    expect(decodeBinary(f8, 701).value).toBe('1.5');
    expect(decodeBinary(Buffer.from('héllo'), 25)).toEqual({ value: 'héllo', format: 'binary' });
    expect(decodeBinary(Buffer.from([1, ...Buffer.from('{"a":1}')]), 3802).value).toBe('{"a":1}');
    expect(decodeBinary(Buffer.from([0xde, 0xad]), 17).value).toBe('\\xdead');
    expect(decodeBinary(Buffer.from('00112233445566778899aabbccddeeff', 'hex'), 2950).value).toBe('00112233-4455-6677-8899-aabbccddeeff');
    expect(decodeBinary(ts, 1114).value).toBe('1999-12-31 23:59:59.999999');
    expect(decodeBinary(ts, 1184).value).toBe('1999-12-31 23:59:59.999999+00');
    expect(decodeBinary(date, 1082).value).toBe('2001-01-01');
    expect(decodeBinary(num, 1700).value).toBe('-12345.6789');
    expect(decodeBinary(small, 1700).value).toBe('0.0001');
  });

  it('falls back to hex when the bytes do not fit the type', () => {
    expect(decodeBinary(Buffer.from([1, 2, 3]), 23)).toEqual({ value: '010203', format: 'hex' });
    expect(decodeBinary(Buffer.from([1, 2]), 1700)).toEqual({ value: '0102', format: 'hex' });
    expect(decodeBinary(Buffer.from([1]), 999_999)).toEqual({ value: '01', format: 'hex' });
  });
});
