// Reporters for `hoop policy dry-run`: pretty (terminal), json and junit. Each renders the same
// report; none decides anything. Output depends only on the report (no times, no paths of temp
// files), so the same recordings and policy give the same bytes.

import type { Explanation, Verdict } from '../../engine/index.ts';
import { VERDICTS, type Outcome } from '../../replay/compare.ts';
import type { ChangeExample, DryRunReport } from '../../replay/dryrun.ts';
import { escapeControls, jsonForTerminal, oneLine } from '../../stdlib/terminal-text.ts';
import { renderExplanation } from './tests.ts';

export type DryRunFormat = 'pretty' | 'json' | 'junit';
export const DRY_RUN_FORMATS: readonly DryRunFormat[] = ['pretty', 'json', 'junit'];

export function renderDryRun(format: DryRunFormat, r: DryRunReport): string {
  switch (format) {
    case 'pretty':
      return pretty(r);
    case 'json':
      return `${jsonForTerminal(json(r), 2)}\n`;
    case 'junit':
      return junit(r);
  }
}

function outcomeText(o: Outcome): string {
  const parts: string[] = [o.verdict];
  if (o.masks && o.masks.length) parts.push(`masks [${o.masks.join('; ')}]`);
  if (o.approvers.length) parts.push(`approvers [${o.approvers.join(', ')}]`);
  parts.push(o.rules.length ? `by ${o.rules.join(', ')}` : '(no rule)');
  return parts.join(' ');
}

export function matrixLines(r: DryRunReport): string[] {
  const head = ['recorded \\ now', ...VERDICTS];
  const rows = VERDICTS.map((v) => [v, ...VERDICTS.map((w) => String(r.matrix[v][w]))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [fmt(head), ...rows.map(fmt)];
}

function exampleLines(x: ChangeExample, indent: string): string[] {
  return [
    `${indent}${x.file}:${x.line}  ${x.sub} on ${x.resource}  session ${x.session_id}  at ${x.time}`,
    `${indent}  ${oneLine(x.text, 160)}`,
    `${indent}  recorded: ${outcomeText(x.before)}`,
    `${indent}  now:      ${outcomeText(x.after)}`,
    `${indent}  changed:  ${x.fields.join(', ')}`,
    // The rules that applied (or failed); the JSON report lists every rule considered.
    ...renderExplanation({ ...x.explanation, rules: x.explanation.rules.filter((r) => r.outcome.status !== 'skipped') }, `${indent}  `),
  ];
}

function pretty(r: DryRunReport): string {
  const out: string[] = [];
  out.push(`dry-run: ${r.statements} statement(s) in ${r.sessions} session(s) from ${r.files} file(s)`);
  out.push('');
  out.push(...matrixLines(r));
  out.push('');
  if (r.masks_unknown > 0) out.push(`note: ${r.masks_unknown} statement(s) come from recordings without decision_masks; their masks were not compared`, '');
  if (r.bad_lines > 0) {
    out.push(`skipped ${r.bad_lines} corrupt line(s):`);
    for (const b of r.bad) out.push(`  ${b.file}:${b.line}: ${b.message}`);
    if (r.bad_lines > r.bad.length) out.push(`  ... and ${r.bad_lines - r.bad.length} more`);
    out.push('');
  }
  if (r.changed === 0) {
    out.push('no decision changed');
    return terminalLines(out);
  }
  out.push(`${r.changed} decision(s) changed (verdict ${r.changed_fields.verdict}, masks ${r.changed_fields.masks}, approvers ${r.changed_fields.approvers})`);
  for (const g of r.groups) {
    out.push('');
    const transitions = Object.entries(g.transitions).sort(([a], [b]) => (a < b ? -1 : 1)).map(([t, n]) => `${t} ${n}`).join(', ');
    out.push(`${g.cause}: ${g.count} change(s) (${transitions})`);
    for (const x of g.examples) out.push(...exampleLines(x, '  '));
    if (g.count > g.examples.length) out.push(`  ... and ${g.count - g.examples.length} more`);
  }
  return terminalLines(out);
}

/** Recorded statements, identities and file names are agents' text: no control character reaches the terminal. */
function terminalLines(lines: string[]): string {
  return `${lines.map(escapeControls).join('\n')}\n`;
}

function explanationJson(e: Explanation): unknown {
  return {
    verdict: e.decision.verdict,
    defaulted: e.decision.defaulted,
    message: e.decision.message,
    rules: e.rules.map((r) => ({ id: r.id, ...r.outcome })),
    errors: e.decision.errors,
  };
}

function json(r: DryRunReport): unknown {
  return {
    policy_hash: r.policy_hash,
    files: r.files,
    sessions: r.sessions,
    statements: r.statements,
    changed: r.changed,
    changed_fields: r.changed_fields,
    matrix: r.matrix,
    masks_unknown: r.masks_unknown,
    bad_lines: r.bad_lines,
    bad: r.bad,
    groups: r.groups.map((g) => ({
      cause: g.cause,
      count: g.count,
      transitions: g.transitions,
      examples: g.examples.map((x) => ({
        file: x.file,
        line: x.line,
        session_id: x.session_id,
        sub: x.sub,
        resource: x.resource,
        time: x.time,
        text: x.text,
        changed: x.fields,
        recorded: x.before,
        now: x.after,
        explanation: explanationJson(x.explanation),
      })),
    })),
  };
}

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** One test case per group (failed: its changes) plus one passing case when nothing changed. */
function junit(r: DryRunReport): string {
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`];
  const cases = Math.max(1, r.groups.length);
  out.push(`<testsuites name="hoop policy dry-run" tests="${cases}" failures="${r.groups.length}" errors="0">`);
  out.push(`  <testsuite name="dry-run" tests="${cases}" failures="${r.groups.length}" errors="0">`);
  if (r.groups.length === 0) {
    out.push(`    <testcase classname="dry-run" name="${xml(`${r.statements} recorded statements keep their decisions`)}"/>`);
  }
  for (const g of r.groups) {
    const body = [...matrixLines(r), '', ...g.examples.flatMap((x) => exampleLines(x, '')), ...(g.count > g.examples.length ? [`... and ${g.count - g.examples.length} more`] : [])].join('\n');
    out.push(`    <testcase classname="dry-run" name="${xml(g.cause)}">`);
    out.push(`      <failure message="${xml(`${g.count} decision(s) changed: ${Object.entries(g.transitions).map(([t, n]) => `${t} ${n}`).join(', ')}`)}">${xml(body)}</failure>`);
    out.push('    </testcase>');
  }
  out.push('  </testsuite>', '</testsuites>');
  return `${out.join('\n')}\n`;
}

export function parseOnly(v: string | undefined): Verdict[] | string {
  if (v === undefined) return [];
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of list) if (!VERDICTS.includes(x as Verdict)) return `--only takes verdicts (${VERDICTS.join(', ')}), not ${JSON.stringify(x)}`;
  return list as Verdict[];
}
