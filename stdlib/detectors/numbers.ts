// Detectors for digit-shaped values: payment cards (Luhn + issuer prefix), US social security
// numbers (with the never-issued ranges excluded) and telephone numbers (E.164 and NANP formats).
// Each candidate starts at a digit (or `+`/`(`) that is not preceded by a word character and is
// examined over a bounded window, so scanning is linear.

import { at, isDigit, isWord, type Range } from './chars.ts';

// ---------------------------------------------------------------------------------------------
// Payment cards

/** Luhn checksum over a string of digits. */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 0x30;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes and lengths of the major networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
export function plausibleCard(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4') return n === 13 || n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19;
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;
  if (p2 === 36 || p2 === 38 || p2 === 39 || (p3 >= 300 && p3 <= 305)) return n >= 14 && n <= 19;
  if (p2 === 62) return n >= 16 && n <= 19;
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 12 && n <= 19; // Maestro
  return false;
}

/**
 * Digit groups joined by single separators from `seps` (e.g. `4111 1111-1111 1111`), starting at
 * `start`. Returns the digits and the end index; stops after `maxDigits + 1` digits.
 */
function digitRun(s: string, start: number, seps: string, maxDigits: number): { digits: string; end: number } {
  let digits = '';
  let i = start;
  let end = start;
  while (i < s.length && digits.length <= maxDigits) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) {
      digits += s[i];
      i++;
      end = i;
    } else if (seps.includes(s[i]) && isDigit(at(s, i + 1)) && digits.length > 0) {
      i++;
    } else break;
  }
  return { digits, end };
}

export function scanCreditCards(s: string): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Digit boundaries only (not word boundaries): `card4111111111111111` still holds a card.
    if (!isDigit(c) || isDigit(at(s, i - 1))) continue;
    const { digits, end } = digitRun(s, i, ' -', 19);
    if (digits.length >= 12 && digits.length <= 19 && !isDigit(at(s, end)) && plausibleCard(digits) && luhn(digits)) {
      out.push({ start: i, end });
      i = end;
      continue;
    }
    // Skip the rest of this digit run: a card cannot start in the middle of one.
    while (i + 1 < s.length && isDigit(s.charCodeAt(i + 1))) i++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// US social security numbers: AAA-GG-SSSS or AAA GG SSSS (same separator twice). Never issued:
// area 000, 666 and 900-999; group 00; serial 0000. Bare nine-digit runs are not flagged (too many
// identifiers look like that); mask such columns by name instead.

function digitsAt(s: string, i: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (!isDigit(at(s, i + k))) return false;
  return true;
}

export function validSsn(area: number, group: number, serial: number): boolean {
  return area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0;
}

export function scanSsn(s: string): Range[] {
  const out: Range[] = [];
  for (let i = 0; i + 11 <= s.length; i++) {
    if (!isDigit(s.charCodeAt(i)) || isDigit(at(s, i - 1)) || at(s, i - 1) === 0x2d) continue;
    const sep = at(s, i + 3);
    if ((sep !== 0x2d && sep !== 0x20) || at(s, i + 6) !== sep) continue;
    if (!digitsAt(s, i, 3) || !digitsAt(s, i + 4, 2) || !digitsAt(s, i + 7, 4)) continue;
    const after = at(s, i + 11);
    if (isDigit(after) || (after === 0x2d && isDigit(at(s, i + 12)))) continue;
    const area = Number(s.slice(i, i + 3));
    const group = Number(s.slice(i + 4, i + 6));
    const serial = Number(s.slice(i + 7, i + 11));
    if (validSsn(area, group, serial)) {
      out.push({ start: i, end: i + 11 });
      i += 10;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Telephone numbers.
// - E.164: `+` then 8 to 15 digits, groups separated by single spaces, dots, dashes or `(..)`.
// - NANP: `(NXX) NXX-XXXX`, `NXX-NXX-XXXX`, `NXX.NXX.XXXX`, `NXX NXX XXXX`, optionally with a
//   leading `1-`/`1 `/`1.`; N is 2-9. Bare ten-digit runs are not flagged (ids look like that).

const PHONE_SEPS = ' .-';

function scanE164(s: string, i: number): number {
  // s[i] === '+'
  let digits = 0;
  let j = i + 1;
  if (!isDigit(at(s, j)) || at(s, j) === 0x30) return -1;
  let end = -1;
  while (j < s.length && digits <= 15) {
    const c = s.charCodeAt(j);
    if (isDigit(c)) {
      digits++;
      j++;
      end = j;
    } else if ((PHONE_SEPS.includes(s[j]) || c === 0x28 || c === 0x29) && j + 1 < s.length) {
      const n = s.charCodeAt(j + 1);
      // One separator, or `) `/` (` pairs around an area code.
      if (isDigit(n)) j++;
      else if ((c === 0x29 && PHONE_SEPS.includes(s[j + 1]) && isDigit(at(s, j + 2))) || (c === 0x20 && n === 0x28 && isDigit(at(s, j + 2)))) j += 2;
      else break;
    } else break;
  }
  if (digits < 8 || digits > 15 || isWord(at(s, end))) return -1;
  return end;
}

function nxx(s: string, i: number): boolean {
  const c = at(s, i);
  return c >= 0x32 && c <= 0x39 && isDigit(at(s, i + 1)) && isDigit(at(s, i + 2));
}

/** NANP number starting exactly at i; returns the end index or -1. */
function scanNanp(s: string, i: number): number {
  let j = i;
  // Optional country code 1 with a separator.
  if (at(s, j) === 0x31 && PHONE_SEPS.includes(s[j + 1] ?? '\0') && (nxx(s, j + 2) || at(s, j + 2) === 0x28)) j += 2;
  let sep: number;
  if (at(s, j) === 0x28) {
    if (!nxx(s, j + 1) || at(s, j + 4) !== 0x29) return -1;
    j += 5;
    if (at(s, j) === 0x20 || at(s, j) === 0x2d || at(s, j) === 0x2e) j++;
    sep = -2; // after `(NXX)` the second separator may be `-`, `.` or ` `
  } else {
    if (!nxx(s, j)) return -1;
    sep = at(s, j + 3);
    if (!PHONE_SEPS.includes(String.fromCharCode(sep)) || sep < 0) return -1;
    j += 4;
  }
  if (!nxx(s, j)) return -1;
  const sep2 = at(s, j + 3);
  if (sep === -2 ? !PHONE_SEPS.includes(String.fromCharCode(sep2)) || sep2 < 0 : sep2 !== sep) return -1;
  j += 4;
  if (!digitsAt(s, j, 4)) return -1;
  j += 4;
  if (isWord(at(s, j)) || (at(s, j) === 0x2d && isDigit(at(s, j + 1)))) return -1;
  return j;
}

export function scanPhones(s: string): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x2b && c !== 0x28 && !isDigit(c)) continue;
    const prev = at(s, i - 1);
    if (isWord(prev) || prev === 0x2b || (isDigit(c) && (prev === 0x2d || prev === 0x2e))) continue;
    const end = c === 0x2b ? scanE164(s, i) : scanNanp(s, i);
    if (end > 0) {
      out.push({ start: i, end });
      i = end - 1;
    }
  }
  return out;
}
