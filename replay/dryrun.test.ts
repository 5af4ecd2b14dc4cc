// `hoop policy dry-run` over the sample recordings in examples/sessions/ (made by the real gateway
// under examples/policies/, see examples/sessions/record.ts): no change under the policy that
// recorded them, exactly the expected changes under edited policies, stable bytes, the output
// formats, and clear errors for corrupt, truncated and future-version recordings.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli/testing.ts';
import { readRecording } from '../proxy/recording/index.ts';
import { NO_CUSTOMER_READS } from './fixtures.ts';

const SESSIONS = 'examples/sessions';
const POLICIES = 'examples/policies';
const files = readdirSync(SESSIONS).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(SESSIONS, f));

const STRICTER = NO_CUSTOMER_READS;

function tempDir(prefix = 'hoop-dryrun-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** examples/policies with `edit` applied to prod.hoop, plus extra files. */
function editedPolicy(edit: (prod: string) => string = (p) => p, extra: Record<string, string> = {}): string {
  const dir = tempDir('hoop-dryrun-policy-');
  for (const f of readdirSync(POLICIES)) {
    const text = readFileSync(join(POLICIES, f), 'utf8');
    writeFileSync(join(dir, f), f === 'prod.hoop' ? edit(text) : text);
  }
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

/** Every recorded statement, with its file and line. */
async function recorded() {
  const out: { file: string; line: number; sub: string; resource: string; text: string; verdict: string; reasons: string[]; approvers: string[]; masks: string[] }[] = [];
  for (const file of files) {
    let sub = '';
    let resource = '';
    for await (const e of readRecording(file)) {
      if (e.type === 'header') {
        sub = e.header.identity.sub;
        resource = e.header.resource.name;
      } else if (e.type === 'statement') {
        out.push({ file, line: e.line, sub, resource, text: e.event.text, verdict: e.event.verdict, reasons: e.event.reasons, approvers: e.event.approvers ?? [], masks: e.event.decision_masks ?? [] });
      }
    }
  }
  return out;
}

async function dryRunJson(args: string[]) {
  const r = await runCli(['policy', 'dry-run', '--format', 'json', ...args]);
  return { ...r, report: r.out ? JSON.parse(r.out) : undefined };
}

describe('hoop policy dry-run on the sample recordings', () => {
  it('reports no change under the policy that recorded them, with the recorded verdicts on the diagonal', async () => {
    const all = await recorded();
    expect(all.length).toBeGreaterThan(20);
    const r = await dryRunJson(['--policy', POLICIES, '--sessions', SESSIONS, '--fail-on-change']);
    expect(r.code).toBe(0);
    expect(r.report.statements).toBe(all.length);
    expect(r.report.sessions).toBe(files.length);
    expect(r.report.changed).toBe(0);
    expect(r.report.groups).toEqual([]);
    expect(r.report.masks_unknown).toBe(0);
    for (const v of ['allow', 'mask', 'approve', 'block']) {
      expect(r.report.matrix[v][v]).toBe(all.filter((s) => s.verdict === v).length);
    }
    const pretty = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', SESSIONS]);
    expect(pretty.code).toBe(0);
    expect(pretty.out).toContain('no decision changed');
    expect(pretty.out).toMatch(/recorded \\ now\s+allow\s+mask\s+approve\s+block/);
  });

  it('under a stricter policy reports exactly the statements it now blocks, grouped under the new rule', async () => {
    const all = await recorded();
    // Reads of customers on prod by the reader/writer agents: what the new rule is about.
    const expected = all.filter((s) => s.resource === 'prod-main' && s.sub !== 'dba-maintenance' && /\bFROM customers\b/.test(s.text) && s.verdict === 'mask');
    expect(expected.length).toBeGreaterThanOrEqual(2);
    const policy = editedPolicy(undefined, { 'stricter.hoop': STRICTER });
    const r = await dryRunJson(['--policy', policy, '--sessions', SESSIONS, '--fail-on-change', '--examples', '10']);
    expect(r.code).toBe(1);
    expect(r.report.changed).toBe(expected.length);
    expect(r.report.changed_fields.verdict).toBe(expected.length);
    expect(r.report.matrix.mask.block).toBe(expected.length);
    expect(r.report.groups).toHaveLength(1);
    const g = r.report.groups[0];
    expect(g.cause).toBe('prod.db.no_customer_reads_for_agents');
    expect(g.transitions).toEqual({ 'mask→block': expected.length });
    expect(g.examples.map((x: { file: string; line: number }) => `${x.file}:${x.line}`)).toEqual(expected.map((s) => `${s.file}:${s.line}`));
    const first = g.examples[0];
    expect(first.recorded.verdict).toBe('mask');
    expect(first.now).toMatchObject({ verdict: 'block', rules: ['prod.db.no_customer_reads_for_agents'], masks: [] });
    expect(first.explanation.rules.find((x: { id: string }) => x.id === 'prod.db.no_customer_reads_for_agents')).toMatchObject({ status: 'applied' });

    const pretty = await runCli(['policy', 'dry-run', '--policy', policy, '--sessions', SESSIONS]);
    expect(pretty.code).toBe(0); // without --fail-on-change a change is a report, not a failure
    expect(pretty.out).toContain(`${expected.length} decision(s) changed`);
    expect(pretty.out).toContain(`prod.db.no_customer_reads_for_agents: ${expected.length} change(s) (mask→block ${expected.length})`);
    expect(pretty.out).toContain('verdict block: agents may not read customers');
    expect(pretty.out).toContain(`${expected[0]!.file}:${expected[0]!.line}`);
  });

  it('reports a changed masker as a mask change with the same verdict', async () => {
    const all = await recorded();
    const withEmailMask = all.filter((s) => s.masks.includes('column public.customers.email with hash'));
    expect(withEmailMask.length).toBeGreaterThan(0);
    const policy = editedPolicy((p) => p.replace('mask column "customers.email" with hash', 'mask column "customers.email" with redact'));
    const r = await dryRunJson(['--policy', policy, '--sessions', SESSIONS]);
    expect(r.report.changed).toBe(withEmailMask.length);
    expect(r.report.changed_fields).toEqual({ verdict: 0, masks: withEmailMask.length, approvers: 0 });
    const example = r.report.groups[0].examples[0];
    expect(example.now.masks).toContain('column public.customers.email with redact');
    expect(example.recorded.masks).toContain('column public.customers.email with hash');
  });

  it('reports changed approver groups', async () => {
    const all = await recorded();
    const approvals = all.filter((s) => s.verdict === 'approve');
    expect(approvals.length).toBeGreaterThan(0);
    const policy = editedPolicy((p) => p.replace('approve by group "dba" within 15m', 'approve by group "security" within 15m'));
    const r = await dryRunJson(['--policy', policy, '--sessions', SESSIONS]);
    expect(r.report.changed).toBe(approvals.length);
    expect(r.report.changed_fields).toEqual({ verdict: 0, masks: 0, approvers: approvals.length });
    expect(r.report.groups[0].examples[0].now.approvers).toEqual(['security']);
  });

  it('--only keeps changes into or out of the listed verdicts', async () => {
    const policy = editedPolicy(undefined, { 'stricter.hoop': STRICTER });
    const none = await dryRunJson(['--policy', policy, '--sessions', SESSIONS, '--only', 'allow,approve', '--fail-on-change']);
    expect(none.code).toBe(0);
    expect(none.report.changed).toBe(0);
    expect(none.report.matrix.mask.block).toBeGreaterThan(0); // the matrix still counts everything
    const some = await dryRunJson(['--policy', policy, '--sessions', SESSIONS, '--only', 'block', '--fail-on-change']);
    expect(some.code).toBe(1);
    expect(some.report.changed).toBe(some.report.matrix.mask.block);
  });

  it('gives the same bytes for the same input, whatever order the recordings are named in', async () => {
    const policy = editedPolicy(undefined, { 'stricter.hoop': STRICTER });
    for (const format of ['pretty', 'json', 'junit']) {
      const a = await runCli(['policy', 'dry-run', '--policy', policy, '--sessions', SESSIONS, '--format', format]);
      const b = await runCli(['policy', 'dry-run', '--policy', policy, '--sessions', ...[...files].reverse(), '--format', format]);
      expect(a.out.length).toBeGreaterThan(100);
      expect(b.out).toBe(a.out);
    }
  });

  it('writes JUnit with one failing test case per group', async () => {
    const policy = editedPolicy(undefined, { 'stricter.hoop': STRICTER });
    const r = await runCli(['policy', 'dry-run', '--policy', policy, '--sessions', SESSIONS, '--format', 'junit']);
    expect(r.out).toMatch(/^<\?xml/);
    expect(r.out).toContain('<testcase classname="dry-run" name="prod.db.no_customer_reads_for_agents">');
    expect(r.out).toMatch(/<failure message="\d+ decision\(s\) changed: mask→block \d+">/);
    const clean = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', SESSIONS, '--format', 'junit']);
    expect(clean.out).toContain('failures="0"');
  });

  it('prints plain progress lines in CI', async () => {
    const r = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', SESSIONS], { CI: 'true' });
    expect(r.err).toMatch(/^dry-run: \d+\/\d+ files, \d+ statements$/m);
    expect(r.err).toMatch(/^dry-run: \d+ statements in \d+ sessions, 0 changed$/m);
    expect(r.err).not.toContain('\r');
  });

  it('refuses bad usage and bad policies with exit 2', async () => {
    expect((await runCli(['policy', 'dry-run', '--policy', POLICIES])).code).toBe(2);
    expect((await runCli(['policy', 'dry-run', '--sessions', SESSIONS])).code).toBe(2);
    const only = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', SESSIONS, '--only', 'deny']);
    expect(only.code).toBe(2);
    expect(only.err).toContain('--only takes verdicts');
    const missing = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', 'no/such/dir']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file or folder: no/such/dir');
    const broken = editedPolicy((p) => p.replace('match sql read\n  allow', 'match sql reed\n  allow'));
    const bad = await runCli(['policy', 'dry-run', '--policy', broken, '--sessions', SESSIONS]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/prod\.hoop:\d+:\d+/);
  });
});

describe('hoop policy dry-run on damaged recordings', () => {
  const damaged = (name: string, edit: (lines: string[]) => string[]): { dir: string; file: string } => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    const src = files[0]!;
    const file = join(dir, basename(src));
    const lines = readFileSync(src, 'utf8').split('\n').filter((l) => l !== '');
    writeFileSync(file, edit(lines).join('\n'));
    copyFileSync(files[1]!, join(dir, basename(files[1]!)));
    void name;
    return { dir, file };
  };

  it('stops at a corrupt line with file:line, or reports it and goes on with --skip-bad', async () => {
    const { dir, file } = damaged('corrupt', (l) => [...l.slice(0, 3), '{"type":"statement", oops', ...l.slice(3)]);
    const r = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:4: not valid JSON (truncated or corrupt line)`);
    expect(r.err).toContain('--skip-bad');
    const skipped = await dryRunJson(['--policy', POLICIES, '--sessions', dir, '--skip-bad']);
    expect(skipped.code).toBe(0);
    expect(skipped.report.bad_lines).toBe(1);
    expect(skipped.report.bad).toEqual([{ file, line: 4, message: 'not valid JSON (truncated or corrupt line)' }]);
    expect(skipped.report.changed).toBe(0);
    const pretty = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', dir, '--skip-bad']);
    expect(pretty.out).toContain(`skipped 1 corrupt line(s):\n  ${file}:4: not valid JSON`);
  });

  it('names the cut-off last line of a truncated recording', async () => {
    let n = 0;
    const { dir, file } = damaged('truncated', (l) => {
      const kept = l.slice(0, -1); // drop the footer, as when the gateway died
      const last = kept[kept.length - 1]!;
      kept[kept.length - 1] = last.slice(0, Math.floor(last.length / 2));
      n = kept.length;
      return kept;
    });
    const r = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:${n}: not valid JSON`);
    const skipped = await dryRunJson(['--policy', POLICIES, '--sessions', dir, '--skip-bad']);
    expect(skipped.code).toBe(0);
    expect(skipped.report.bad).toEqual([{ file, line: n, message: 'not valid JSON (truncated or corrupt line)' }]);
  });

  it('refuses a recording from a newer format version, even with --skip-bad', async () => {
    const { dir, file } = damaged('future', (l) => [l[0]!.replace('"version":1', '"version":2'), ...l.slice(1)]);
    for (const extra of [[], ['--skip-bad']]) {
      const r = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', dir, ...extra]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`${file}:1: recording format version 2 is newer than this hoop understands (1); upgrade hoop`);
      expect(r.out).toBe('');
    }
  });

  it('with --skip-bad skips a file whose header is unreadable and reads the others', async () => {
    const { dir, file } = damaged('headerless', (l) => ['garbage', ...l.slice(1)]);
    const r = await runCli(['policy', 'dry-run', '--policy', POLICIES, '--sessions', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${file}:1: the first line is not a JSON header`);
    const skipped = await dryRunJson(['--policy', POLICIES, '--sessions', dir, '--skip-bad']);
    expect(skipped.code).toBe(0);
    expect(skipped.report.sessions).toBe(1);
    expect(skipped.report.bad_lines).toBe(1);
  });
});
