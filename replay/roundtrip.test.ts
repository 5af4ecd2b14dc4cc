// Round trip through the real gateway: sessions recorded by a running gateway (PostgreSQL 15, the
// example policies, the session mix of examples/sessions/record.ts) are dry-run under the same
// policy with zero changes, and under a stricter one with exactly the expected changes.

import { mkdtempSync, rmSync, writeFileSync, readdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/testing.ts';
import { compilePolicy, loadPolicySources } from '../engine/index.ts';
import { recordSessions } from '../examples/sessions/record.ts';
import { readRecording, type RecordingStatement } from '../proxy/recording/index.ts';
import { loadReplayClassifiers } from './classifiers.ts';
import { dryRun } from './dryrun.ts';
import { NO_CUSTOMER_READS } from './fixtures.ts';

let dir: string;
let files: string[];
const statements: (RecordingStatement & { sub: string; protocol: string })[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hoop-roundtrip-'));
  files = await recordSessions({ outDir: dir });
  for (const f of files) {
    let sub = '';
    for await (const e of readRecording(f)) {
      if (e.type === 'header') sub = e.header.identity.sub;
      if (e.type === 'statement') statements.push({ ...e.event, sub });
    }
  }
}, 240_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function policyWith(extra?: string) {
  const { sources } = await loadPolicySources('examples/policies');
  const compiled = compilePolicy(extra ? [...sources, { file: 'extra.hoop', text: extra }] : sources);
  if (!compiled.policy) throw new Error('policy does not compile');
  return compiled.policy;
}

describe('dry-run of sessions recorded by the real gateway', () => {
  it('recorded every verdict, both protocols, masks and an approval that ran', () => {
    expect(files).toHaveLength(4);
    const verdicts = new Set(statements.map((s) => s.verdict));
    expect(verdicts).toEqual(new Set(['allow', 'mask', 'approve', 'block']));
    expect(statements.some((s) => s.protocol === 'extended')).toBe(true);
    expect(statements.some((s) => s.verdict === 'approve' && s.outcome === 'executed' && s.approval_id)).toBe(true);
    expect(statements.some((s) => s.decision_masks?.includes('column public.customers.email with hash'))).toBe(true);
  });

  it('finds no change under the policy that recorded them', async () => {
    const result = await dryRun(await policyWith(), await loadReplayClassifiers(), { files });
    if (!result.ok) throw result.error;
    expect(result.report.statements).toBe(statements.length);
    expect(result.report.changed).toBe(0);
    expect(result.report.masks_unknown).toBe(0);
    const cli = await runCli(['policy', 'dry-run', '--policy', 'examples/policies', '--sessions', dir, '--fail-on-change']);
    expect(cli.code).toBe(0);
    expect(cli.out).toContain('no decision changed');
  });

  it('under a stricter policy changes exactly the statements the new rule is about', async () => {
    const stricter = NO_CUSTOMER_READS;
    const result = await dryRun(await policyWith(stricter), await loadReplayClassifiers(), { files, examplesPerGroup: 100 });
    if (!result.ok) throw result.error;
    const r = result.report;
    // The agents' reads of customers on prod in the session mix (record.ts), nothing else.
    const expected = [
      'SELECT id, name, email, tier FROM customers ORDER BY id',
      'SELECT c.tier, sum(o.total) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.tier ORDER BY c.tier',
      'SELECT id, name, email, card_number FROM customers WHERE id = $1',
    ];
    expect(r.changed).toBe(expected.length);
    expect(r.groups.map((g) => g.cause)).toEqual(['prod.db.no_customer_reads_for_agents']);
    expect(r.groups[0]!.examples.map((x) => x.text).sort()).toEqual([...expected].sort());
    expect(r.groups[0]!.examples.every((x) => x.before.verdict === 'mask' && x.after.verdict === 'block')).toBe(true);
    expect(r.matrix.mask.block).toBe(expected.length);
    // Everything else stays where it was.
    const offDiagonal = Object.entries(r.matrix).flatMap(([a, row]) => Object.entries(row).filter(([b, n]) => a !== b && n > 0));
    expect(offDiagonal).toEqual([['block', expected.length]]);

    // And through the CLI with --fail-on-change, from a copy of the recordings.
    const copy = mkdtempSync(join(tmpdir(), 'hoop-roundtrip-cli-'));
    for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(copy, f));
    const policyDir = mkdtempSync(join(tmpdir(), 'hoop-roundtrip-policy-'));
    for (const f of readdirSync('examples/policies')) copyFileSync(join('examples/policies', f), join(policyDir, f));
    writeFileSync(join(policyDir, 'stricter.hoop'), stricter);
    const cli = await runCli(['policy', 'dry-run', '--policy', policyDir, '--sessions', copy, '--fail-on-change']);
    expect(cli.code).toBe(1);
    expect(cli.out).toContain(`prod.db.no_customer_reads_for_agents: ${expected.length} change(s) (mask→block ${expected.length})`);
    rmSync(copy, { recursive: true, force: true });
    rmSync(policyDir, { recursive: true, force: true });
  });
});
