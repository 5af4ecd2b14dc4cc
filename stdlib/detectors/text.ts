// Detectors for text-shaped values: e-mail addresses, IBANs (country length + mod-97 checksum) and
// JSON Web Tokens. Candidates are found with indexOf or at word starts; each is examined over a
// window bounded by the next separator, so every character is visited a bounded number of times.

import { at, isAlnum, isAlpha, isB64Url, isDigit, isSpaceLike, isUpper, isWord, type Range } from './chars.ts';

// ---------------------------------------------------------------------------------------------
// E-mail addresses: local@domain.tld. Local part: ASCII letters, digits and `.!#$%&'*+/=?^_\`{|}~-`,
// or any non-ASCII character (internationalised addresses); domain: labels of letters, digits,
// `-` or non-ASCII, at least one dot, a top-level label of two or more letters.

const LOCAL_PUNCT = ".!#$%&'*+/=?^_`{|}~-";

function isLocal(c: number): boolean {
  return isAlnum(c) || (c < 0x80 ? c >= 0x21 && LOCAL_PUNCT.includes(String.fromCharCode(c)) : !isSpaceLike(c));
}

function isDomainChar(c: number): boolean {
  return isAlnum(c) || c === 0x2d || c === 0x2e || (c >= 0x80 && !isSpaceLike(c));
}

export function scanEmails(s: string): Range[] {
  const out: Range[] = [];
  let from = 0;
  for (;;) {
    const atSign = s.indexOf('@', from);
    if (atSign < 0) break;
    from = atSign + 1;
    let start = atSign;
    while (start > 0 && isLocal(s.charCodeAt(start - 1))) start--;
    while (start < atSign && s.charCodeAt(start) === 0x2e) start++; // no leading dot
    if (start === atSign) continue;
    let end = atSign + 1;
    while (end < s.length && isDomainChar(s.charCodeAt(end))) end++;
    // Trailing dots and dashes belong to the sentence, not the domain.
    while (end > atSign + 1 && (s.charCodeAt(end - 1) === 0x2e || s.charCodeAt(end - 1) === 0x2d)) end--;
    const domain = s.slice(atSign + 1, end);
    const lastDot = domain.lastIndexOf('.');
    if (lastDot <= 0 || domain.includes('..') || domain.startsWith('-')) continue;
    const tld = domain.slice(lastDot + 1);
    if (tld.length < 2 || !allLettersOrIdn(tld)) continue;
    out.push({ start, end });
    from = end;
  }
  return out;
}

function allLettersOrIdn(tld: string): boolean {
  for (let i = 0; i < tld.length; i++) {
    const c = tld.charCodeAt(i);
    if (!isAlpha(c) && c < 0x80 && !(tld.startsWith('xn--') && (isDigit(c) || c === 0x2d))) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// IBAN: CC + 2 check digits + BBAN, compact or in groups of four separated by single spaces.
// The length must be the registered length of the country (SWIFT IBAN registry) and the mod-97
// checksum must be 1. Countries not in the table are not flagged.

const IBAN_LENGTHS: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** ISO 13616 mod-97 check over a compact, upper-case IBAN. */
export function ibanChecksumOk(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (isDigit(c)) rem = (rem * 10 + (c - 0x30)) % 97;
    else if (isUpper(c)) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

function upper(c: number): number {
  return c >= 0x61 && c <= 0x7a ? c - 32 : c;
}

/** The IBAN starting at i, or -1. */
function ibanAt(s: string, i: number): number {
  // Cheapest tests first: most words are not followed by two digits in positions 2-3.
  if (!isDigit(at(s, i + 2)) || !isDigit(at(s, i + 3))) return -1;
  const c0 = upper(at(s, i));
  const c1 = upper(at(s, i + 1));
  if (!isUpper(c0) || !isUpper(c1)) return -1;
  const want = IBAN_LENGTHS[String.fromCharCode(c0, c1)];
  if (want === undefined) return -1;
  let compact = String.fromCharCode(c0, c1);
  let j = i + 2;
  while (compact.length < want && j < s.length) {
    const c = s.charCodeAt(j);
    if (isAlnum(c)) {
      compact += String.fromCharCode(upper(c));
      j++;
    } else if (c === 0x20 && (compact.length % 4 === 0) && isAlnum(at(s, j + 1))) {
      j++; // group separator: only between groups of four
    } else break;
  }
  if (compact.length !== want || isAlnum(at(s, j))) return -1;
  return ibanChecksumOk(compact) ? j : -1;
}

export function scanIbans(s: string): Range[] {
  const out: Range[] = [];
  for (let i = 0; i + 15 <= s.length; i++) {
    if (!isAlpha(s.charCodeAt(i)) || isWord(at(s, i - 1))) continue;
    const end = ibanAt(s, i);
    if (end > 0) {
      out.push({ start: i, end });
      i = end - 1;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JWT (JWS compact): `eyJ` + base64url header, `.`, base64url payload, `.`, base64url signature
// (empty for `alg: none`). Five-part JWEs start the same way and are caught by their first three parts.

export function scanJwts(s: string): Range[] {
  const out: Range[] = [];
  let from = 0;
  for (;;) {
    const start = s.indexOf('eyJ', from);
    if (start < 0) break;
    from = start + 3;
    if (isB64Url(at(s, start - 1))) continue;
    let j = start;
    while (isB64Url(at(s, j))) j++;
    if (j - start < 10 || at(s, j) !== 0x2e) continue;
    const p = ++j;
    while (isB64Url(at(s, j))) j++;
    if (j - p < 2 || at(s, j) !== 0x2e) continue;
    j++;
    while (isB64Url(at(s, j))) j++;
    out.push({ start, end: j });
    from = j;
  }
  return out;
}
