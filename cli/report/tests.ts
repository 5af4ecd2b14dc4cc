// Reporters for `hoop policy test`: pretty (terminal), json, junit (CI dashboards) and github
// (workflow annotations). Each takes the same results; none decides anything.

import type { CoverageReport } from '../../engine/tester/coverage.ts';
import type { TestResult } from '../../engine/tester/runner.ts';
import type { Explanation, Limits, RuleOutcome } from '../../engine/index.ts';
import { formatDurationMs } from '../../language/ast.ts';
import { formatLocation } from '../../language/index.ts';
import { escapeControls, jsonForTerminal, oneLine } from '../../stdlib/terminal-text.ts';

export type TestFormat = 'pretty' | 'json' | 'junit' | 'github';
export const TEST_FORMATS: readonly TestFormat[] = ['pretty', 'json', 'junit', 'github'];

export interface ReportInput {
  results: TestResult[];
  coverage?: CoverageReport;
  threshold?: number;
  verbose: boolean;
}

const counts = (results: TestResult[]) => ({
  passed: results.filter((r) => r.outcome === 'pass').length,
  failed: results.filter((r) => r.outcome === 'fail').length,
  errored: results.filter((r) => r.outcome === 'error').length,
});

export function renderTests(format: TestFormat, input: ReportInput): string {
  switch (format) {
    case 'pretty':
      return pretty(input);
    case 'json':
      return `${jsonForTerminal(json(input), 2)}\n`;
    case 'junit':
      return junit(input);
    case 'github':
      return github(input);
  }
}

function outcomeText(o: RuleOutcome): string {
  switch (o.status) {
    case 'applied':
      return `applied (${o.effects.join(', ')})`;
    case 'skipped':
      return `skipped at ${o.selector}: ${o.detail}`;
    case 'error':
      return `error: ${o.detail}`;
  }
}

export function renderExplanation(e: Explanation, indent = ''): string[] {
  const lines: string[] = [];
  const d = e.decision;
  lines.push(`${indent}verdict ${d.verdict}${d.defaulted ? ' (default)' : ''}${d.message ? `: ${d.message}` : ''}`);
  if (d.reasons.length) lines.push(`${indent}determined by ${d.reasons.map((r) => r.id).join(', ')}`);
  if (d.masks.columns.length) lines.push(`${indent}masks ${d.masks.columns.map((m) => `${m.column} with ${m.masker.name}`).join(', ')}`);
  if (d.masks.detectors.length) lines.push(`${indent}detectors ${d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join('+')} with ${m.masker.name}`).join(', ')}`);
  if (d.approvers.length) lines.push(`${indent}approvers ${d.approvers.join(', ')}`);
  if (d.limits) lines.push(`${indent}limits ${limitsText(d.limits)}`);
  for (const err of d.errors) lines.push(`${indent}rule error ${err.rule}: ${err.message}`);
  const width = Math.max(0, ...e.rules.map((r) => r.id.length));
  for (const r of e.rules) lines.push(`${indent}  ${r.id.padEnd(width)}  ${outcomeText(r.outcome)}`);
  return lines;
}

/** `rows 1000 (by r1), time 30s (by r2), rate 10 per 1m (by r3)`: each limit and the rule that set it. */
export function limitsText(l: Limits): string {
  const parts: string[] = [];
  if (l.rows) parts.push(`rows ${l.rows.rows} (by ${l.rows.rule})`);
  if (l.time) parts.push(`time ${formatDurationMs(l.time.ms)} (by ${l.time.rule})`);
  for (const r of l.rate) parts.push(`rate ${r.count} per ${formatDurationMs(r.windowMs)} (by ${r.rule})`);
  return parts.join(', ');
}

function pretty({ results, coverage, threshold, verbose }: ReportInput): string {
  const out: string[] = [];
  const byFile = new Map<string, TestResult[]>();
  for (const r of results) byFile.set(r.file, [...(byFile.get(r.file) ?? []), r]);
  for (const [file, rs] of byFile) {
    const shown = rs.filter((r) => verbose || r.outcome !== 'pass');
    if (shown.length === 0) continue;
    out.push(file);
    for (const r of shown) {
      const tag = r.outcome === 'pass' ? 'PASS ' : r.outcome === 'fail' ? 'FAIL ' : 'ERROR';
      out.push(`  ${tag} ${r.name} (${r.durationMs.toFixed(1)}ms)`);
      if (r.error) out.push(`        ${formatLocation(r.span)}: ${r.error}`);
      for (const f of r.failures) out.push(`        ${formatLocation(f.span)}: expected ${f.expected}, got ${f.actual}`);
      if (r.outcome === 'fail' || (verbose && r.outcome === 'pass')) {
        r.explanations.forEach((e, i) => {
          const text = (e.facts as { action?: { text?: string } })?.action?.text;
          out.push(`        statement ${i + 1}${text ? `: ${oneLine(text)}` : ''}`);
          out.push(...renderExplanation(e, '          '));
        });
      }
    }
  }
  if (coverage) {
    out.push('', `coverage: ${coverage.percent}% of rules determined a verdict in some test`);
    for (const r of coverage.notCovered) {
      out.push(`  not covered: ${r.id} (${r.effects.join(', ')}) at ${formatLocation(r.span)}${r.applied ? ' — applied but never decided a verdict' : ''}`);
    }
    if (threshold !== undefined && coverage.percent < threshold) out.push(`coverage ${coverage.percent}% is below the threshold ${threshold}%`);
  }
  const c = counts(results);
  out.push('', `${c.passed} passed, ${c.failed + c.errored} failed`);
  return `${out.map(escapeControls).join('\n')}\n`;
}

function json({ results, coverage, threshold }: ReportInput): unknown {
  return {
    summary: counts(results),
    tests: results.map((r) => ({
      name: r.name,
      package: r.package,
      location: formatLocation(r.span),
      outcome: r.outcome,
      duration_ms: Math.round(r.durationMs * 1000) / 1000,
      error: r.error,
      failures: r.failures.map((f) => ({ location: formatLocation(f.span), expected: f.expected, actual: f.actual })),
      decision: r.decision && {
        verdict: r.decision.verdict,
        rules: r.decision.reasons.map((x) => x.id),
        message: r.decision.message,
        approvers: r.decision.approvers,
        masks: r.decision.masks.columns.map((m) => m.column),
      },
    })),
    coverage: coverage && {
      percent: coverage.percent,
      threshold,
      rules: coverage.rules.map((r) => ({ id: r.id, location: formatLocation(r.span), effects: r.effects, applied: r.applied, covered: r.decided })),
    },
  };
}

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

function junit({ results }: ReportInput): string {
  const bySuite = new Map<string, TestResult[]>();
  for (const r of results) bySuite.set(r.file, [...(bySuite.get(r.file) ?? []), r]);
  const c = counts(results);
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="hoop policy test" tests="${results.length}" failures="${c.failed}" errors="${c.errored}">`];
  for (const [file, rs] of bySuite) {
    const sc = counts(rs);
    const time = rs.reduce((a, r) => a + r.durationMs, 0) / 1000;
    out.push(`  <testsuite name="${xml(file)}" tests="${rs.length}" failures="${sc.failed}" errors="${sc.errored}" time="${time.toFixed(4)}">`);
    for (const r of rs) {
      out.push(`    <testcase classname="${xml(r.package || file)}" name="${xml(r.name)}" file="${xml(file)}" line="${r.span.startLine}" time="${(r.durationMs / 1000).toFixed(4)}">`);
      if (r.outcome === 'fail') {
        const msg = r.failures.map((f) => `expected ${f.expected}, got ${f.actual}`).join('; ');
        const body = [...r.failures.map((f) => `${formatLocation(f.span)}: expected ${f.expected}, got ${f.actual}`), ...r.explanations.flatMap((e) => renderExplanation(e))].join('\n');
        out.push(`      <failure message="${xml(msg)}">${xml(body)}</failure>`);
      } else if (r.outcome === 'error') {
        out.push(`      <error message="${xml(r.error ?? 'error')}"/>`);
      }
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

// GitHub workflow commands: data is %-escaped; properties also escape `:` and `,`.
const ghData = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string): string => ghData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

function github({ results, coverage, threshold }: ReportInput): string {
  const out: string[] = [];
  for (const r of results) {
    if (r.outcome === 'pass') continue;
    const details = r.error ? [r.error] : r.failures.map((f) => `expected ${f.expected}, got ${f.actual}`);
    const first = r.failures[0]?.span ?? r.span;
    out.push(`::error file=${ghProp(first.file)},line=${first.startLine},col=${first.startColumn},title=${ghProp(`hoop test failed: ${r.name}`)}::${ghData(details.join('\n'))}`);
  }
  if (coverage) {
    for (const r of coverage.notCovered) {
      out.push(`::warning file=${ghProp(r.span.file)},line=${r.span.startLine},col=${r.span.startColumn},title=${ghProp('rule not covered by tests')}::${ghData(`${r.id} (${r.effects.join(', ')}) never determined a verdict in any test`)}`);
    }
    if (threshold !== undefined && coverage.percent < threshold) out.push(`::error title=${ghProp('policy coverage below threshold')}::${ghData(`coverage ${coverage.percent}% < ${threshold}%`)}`);
  }
  const c = counts(results);
  out.push(`${c.passed} passed, ${c.failed + c.errored} failed`);
  return `${out.join('\n')}\n`;
}
