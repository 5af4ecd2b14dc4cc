import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createDetector, detectAll, maskRanges, type Detector } from './index.ts';
import { luhn } from './numbers.ts';
import { ibanChecksumOk } from './text.ts';
import { redact, last4, toNull, email as emailMasker } from '../maskers/index.ts';

function det(name: string, ...args: string[]): Detector {
  const r = createDetector({ name, args });
  if (!r.ok) throw new Error(r.message);
  return r.detector;
}

/** The substrings a detector reports. */
const found = (name: string, text: string): string[] => det(name).scan(text).map((r) => text.slice(r.start, r.end));

/** Append the Luhn check digit. */
function withLuhn(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhn(body + d)) return body + d;
  throw new Error('unreachable');
}

/** A valid IBAN for a country and a numeric BBAN. */
function makeIban(cc: string, bban: string): string {
  const digits = (bban + cc + '00').replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  let rem = 0;
  for (const ch of digits) rem = (rem * 10 + Number(ch)) % 97;
  return cc + String(98 - rem).padStart(2, '0') + bban;
}

const digitsArb = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });
const filler = fc.string({ unit: fc.constantFrom(...'abcxyz ,;:!?()[]{}\n\t'), maxLength: 30 });

describe('credit_card', () => {
  it('finds Luhn-valid numbers of the major networks, compact or grouped, even glued to letters', () => {
    expect(found('credit_card', 'cc4111111111111111x')).toEqual(['4111111111111111']);
    expect(found('credit_card', 'card 4111111111111111 ok')).toEqual(['4111111111111111']);
    expect(found('credit_card', 'card 4111 1111 1111 1111.')).toEqual(['4111 1111 1111 1111']);
    expect(found('credit_card', 'amex 3782-822463-10005')).toEqual(['3782-822463-10005']);
    expect(found('credit_card', 'mc:5555555555554444,visa:4012888888881881')).toEqual(['5555555555554444', '4012888888881881']);
    expect(found('credit_card', 'order 1234 4111 1111 1111 1111')).toEqual(['4111 1111 1111 1111']);
  });

  it('ignores numbers that fail Luhn, are too long, or sit inside a longer digit run', () => {
    expect(found('credit_card', '4111111111111112')).toEqual([]);
    expect(found('credit_card', '41111111111111110')).toEqual([]);
    expect(found('credit_card', '94111111111111111')).toEqual([]);
    expect(found('credit_card', '1111111111111111')).toEqual([]); // passes Luhn, no issuer starts with 1
  });

  it('property: planted valid Visa numbers are found; random digits failing Luhn never are', () => {
    fc.assert(
      fc.property(digitsArb(14), filler, filler, (body, pre, post) => {
        const card = withLuhn('4' + body);
        const text = `${pre} ${card} ${post}`;
        expect(found('credit_card', text)).toContain(card);
        const bad = card.slice(0, -1) + String((Number(card.at(-1)) + 1) % 10);
        expect(found('credit_card', `${pre} ${bad} ${post}`)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('us_ssn', () => {
  it('finds valid numbers and excludes never-issued ranges', () => {
    expect(found('us_ssn', 'ssn: 123-45-6789.')).toEqual(['123-45-6789']);
    expect(found('us_ssn', 'ssn 123 45 6789')).toEqual(['123 45 6789']);
    for (const bad of ['000-12-3456', '666-12-3456', '900-12-3456', '999-12-3456', '123-00-4567', '123-45-0000', '123-45 6789', '1123-45-6789', '123-45-67890']) {
      expect(found('us_ssn', `x ${bad} y`), bad).toEqual([]);
    }
  });
});

describe('phone', () => {
  it('finds E.164 and common NANP formats', () => {
    for (const p of ['+14155552671', '+44 20 7946 0958', '+1 (415) 555-2671', '(415) 555-2671', '415-555-2671', '415.555.2671', '1-415-555-2671', '+33.1.42.68.53.00']) {
      expect(found('phone', `call ${p} now`), p).toEqual([p]);
    }
  });

  it('ignores short numbers, bare digit runs, invalid area codes and dates', () => {
    for (const t of ['+12345', '4155552671', '015-555-2671', '415-155-2671', '2024-01-02', 'v1.2.3', 'id 123-456']) {
      expect(found('phone', t), t).toEqual([]);
    }
  });
});

describe('email', () => {
  it('finds addresses inside text', () => {
    expect(found('email', 'to: Jane <jane.doe+x@mail.example.co.uk>, bob@ex.io.')).toEqual(['jane.doe+x@mail.example.co.uk', 'bob@ex.io']);
    expect(found('email', 'ü@bücher.de')).toEqual(['ü@bücher.de']);
  });

  it('ignores handles, bare @ and addresses without a real top-level domain', () => {
    for (const t of ['@user', 'a@b', 'user@localhost', 'a@1.2', 'x@.com', '@@@']) expect(found('email', t), t).toEqual([]);
  });

  it('property: generated addresses are found whole', () => {
    fc.assert(
      fc.property(fc.emailAddress(), filler, (addr, pre) => {
        const tld = addr.slice(addr.lastIndexOf('.') + 1);
        fc.pre(/^[a-z]{2,}$/i.test(tld) && !addr.includes('..') && !/^[.-]/.test(addr.split('@')[1]));
        const text = `${pre} ${addr} ${pre}`;
        expect(found('email', text).join(' ')).toContain(addr.split('@')[1]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('iban', () => {
  it('finds checksum-valid IBANs, compact or grouped, and rejects wrong checksums or lengths', () => {
    expect(found('iban', 'pay DE89370400440532013000 now')).toEqual(['DE89370400440532013000']);
    expect(found('iban', 'pay DE89 3704 0044 0532 0130 00 EUR')).toEqual(['DE89 3704 0044 0532 0130 00']);
    expect(found('iban', 'GB82 WEST 1234 5698 7654 32')).toEqual(['GB82 WEST 1234 5698 7654 32']);
    expect(found('iban', 'DE88370400440532013000')).toEqual([]);
    expect(found('iban', 'DE8937040044053201300')).toEqual([]);
    expect(found('iban', 'ZZ89370400440532013000')).toEqual([]);
  });

  it('property: generated IBANs are found; one changed digit is not', () => {
    fc.assert(
      fc.property(digitsArb(18), fc.integer({ min: 4, max: 21 }), (bban, pos) => {
        const iban = makeIban('DE', bban);
        expect(ibanChecksumOk(iban)).toBe(true);
        expect(found('iban', `iban: ${iban}`)).toEqual([iban]);
        const d = Number(iban[pos]);
        const changed = iban.slice(0, pos) + String((d + 1) % 10) + iban.slice(pos + 1);
        expect(found('iban', `iban: ${changed}`)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});

describe('jwt', () => {
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlX2hlcmU';
  it('finds compact JWS tokens, including unsigned ones', () => {
    expect(found('jwt', `Authorization: Bearer ${token}`)).toEqual([token]);
    expect(found('jwt', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).toEqual(['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']);
    expect(found('jwt', 'eyJhbGciOiJIUzI1NiJ9 only a header')).toEqual([]);
    expect(found('jwt', 'xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.sig')).toEqual([]);
  });
});

describe('api_key', () => {
  const keys = [
    'AKIAIOSFODNN7EXAMPLE',
    'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8',
    'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz',
    'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
    'sk_live_' + '4eC39HqLyjWDarjtT1zdp7dc',
    'AIzaSyD-1234567890abcdefghijklmnopqrstu',
    'sk-proj-' + 'abcDEF123_-ghiJKL456mnoPQR789',
    'sk-' + 'A'.repeat(20) + '1234567890ab',
    'glpat-' + 'xYz123AbC456dEf789gH',
    'npm_' + 'a'.repeat(36),
  ];
  it('finds common vendor formats', () => {
    for (const k of keys) expect(found('api_key', `key=${k};`), k).toEqual([k]);
  });

  it('finds PEM private keys', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----';
    expect(found('api_key', `x ${pem} y`)).toEqual([pem]);
    expect(found('api_key', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----')).toEqual([]);
  });

  it('ignores prefixes without a body of the right shape', () => {
    for (const t of ['AKIA123', 'ghp_short', 'task-manager', 'sk-this-is-a-product-slug-and-not-a-key', 'XAKIAIOSFODNN7EXAMPLE']) {
      expect(found('api_key', t), t).toEqual([]);
    }
  });
});

describe('regex', () => {
  it('runs RE2 and reports the whole value (RE2 here only answers whether it matches)', () => {
    const d = det('regex', 'ORD-[0-9]{5}');
    expect(d.scan('order ORD-12345 shipped')).toEqual([{ start: 0, end: 23 }]);
    expect(d.scan('order 12345')).toEqual([]);
  });

  it('rejects patterns RE2 cannot run in linear time', () => {
    expect(createDetector({ name: 'regex', args: ['(a)\\1'] })).toMatchObject({ ok: false, code: 'bad_arguments' });
    expect(createDetector({ name: 'regex', args: [] })).toMatchObject({ ok: false, code: 'bad_arguments' });
    expect(createDetector({ name: 'nope', args: [] })).toMatchObject({ ok: false, code: 'unknown_detector' });
  });
});

describe('masking detected ranges', () => {
  const all = ['email', 'credit_card', 'us_ssn', 'phone', 'iban', 'jwt', 'api_key'].map((n) => det(n));

  it('replaces only the matched parts', () => {
    const text = 'jane@example.com paid with 4111 1111 1111 1111, ssn 123-45-6789';
    const ranges = detectAll(all, text);
    expect(maskRanges(text, ranges, redact)).toBe('[REDACTED] paid with [REDACTED], ssn [REDACTED]');
    expect(maskRanges(text, ranges, last4)).toBe('************.com paid with ***************1111, ssn *******6789');
    expect(maskRanges(text, detectAll([det('email')], text), emailMasker)).toBe('j***@example.com paid with 4111 1111 1111 1111, ssn 123-45-6789');
    expect(maskRanges(text, ranges, toNull)).toBeNull();
    expect(maskRanges('nothing here', detectAll(all, 'nothing here'), toNull)).toBe('nothing here');
  });

  it('property: detectors never throw and ranges are sorted, in bounds, non-empty', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom(...'0123456789 -+().@eyJ_ABCDEFGHIKZsk') })), (text) => {
        for (const d of all) {
          const rs = d.scan(text);
          let last = -1;
          for (const r of rs) {
            expect(r.start).toBeGreaterThanOrEqual(Math.max(0, last));
            expect(r.end).toBeGreaterThan(r.start);
            expect(r.end).toBeLessThanOrEqual(text.length);
            last = r.end;
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: redacting detected values removes every planted card and SSN', () => {
    fc.assert(
      fc.property(digitsArb(14), fc.integer({ min: 1, max: 665 }), filler, (body, area, pre) => {
        const card = withLuhn('4' + body);
        const ssn = `${String(area).padStart(3, '0')}-12-3456`;
        const text = `${pre}${card} / ${ssn}${pre}`;
        const masked = maskRanges(text, detectAll(all, text), redact) as string;
        expect(masked).not.toContain(card);
        expect(masked).not.toContain(ssn);
      }),
      { numRuns: 300 },
    );
  });

  // No wall-clock assertion (timing belongs in bench/): a quadratic or backtracking scanner needs
  // ~10^10 steps on these 200 kB inputs and runs into the test timeout instead.
  it('scans adversarial inputs without blowing up', () => {
    const inputs = ['@'.repeat(200_000), 'a@'.repeat(100_000), '4'.repeat(200_000), '4 '.repeat(100_000), 'eyJ.'.repeat(50_000), 'AKIA'.repeat(50_000), '+1'.repeat(100_000), 'DE89 '.repeat(40_000)];
    for (const text of inputs) {
      for (const d of all) {
        for (const [start, end] of d.scan(text).map((r) => [r.start, r.end])) {
          expect(start >= 0 && end <= text.length && start < end, text.slice(0, 8)).toBe(true);
        }
      }
    }
  });
});
