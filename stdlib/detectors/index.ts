// Content detectors (declarations in stdlib/registry.ts). A detector scans one text value and
// returns the ranges that hold a sensitive value, so a masker can replace just those parts:
// `card 4111 1111 1111 1111 ok` with `redact` → `card [REDACTED] ok`.
//
// Every built-in detector is a hand-rolled linear scanner (no backtracking RegExp on untrusted
// data). `regex("...")` runs on RE2 (`@bufbuild/re2`), which only answers "does it match"; it
// cannot report where, so a regex detector reports the whole value and the masker replaces all of it.

import { RE2JS } from '@bufbuild/re2';
import type { Masker } from '../maskers/index.ts';
import { scanApiKeys } from './api-keys.ts';
import type { Range } from './chars.ts';
import { scanCreditCards, scanPhones, scanSsn } from './numbers.ts';
import { scanEmails, scanIbans, scanJwts } from './text.ts';

export type { Range };

export interface Detector {
  name: string;
  /** Ranges in UTF-16 indexes of `text`, sorted by start; never throws. */
  scan(text: string): Range[];
  /** A text with fewer ASCII digits than this cannot match (lets `detectAll` skip the scan). */
  minDigits?: number;
}

/** What a policy names: `regex("^x")` → `{ name: 'regex', args: ['^x'] }` (structurally `DetectorSpec`). */
export interface DetectorRef {
  name: string;
  args: readonly (string | number)[];
}

export type DetectorResult = { ok: true; detector: Detector } | { ok: false; code: 'unknown_detector' | 'bad_arguments'; message: string };

/** Fewest digits a match of each digit-shaped detector holds. */
const MIN_DIGITS: Record<string, number> = { credit_card: 12, us_ssn: 9, phone: 8, iban: 2 };

const BUILTIN: Record<string, (s: string) => Range[]> = {
  email: scanEmails,
  credit_card: scanCreditCards,
  us_ssn: scanSsn,
  phone: scanPhones,
  iban: scanIbans,
  jwt: scanJwts,
  api_key: scanApiKeys,
};

export const BUILTIN_DETECTORS: readonly string[] = Object.keys(BUILTIN);

export function createDetector(ref: DetectorRef): DetectorResult {
  const builtin = BUILTIN[ref.name];
  if (builtin !== undefined) {
    if (ref.args.length !== 0) return { ok: false, code: 'bad_arguments', message: `detector \`${ref.name}\` takes no arguments` };
    const minDigits = MIN_DIGITS[ref.name];
    return { ok: true, detector: minDigits === undefined ? { name: ref.name, scan: builtin } : { name: ref.name, scan: builtin, minDigits } };
  }
  if (ref.name === 'regex') {
    const pattern = ref.args[0];
    if (ref.args.length !== 1 || typeof pattern !== 'string') {
      return { ok: false, code: 'bad_arguments', message: 'detector `regex` takes one string: regex("pattern")' };
    }
    let re: RE2JS;
    try {
      re = RE2JS.compile(pattern);
    } catch (error) {
      return { ok: false, code: 'bad_arguments', message: `invalid RE2 pattern: ${error instanceof Error ? error.message : String(error)}` };
    }
    return {
      ok: true,
      detector: { name: 'regex', scan: (text) => (text.length > 0 && re.test(text) ? [{ start: 0, end: text.length }] : []) },
    };
  }
  return { ok: false, code: 'unknown_detector', message: `unknown detector \`${ref.name}\`` };
}

/** Ranges of any of the detectors, sorted and merged (overlapping or touching ranges become one). */
export function detectAll(detectors: readonly Detector[], text: string): Range[] {
  let all: Range[] = [];
  let digits = -1; // counted once, on first need, and only as far as the largest need
  for (const d of detectors) {
    if (d.minDigits !== undefined) {
      if (digits < 0) digits = countDigits(text, MAX_MIN_DIGITS);
      if (digits < d.minDigits) continue;
    }
    const found = d.scan(text);
    if (found.length > 0) all = all.length === 0 ? found : all.concat(found);
  }
  return mergeRanges(all);
}

const MAX_MIN_DIGITS = Math.max(...Object.values(MIN_DIGITS));

function countDigits(text: string, enough: number): number {
  let n = 0;
  for (let i = 0; i < text.length && n < enough; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) n++;
  }
  return n;
}

export function mergeRanges(ranges: Range[]): Range[] {
  if (ranges.length <= 1) return ranges;
  const sorted = [...ranges].sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Range[] = [{ ...sorted[0] }];
  for (let i = 1; i < sorted.length; i++) {
    const last = out[out.length - 1];
    const r = sorted[i];
    if (r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/**
 * Replace each range of `text` with the masker's output for it. A masker that answers NULL for any
 * part (the `null` masker) makes the whole value NULL: part of a value cannot be NULL.
 */
export function maskRanges(text: string, ranges: readonly Range[], masker: Masker): string | null {
  if (ranges.length === 0) return text;
  let out = '';
  let pos = 0;
  for (const r of ranges) {
    const masked = masker(text.slice(r.start, r.end));
    if (masked === null) return null;
    out += text.slice(pos, r.start) + masked;
    pos = r.end;
  }
  return out + text.slice(pos);
}
