// Character-class tests on UTF-16 code units, shared by the hand-rolled scanners. No RegExp: every
// scanner in this folder is a single forward pass (plus bounded look-around), so scan time is linear
// in the input whatever an agent stores in a column.

export const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
export const isUpper = (c: number): boolean => c >= 0x41 && c <= 0x5a;
export const isLower = (c: number): boolean => c >= 0x61 && c <= 0x7a;
export const isAlpha = (c: number): boolean => isUpper(c) || isLower(c);
export const isAlnum = (c: number): boolean => isDigit(c) || isAlpha(c);
export const isHexLower = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66);
export const isHex = (c: number): boolean => isHexLower(c) || (c >= 0x41 && c <= 0x46);
/** base64url alphabet (JWT segments). */
export const isB64Url = (c: number): boolean => isAlnum(c) || c === 0x2d || c === 0x5f;
/** A "word" character for boundaries: ASCII alphanumerics and `_`. */
export const isWord = (c: number): boolean => isAlnum(c) || c === 0x5f;

/** Unicode spaces outside ASCII (no-break, en/em, line/paragraph separators, ideographic, BOM). */
export const isSpaceLike = (c: number): boolean =>
  c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200b) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;

/** The code unit at i, or -1 outside the string (so boundary checks need no length tests). */
export function at(s: string, i: number): number {
  return i >= 0 && i < s.length ? s.charCodeAt(i) : -1;
}

/** A match: `text.slice(start, end)` is the detected value. */
export interface Range {
  start: number;
  end: number;
}
