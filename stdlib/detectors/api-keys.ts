// Well-known secret formats: a vendor prefix followed by a body of a known alphabet and length.
// Candidates are checked only where a word starts (the previous character is not a word character),
// with a table lookup on the first character, so scanning is linear.

import { at, isAlnum, isB64Url, isDigit, isHexLower, isUpper, isWord, type Range } from './chars.ts';

interface KeyFormat {
  /** Human name, for docs and tests. */
  vendor: string;
  prefixes: string[];
  body: (c: number) => boolean;
  min: number;
  /** Exact body length when the format fixes it. */
  max?: number;
}

const upperDigit = (c: number): boolean => isUpper(c) || isDigit(c);
const b64UrlDot = (c: number): boolean => isB64Url(c) || c === 0x2e;
const letters = (c: number): boolean => isAlnum(c) && !isDigit(c);

export const KEY_FORMATS: readonly KeyFormat[] = [
  { vendor: 'AWS access key id', prefixes: ['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA', 'APKA', 'ABIA', 'ACCA'], body: upperDigit, min: 16, max: 16 },
  { vendor: 'GitHub token', prefixes: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'], body: isAlnum, min: 36, max: 255 },
  { vendor: 'GitHub fine-grained token', prefixes: ['github_pat_'], body: isWord, min: 22, max: 255 },
  { vendor: 'GitLab token', prefixes: ['glpat-', 'gldt-', 'glrt-'], body: isB64Url, min: 20, max: 255 },
  { vendor: 'Slack token', prefixes: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-', 'xoxe-', 'xoxe.xoxp-', 'xapp-'], body: isB64Url, min: 10, max: 255 },
  { vendor: 'Slack webhook', prefixes: ['https://hooks.slack.com/services/'], body: (c) => isAlnum(c) || c === 0x2f, min: 20, max: 255 },
  { vendor: 'Stripe secret key', prefixes: ['sk_live_', 'rk_live_', 'sk_test_', 'rk_test_', 'whsec_'], body: isAlnum, min: 16, max: 255 },
  { vendor: 'Google API key', prefixes: ['AIza'], body: isB64Url, min: 35, max: 35 },
  { vendor: 'Google OAuth token', prefixes: ['ya29.'], body: isB64Url, min: 20, max: 2048 },
  { vendor: 'Google OAuth client secret', prefixes: ['GOCSPX-'], body: isB64Url, min: 24, max: 64 },
  { vendor: 'Anthropic / OpenAI project key', prefixes: ['sk-ant-', 'sk-proj-', 'sk-svcacct-', 'sk-admin-'], body: isB64Url, min: 20, max: 512 },
  { vendor: 'OpenAI key', prefixes: ['sk-'], body: isAlnum, min: 32, max: 255 },
  { vendor: 'npm token', prefixes: ['npm_'], body: isAlnum, min: 36, max: 36 },
  { vendor: 'PyPI token', prefixes: ['pypi-AgEIcHlwaS5vcmc'], body: isB64Url, min: 50, max: 512 },
  { vendor: 'SendGrid key', prefixes: ['SG.'], body: b64UrlDot, min: 60, max: 80 },
  { vendor: 'Hugging Face token', prefixes: ['hf_'], body: letters, min: 30, max: 64 },
  { vendor: 'Shopify token', prefixes: ['shpat_', 'shpss_', 'shpca_', 'shppa_'], body: isHexLower, min: 32, max: 32 },
  { vendor: 'DigitalOcean token', prefixes: ['dop_v1_', 'doo_v1_', 'dor_v1_'], body: isHexLower, min: 64, max: 64 },
  { vendor: 'Twilio API key', prefixes: ['SK'], body: isHexLower, min: 32, max: 32 },
  { vendor: 'Mailgun key', prefixes: ['key-'], body: isHexLower, min: 32, max: 32 },
  { vendor: 'Square token', prefixes: ['sq0atp-', 'sq0csp-', 'EAAA'], body: isB64Url, min: 22, max: 100 },
  { vendor: 'Linear key', prefixes: ['lin_api_'], body: isAlnum, min: 32, max: 64 },
  { vendor: 'Atlassian token', prefixes: ['ATATT3'], body: (c) => isB64Url(c) || c === 0x3d, min: 50, max: 512 },
];

interface Candidate {
  prefix: string;
  format: KeyFormat;
}

/** Candidates by first character code (all prefixes are ASCII), longest prefix first (so `sk-proj-` wins over `sk-`). */
const BY_FIRST: (Candidate[] | undefined)[] = (() => {
  const table: (Candidate[] | undefined)[] = new Array(128).fill(undefined);
  for (const format of KEY_FORMATS) {
    for (const prefix of format.prefixes) {
      const c = prefix.charCodeAt(0);
      (table[c] ??= []).push({ prefix, format });
    }
  }
  for (const list of table) list?.sort((a, b) => b.prefix.length - a.prefix.length);
  return table;
})();

const PEM_BEGIN = '-----BEGIN ';
const PEM_KEY = 'PRIVATE KEY-----';

/** A PEM private key block from `-----BEGIN ... PRIVATE KEY-----` to its END line (or the end of the text). */
function scanPem(s: string, out: Range[]): void {
  let from = 0;
  for (;;) {
    const start = s.indexOf(PEM_BEGIN, from);
    if (start < 0) return;
    const lineEnd = s.indexOf('-----', start + PEM_BEGIN.length);
    if (lineEnd < 0) return;
    const header = s.slice(start, lineEnd + 5);
    from = lineEnd + 5;
    if (!header.endsWith(PEM_KEY) || header.length > 64) continue;
    const endMarker = s.indexOf('-----END ', from);
    let end = s.length;
    if (endMarker >= 0) {
      const close = s.indexOf('-----', endMarker + 9);
      end = close >= 0 ? close + 5 : s.length;
    }
    out.push({ start, end });
    from = end;
  }
}

export function scanApiKeys(s: string): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128) continue;
    const list = BY_FIRST[c];
    if (list === undefined || isWord(at(s, i - 1))) continue;
    let matched = false;
    for (const { prefix, format } of list) {
      if (!s.startsWith(prefix, i)) continue;
      const bodyStart = i + prefix.length;
      const limit = (format.max ?? 4096) + 1;
      let j = bodyStart;
      while (j - bodyStart < limit && j < s.length && format.body(s.charCodeAt(j))) j++;
      const len = j - bodyStart;
      if (len < format.min || len > (format.max ?? 4096) || isWord(at(s, j))) continue;
      out.push({ start: i, end: j });
      i = j - 1;
      matched = true;
      break;
    }
    // Keys start at word starts only: skip the rest of this word.
    if (!matched) while (i + 1 < s.length && isWord(s.charCodeAt(i + 1))) i++;
  }
  if (s.includes(PEM_BEGIN)) {
    scanPem(s, out);
    out.sort((a, b) => a.start - b.start);
  }
  return out;
}
