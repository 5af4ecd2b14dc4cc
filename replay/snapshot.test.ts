// The verdict-snapshot workflow on the sample recordings: `hoop policy snapshot` writes one sorted
// line per distinct statement; `hoop policy test --snapshot` passes while every verdict matches,
// fails (exit 1) naming each statement a policy change alters or that the snapshot lacks, and
// `--update-snapshot` acknowledges the change.

import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli/testing.ts';
import { readRecording } from '../proxy/recording/index.ts';
import { statementKey } from './snapshot.ts';

const SESSIONS = 'examples/sessions';
const POLICIES = 'examples/policies';
const recordings = readdirSync(SESSIONS).filter((f) => f.endsWith('.jsonl')).sort();

// Scoped to one recorded agent, so the example policy tests still pass (the test run must only
// fail because of the snapshot).
const STRICTER = `package prod.db
rule no_customer_reads_for_agents {
  on postgres("prod-*")
  when subject "agent-analytics"
  match sql select on tables ["public.customers"]
  block "agents may not read customers"
}
`;

function policyDir(extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-snap-policy-'));
  for (const f of readdirSync(POLICIES)) copyFileSync(join(POLICIES, f), join(dir, f));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

const tmpFile = (name: string) => join(mkdtempSync(join(tmpdir(), 'hoop-snap-')), name);

async function distinctStatements(files: string[]): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const f of files) {
    let header;
    for await (const e of readRecording(f)) {
      if (e.type === 'header') header = e.header;
      else if (e.type === 'statement') keys.add(statementKey(header!, e.event.text));
    }
  }
  return keys;
}

describe('verdict snapshots', () => {
  it('writes one sorted, deduplicated line per distinct statement, the same bytes every time', async () => {
    const out = tmpFile('verdicts.jsonl');
    const r = await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', SESSIONS, '--out', out]);
    expect(r.code).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ type: 'snapshot', version: 1 });
    const entries = lines.slice(1).map((l) => JSON.parse(l));
    const keys = await distinctStatements(recordings.map((f) => join(SESSIONS, f)));
    // One entry per distinct (identity, resource, text): the approval re-send is not repeated.
    expect(new Set(entries.map((e) => e.key))).toEqual(keys);
    expect(entries).toHaveLength(keys.size);
    const order = entries.map((e) => [e.resource, e.sub, e.text].join('\u0000'));
    expect(order).toEqual([...order].sort());
    const update = entries.find((e) => e.text.startsWith('UPDATE orders SET status = \'shipped\''));
    expect(update).toMatchObject({ verdict: 'approve', approvers: ['dba'], rules: ['prod.db.writes_need_dba'], sub: 'agent-support', actor: 'alice@example.com' });
    const again = tmpFile('again.jsonl');
    await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', SESSIONS, '--out', again]);
    expect(readFileSync(again, 'utf8')).toBe(readFileSync(out, 'utf8'));
  });

  it('policy test --snapshot passes while verdicts match and fails on each one a policy change alters', async () => {
    const snap = tmpFile('verdicts.jsonl');
    expect((await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', SESSIONS, '--out', snap])).code).toBe(0);
    const same = await runCli(['policy', 'test', POLICIES, '--snapshot', snap, '--sessions', SESSIONS]);
    expect(same.code).toBe(0);
    expect(same.out).toContain(`snapshot ${snap}: every recorded verdict matches`);

    const stricter = policyDir({ 'stricter.hoop': STRICTER });
    const changed = await runCli(['policy', 'test', stricter, '--snapshot', snap, '--sessions', SESSIONS]);
    expect(changed.code).toBe(1);
    const reported = changed.out.split('\n').filter((l) => l.startsWith('CHANGED'));
    const entries = readFileSync(snap, 'utf8').trimEnd().split('\n').slice(1).map((l) => JSON.parse(l));
    const affected = entries.filter((e) => e.resource === 'postgres/prod-main' && e.sub === 'agent-analytics' && / FROM customers\b/.test(e.text) && e.verdict === 'mask');
    expect(affected.length).toBeGreaterThan(0);
    expect(reported).toHaveLength(affected.length);
    for (const e of affected) expect(changed.out).toContain(`CHANGED ${e.key}  ${e.sub} on ${e.resource}: ${e.text}`);
    expect(changed.out).toContain('now:      block by prod.db.no_customer_reads_for_agents');
    expect(changed.out).toContain(`${affected.length} verdict(s) changed, 0 statement(s) not in the snapshot`);

    // Acknowledge: rewrite, then the same change passes.
    const updated = await runCli(['policy', 'test', stricter, '--snapshot', snap, '--sessions', SESSIONS, '--update-snapshot']);
    expect(updated.code).toBe(0);
    expect(readFileSync(snap, 'utf8')).toContain('"verdict":"block","rules":["prod.db.no_customer_reads_for_agents"]');
    expect((await runCli(['policy', 'test', stricter, '--snapshot', snap, '--sessions', SESSIONS])).code).toBe(0);
  });

  it('fails on recorded statements the snapshot does not acknowledge yet', async () => {
    const snap = tmpFile('partial.jsonl');
    await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', join(SESSIONS, recordings[0]!), '--out', snap]);
    const r = await runCli(['policy', 'test', POLICIES, '--snapshot', snap, '--sessions', SESSIONS]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^NEW +[0-9a-f]+ {2}\S+ on postgres\//m);
    expect(r.out).toMatch(/0 verdict\(s\) changed, \d+ statement\(s\) not in the snapshot/);
  });

  it('keeps JSON test output clean and reports the snapshot on stderr', async () => {
    const snap = tmpFile('verdicts.jsonl');
    await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', SESSIONS, '--out', snap]);
    const r = await runCli(['policy', 'test', POLICIES, '--format', 'json', '--snapshot', snap, '--sessions', SESSIONS]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).summary.failed).toBe(0);
    expect(r.err).toContain('every recorded verdict matches');
  });

  it('refuses a missing or foreign snapshot and bad flag combinations with exit 2', async () => {
    const missing = tmpFile('none.jsonl');
    const r = await runCli(['policy', 'test', POLICIES, '--snapshot', missing, '--sessions', SESSIONS]);
    expect(r.code).toBe(2);
    expect(r.out + r.err).toContain('create it with --update-snapshot');
    expect(existsSync(missing)).toBe(false);
    const foreign = tmpFile('foreign.jsonl');
    writeFileSync(foreign, '{"hello":1}\n');
    const f = await runCli(['policy', 'test', POLICIES, '--snapshot', foreign, '--sessions', SESSIONS]);
    expect(f.code).toBe(2);
    expect(f.out + f.err).toContain(`${foreign}:1: not a hoop verdict snapshot`);
    expect((await runCli(['policy', 'test', POLICIES, '--snapshot', foreign])).code).toBe(2);
    expect((await runCli(['policy', 'test', POLICIES, '--update-snapshot'])).code).toBe(2);
    expect((await runCli(['policy', 'snapshot', '--policy', POLICIES, '--sessions', SESSIONS])).code).toBe(2);
  });
});
