// Compares one regression test's output through the gateway with the direct run's and says why
// they differ. The diff is `diff -U0`'s (direct = "-", gateway = "+"); each hunk gets one reason.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Hunk {
  /** `@@ -a,b +c,d @@` header. */
  header: string;
  direct: string[];
  gateway: string[];
  reason: string;
}

export interface FileComparison {
  identical: boolean;
  /** Set when a side has no output at all (pg_regress did not run it, or psql could not start). */
  missing?: 'direct' | 'gateway';
  hunks: Hunk[];
  /** Reason → number of hunks. */
  reasons: Record<string, number>;
  /** The unified diff with context, for the report (truncated). */
  diff: string;
}

// Reasons, as shown in the report.
export const UNKNOWN_REFUSAL = 'hoop: refused unknown statement';
/** The differential's policies block nothing but `unknown`, with this default message. */
export const POLICY_BLOCK_MESSAGE = 'not allowed by the allow-all policy';
const PATH_REFUSAL = 'hoop: refused by the gateway whatever the policy';
export const R_UNKNOWN_SAME = 'hoop: refused unknown statement (parser message as PostgreSQL\'s, after "hoop:")';
export const R_UNKNOWN_OTHER = 'hoop: refused unknown statement (message differs from PostgreSQL\'s)';
export const R_UNKNOWN_RAN = 'hoop: refused unknown statement that PostgreSQL runs';
export const R_UNKNOWN_NOT_PARSE = 'hoop: refused unknown statement that parses (PostgreSQL fails it too, with its own message)';
export const R_CONSEQUENCE = 'hoop: refused unknown statement: later output differs (an earlier refused statement did not run)';
export const R_PREFIX = 'hoop: refused unknown statement ("hoop:" in psql\'s LAST_ERROR_MESSAGE or terse output)';
export const R_UNKNOWN_PATH = 'hoop: refused unknown statement that PostgreSQL runs: unqualified names after the gateway lost track of search_path';
export const R_UNKNOWN_PATH_FAILS = 'hoop: refused unknown statement (PostgreSQL fails it too): unqualified names after the gateway lost track of search_path';
export const R_PATH = 'hoop: refused by the gateway whatever the policy (search_path lost), a statement PostgreSQL runs';
export const R_PATH_FAILS = 'hoop: refused by the gateway whatever the policy (search_path lost), PostgreSQL fails it too';
export const R_PATH_CONSEQUENCE = 'hoop: refused by the gateway whatever the policy: later output differs';
export const R_GATEWAY_OTHER = 'hoop: refused by the gateway whatever the policy (other reason)';
export const R_HOOP_OTHER = 'hoop: other gateway error';
export const R_CONNECTION = 'connection-level difference';
export const R_NOTICE = 'notice/warning difference';
export const R_ERROR_FIELDS = 'error detail/hint/context/position difference';
export const R_ERROR_MESSAGE = 'error message difference';
export const R_RESULT = 'result difference';

const isError = (l: string) => /^(psql:\S+:\d+: )?ERROR: {2}/.test(l);
const isNotice = (l: string) => /^(psql:\S+:\d+: )?(NOTICE|WARNING|INFO|DEBUG\d?|LOG): {2}/.test(l);
const isErrorField = (l: string) => /^(DETAIL|HINT|CONTEXT|QUERY|LINE \d+|STATEMENT): /.test(l) || /^\s*\^\s*$/.test(l);
const CONNECTION = /FATAL: |connection to server|server closed the connection|could not connect|\\connect: |connection .* failed|terminating connection|no connection to the server|lost synchronization/;

/** Strips what the gateway adds to an unknown statement's refusal, to compare the rest with the server's. */
function withoutHoop(lines: string[]): string[] {
  return lines.filter((l) => !/^DETAIL: {2}not forwarded: /.test(l)).map((l) => l.replace(/^((?:psql:\S+:\d+: )?ERROR: {2})hoop: /, '$1'));
}

export function classifyHunk(direct: string[], gateway: string[]): string {
  const all = [...direct, ...gateway];
  const refusedUnknown = gateway.some((l) => /^DETAIL: {2}not forwarded: /.test(l));
  if (refusedUnknown) {
    if (!direct.some(isError)) return R_UNKNOWN_RAN;
    const stripped = withoutHoop(gateway);
    return stripped.length === direct.length && stripped.every((l, i) => l === direct[i]) ? R_UNKNOWN_SAME : R_UNKNOWN_OTHER;
  }
  // The differential's policies block nothing but `unknown`: any other block is the refusal of a
  // statement the classifier could not understand although it parses (e.g. a function body).
  // Refused by the gateway itself whatever the policy says (issue 14 item 17's search_path tracking).
  if (gateway.some((l) => /ERROR: {2}hoop: blocked: the gateway cannot tell which tables unqualified names mean/.test(l))) return direct.some(isError) ? R_PATH_FAILS : R_PATH;
  // Any other block that is not the policy's default: the gateway's own, whatever the policy.
  if (gateway.some((l) => /ERROR: {2}hoop: blocked: /.test(l) && !l.includes(POLICY_BLOCK_MESSAGE))) return R_GATEWAY_OTHER;
  if (gateway.some((l) => /ERROR: {2}hoop: blocked/.test(l))) {
    // The session's search_path became unknown to the gateway (issue 14 item 17's tracking).
    if (gateway.some((l) => /^DETAIL: .*cannot tell which tables unqualified names mean/.test(l))) return direct.some(isError) ? R_UNKNOWN_PATH_FAILS : R_UNKNOWN_PATH;
    return direct.some(isError) ? R_UNKNOWN_NOT_PARSE : R_UNKNOWN_RAN;
  }
  // The parser's message after "hoop:" where no DETAIL follows (psql's terse verbosity, :LAST_ERROR_MESSAGE).
  if (gateway.length === direct.length && gateway.some((l) => l.includes('hoop: ')) && gateway.every((l, i) => l.replace(/hoop: /, '') === direct[i])) return R_PREFIX;
  if (gateway.some((l) => /(ERROR|FATAL|WARNING|NOTICE): {2}hoop: /.test(l))) return R_HOOP_OTHER;
  if (all.some((l) => CONNECTION.test(l))) return R_CONNECTION;
  if (all.every((l) => isNotice(l) || (isErrorField(l) && !all.some(isError)))) return R_NOTICE;
  if (all.every(isErrorField)) return R_ERROR_FIELDS;
  if (all.every((l) => isError(l) || isErrorField(l))) return R_ERROR_MESSAGE;
  return R_RESULT;
}

/** Parses `diff -U0` output into hunks, merging hunks at most `gap` unchanged lines apart. */
export function parseHunks(diff: string, gap = 2): { header: string; directStart: number; direct: string[]; gatewayStart: number; gateway: string[] }[] {
  type Raw = { header: string; directStart: number; direct: string[]; gatewayStart: number; gateway: string[] };
  const raw: Raw[] = [];
  let cur: Raw | undefined;
  for (const line of diff.split('\n')) {
    const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (m) {
      // With -U0 an empty side's start is the line before the insertion point.
      const dLen = m[2] === undefined ? 1 : Number(m[2]);
      const gLen = m[4] === undefined ? 1 : Number(m[4]);
      cur = { header: line, directStart: Number(m[1]) + (dLen === 0 ? 1 : 0), direct: [], gatewayStart: Number(m[3]) + (gLen === 0 ? 1 : 0), gateway: [] };
      raw.push(cur);
    } else if (!cur || line.startsWith('--- ') || line.startsWith('+++ ')) continue;
    else if (line.startsWith('-')) cur.direct.push(line.slice(1));
    else if (line.startsWith('+')) cur.gateway.push(line.slice(1));
  }
  return raw.reduce<Raw[]>((acc, h) => {
    const prev = acc[acc.length - 1];
    if (prev) {
      const between = h.directStart - (prev.directStart + prev.direct.length);
      if (between >= 0 && between <= gap && h.gatewayStart - (prev.gatewayStart + prev.gateway.length) === between) {
        // The unchanged lines between the two belong to both sides.
        return (acc[acc.length - 1] = { ...prev, direct: [...prev.direct, ...Array<string>(between).fill('\u0000'), ...h.direct], gateway: [...prev.gateway, ...Array<string>(between).fill('\u0000'), ...h.gateway] }), acc;
      }
    }
    acc.push(h);
    return acc;
  }, []);
}

function diffFiles(a: string, b: string, context: number): string {
  const r = spawnSync('diff', [`-U${context}`, a, b], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status === 0) return '';
  if (r.status === 1) return r.stdout;
  throw new Error(`diff failed: ${r.stderr}`);
}

const REFUSAL_DETAIL = /^DETAIL: {2}not forwarded: /;
const HOOP_ERROR = /^((?:psql:\S+:\d+: )?ERROR: {2})hoop: /;

/**
 * The gateway's output as the server would have printed it if every refusal of an unknown
 * statement carried exactly the server's error: "hoop: " dropped from the ERROR line and the
 * gateway's DETAIL line removed. Returns the lines and which of them were refusals.
 */
export function normalizeRefusals(lines: string[]): { lines: string[]; refusalLines: Set<number>; refusals: number } {
  const out: string[] = [];
  const refusalLines = new Set<number>();
  const drop = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    if (!HOOP_ERROR.test(lines[i]!)) continue;
    // ERROR, then the server-style LINE/caret lines, then the gateway's DETAIL.
    let j = i + 1;
    while (j < lines.length && j - i <= 8 && !REFUSAL_DETAIL.test(lines[j]!) && !/^(?:psql:\S+:\d+: )?[A-Z]+: {2}/.test(lines[j]!)) j++;
    if (j < lines.length && REFUSAL_DETAIL.test(lines[j]!)) {
      refusalLines.add(i);
      drop.add(j);
    } else if (j + 1 < lines.length && /^DETAIL: {2}/.test(lines[j]!) && /^not forwarded: /.test(lines[j + 1]!)) {
      // The server's own DETAIL, then the gateway's note on the next line.
      refusalLines.add(i);
      drop.add(j + 1);
    }
  }
  const index = new Map<number, number>();
  lines.forEach((l, i) => {
    if (drop.has(i)) return;
    index.set(i, out.length);
    out.push(refusalLines.has(i) ? l.replace(HOOP_ERROR, '$1') : l);
  });
  return { lines: out, refusalLines: new Set([...refusalLines].map((i) => index.get(i)!)), refusals: refusalLines.size };
}

/** Whether 1-based line `line` is a refusal's ERROR line or one of the few (LINE, caret, DETAIL) after it. */
function followsRefusal(refusalLines: Set<number>, line: number): boolean {
  for (const r of refusalLines) if (line - (r + 1) >= 0 && line - (r + 1) <= 3) return true;
  return false;
}

export const R_UNKNOWN_NO_HINT = 'hoop: refused unknown statement (parser message as PostgreSQL\'s, but its DETAIL, HINT or position differs)';

/** Where each run's pg_regress output directory appears (abs_builddir, in COPY file names): replaced before comparing. */
export interface Sides {
  directFile: string;
  gatewayFile: string;
  directOutputDir: string;
  gatewayOutputDir: string;
  /** A directory for the normalized copies. */
  scratch: string;
}

export function compareFiles(sides: Sides, maxDiffChars = 20_000): FileComparison {
  const { directFile, gatewayFile } = sides;
  if (!existsSync(directFile)) return { identical: false, missing: 'direct', hunks: [], reasons: { 'no direct output': 1 }, diff: '' };
  if (!existsSync(gatewayFile)) return { identical: false, missing: 'gateway', hunks: [], reasons: { 'no gateway output': 1 }, diff: '' };
  const d = join(sides.scratch, 'direct.out');
  const g = join(sides.scratch, 'gateway.out');
  const g2 = join(sides.scratch, 'gateway.normalized.out');
  writeFileSync(d, readFileSync(directFile, 'utf8').replaceAll(sides.directOutputDir, '<outputdir>'));
  const gatewayText = readFileSync(gatewayFile, 'utf8').replaceAll(sides.gatewayOutputDir, '<outputdir>');
  writeFileSync(g, gatewayText);
  if (diffFiles(d, g, 0) === '') return { identical: true, hunks: [], reasons: {}, diff: '' };
  const norm = normalizeRefusals(gatewayText.split('\n'));
  writeFileSync(g2, norm.lines.join('\n'));
  const residual = parseHunks(diffFiles(d, g2, 0));
  const hunks: Hunk[] = [];
  let refusalsExplained = 0;
  for (const h of residual) {
    const gwRefusals = [...norm.refusalLines].filter((i) => i + 1 >= h.gatewayStart && i + 1 < h.gatewayStart + h.gateway.length).length;
    let reason: string;
    const d = h.direct.filter((l) => l !== '\u0000');
    const g = h.gateway.filter((l) => l !== '\u0000');
    if (gwRefusals > 0) {
      refusalsExplained += gwRefusals;
      reason = !d.some(isError) ? R_UNKNOWN_RAN : R_UNKNOWN_OTHER;
    } else if ([...d, ...g].every(isErrorField) && followsRefusal(norm.refusalLines, h.gatewayStart - 1)) {
      // The refusal just before said what the server says, but not its DETAIL/HINT or position.
      reason = R_UNKNOWN_NO_HINT;
      refusalsExplained++;
    } else reason = classifyHunk(d, g);
    // Once a statement PostgreSQL runs was refused, what follows may differ because of it.
    if (!reason.startsWith(UNKNOWN_REFUSAL) && !reason.startsWith(PATH_REFUSAL)) {
      const cause = [...hunks].reverse().find((x) => x.reason === R_UNKNOWN_RAN || x.reason === R_UNKNOWN_PATH || x.reason === R_PATH || x.reason === R_GATEWAY_OTHER);
      if (cause) reason = cause.reason === R_UNKNOWN_RAN || cause.reason === R_UNKNOWN_PATH ? R_CONSEQUENCE : R_PATH_CONSEQUENCE;
    }
    hunks.push({ header: h.header, direct: d, gateway: g, reason });
  }
  const reasons: Record<string, number> = {};
  if (norm.refusals - refusalsExplained > 0) reasons[R_UNKNOWN_SAME] = norm.refusals - refusalsExplained;
  for (const h of hunks) reasons[h.reason] = (reasons[h.reason] ?? 0) + 1;
  const full = diffFiles(d, g, 3).replace(/^--- \S+/m, `--- ${directFile}`).replace(/^\+\+\+ \S+/m, `+++ ${gatewayFile}`);
  return { identical: false, hunks, reasons, diff: full.length > maxDiffChars ? `${full.slice(0, maxDiffChars)}\n... (${full.length - maxDiffChars} more characters)\n` : full };
}
