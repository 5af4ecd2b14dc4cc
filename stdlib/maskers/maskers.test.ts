import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { REDACTED, createMasker, email, hash, last4, partial, redact, strictest, toNull, type Masker } from './index.ts';

const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.emailAddress(),
  fc.string({ unit: fc.constantFrom('@', '.', '*', 'a', '\ud83d', '\ude00', ' ') }),
);

const all: [string, Masker][] = [
  ['redact', redact],
  ['null', toNull],
  ['email', email],
  ['last4', last4],
  ['partial(2)', partial(2)],
  ['hash', hash('k')],
];

describe('maskers', () => {
  it('email keeps the domain and the first character', () => {
    expect(email('jane.doe@example.com')).toBe('j***@example.com');
    expect(email('ü-ser@bücher.de')).toBe('ü***@bücher.de');
    expect(email('😀x@mail.example.org')).toBe('😀***@mail.example.org');
  });

  it('email fully redacts what is not an address', () => {
    for (const v of ['', 'plain', '@example.com', 'a@', 'a@localhost', 'a b@example.com', 'a@ex..com', 'a@example.']) {
      expect(email(v)).toBe(REDACTED);
    }
  });

  it('last4 keeps four code points and hides short values', () => {
    expect(last4('4111111111111111')).toBe('************1111');
    expect(last4('1234')).toBe('****');
    expect(last4('')).toBe('');
    expect(last4('ab😀cde')).toBe('**😀cde');
    expect(last4('x😀😀😀😀')).toBe('*😀😀😀😀');
  });

  it('partial(n) keeps the first n code points', () => {
    expect(partial(3)('Jonathan')).toBe('Jon*****');
    expect(partial(3)('Jon')).toBe('***');
    expect(partial(0)('abc')).toBe('***');
    expect(partial(1)('😀bc')).toBe('😀**');
  });

  it('hash is keyed, stable and hex', () => {
    const h = hash('secret');
    expect(h('alice@example.com')).toMatch(/^h:[0-9a-f]{64}$/);
    expect(h('alice@example.com')).toBe(h('alice@example.com'));
    expect(h('alice@example.com')).not.toBe(hash('other')('alice@example.com'));
    expect(h('a')).not.toBe(h('b'));
  });

  it('createMasker checks names and arguments', () => {
    expect(createMasker({ name: 'partial', args: [2] }).ok).toBe(true);
    expect(createMasker({ name: 'partial', args: [] })).toMatchObject({ ok: false, code: 'bad_arguments' });
    expect(createMasker({ name: 'partial', args: [-1] })).toMatchObject({ ok: false, code: 'bad_arguments' });
    expect(createMasker({ name: 'redact', args: [1] })).toMatchObject({ ok: false, code: 'bad_arguments' });
    expect(createMasker({ name: 'hash', args: [] })).toMatchObject({ ok: false, code: 'no_hash_key' });
    expect(createMasker({ name: 'hash', args: [] }, { hashKey: 'k' }).ok).toBe(true);
    expect(createMasker({ name: 'rot13', args: [] })).toMatchObject({ ok: false, code: 'unknown_masker' });
  });

  it('strictest combines two rules on one column without revealing more', () => {
    expect(strictest({ name: 'email', args: [] }, { name: 'null', args: [] }).name).toBe('null');
    expect(strictest({ name: 'hash', args: [] }, { name: 'last4', args: [] }).name).toBe('hash');
    expect(strictest({ name: 'email', args: [] }, { name: 'last4', args: [] }).name).toBe('redact');
    expect(strictest({ name: 'partial', args: [1] }, { name: 'partial', args: [2] }).name).toBe('redact');
    expect(strictest({ name: 'last4', args: [] }, { name: 'last4', args: [] }).name).toBe('last4');
  });

  it('every masker is total over any string (never throws, returns a string or null)', () => {
    fc.assert(
      fc.property(anyString, (v) => {
        for (const [, m] of all) {
          const out = m(v);
          expect(out === null || typeof out === 'string').toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('handles very long values', () => {
    const big = 'x'.repeat(2_000_000) + '@example.com';
    expect(email(big)).toBe('x***@example.com');
    expect(last4(big)!.endsWith('.com')).toBe(true);
    expect(last4(big)!.length).toBe(big.length);
    expect(hash('k')(big)).toMatch(/^h:/);
  });

  it('every masker except null is idempotent', () => {
    fc.assert(
      fc.property(anyString, (v) => {
        for (const [name, m] of all) {
          if (name === 'null') continue;
          const once = m(v) as string;
          expect(m(once), name).toBe(once);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('no masker except hash-of-a-digest returns a long input unchanged', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6 }).filter((s) => !s.includes('*') && s !== REDACTED), (v) => {
        for (const [name, m] of all) expect(m(v), name).not.toBe(v);
      }),
      { numRuns: 300 },
    );
  });
});

describe('ASCII byte fast paths', async () => {
  const { asciiMasker, isAscii } = await import('./ascii.ts');
  const refs = [
    { name: 'redact', args: [] },
    { name: 'null', args: [] },
    { name: 'email', args: [] },
    { name: 'last4', args: [] },
    { name: 'partial', args: [3] },
    { name: 'hash', args: [] },
  ];
  const ascii = fc.oneof(
    fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) }),
    fc.emailAddress(),
    fc.string({ unit: fc.constantFrom('@', '.', ' ', 'a', '*', '\t', 'h', ':', '0') }),
  );

  it('give exactly the bytes of the string maskers on every ASCII input', () => {
    fc.assert(
      fc.property(ascii, (s) => {
        const bytes = Buffer.from(s, 'latin1');
        expect(isAscii(bytes)).toBe(true);
        for (const ref of refs) {
          const slow = createMasker(ref, { hashKey: 'k' });
          if (!slow.ok) throw new Error(slow.message);
          const fast = asciiMasker(ref, 'k')!;
          const want = slow.masker(s);
          const got = fast(bytes);
          expect(got === null ? null : got.toString('latin1'), `${ref.name}(${JSON.stringify(s)})`).toBe(want);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('isAscii rejects any byte of 0x80 or more', () => {
    expect(isAscii(Buffer.from('abc'))).toBe(true);
    expect(isAscii(Buffer.from('ab€'))).toBe(false);
  });
});
