import { mkdtempSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openAuditLog } from '../../proxy/audit/index.ts';
import type { AuditRecordInput } from '../../proxy/ports.ts';
import { runCli } from '../testing.ts';

function decision(sub: string, fingerprint: string, normalized: string, verdict: AuditRecordInput['verdict'], shadow?: AuditRecordInput['shadow']): AuditRecordInput {
  return {
    type: 'decision', session_id: 's', identity: { sub, groups: [] }, resource: { kind: 'postgres', name: 'prod-main' },
    statement: { fingerprint, normalized, kind: 'select' }, verdict, rules: ['readers'], outcome: 'executed', ...(shadow ? { shadow } : {}),
  };
}

async function auditFile(records: AuditRecordInput[]): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'hoop-shadow-')), 'audit.jsonl');
  const log = await openAuditLog(file);
  for (const r of records) await log.append(r);
  await log.close();
  return file;
}

describe('hoop shadow report', () => {
  it('groups disagreements by the candidate rules and fingerprint, largest first', async () => {
    const block = { verdict: 'block' as const, reasons: ['no_orders'], differs: ['verdict' as const], message: 'orders are off limits' };
    const file = await auditFile([
      decision('agent-1', 'f1', 'SELECT * FROM orders', 'allow', block),
      decision('agent-2', 'f1', 'SELECT * FROM orders', 'allow', block),
      decision('agent-1', 'f2', 'SELECT id FROM orders WHERE id = $1', 'allow', block),
      decision('agent-1', 'f3', 'SELECT 1', 'allow'),
      decision('agent-3', 'f4', 'SELECT * FROM big', 'allow', { verdict: 'allow', reasons: [], differs: ['limits'], limits: { rows: { rows: 10, rule: 'cap' }, rate: [] } }),
    ]);
    const r = await runCli(['shadow', 'report', '--audit', file]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('4 of 5 decision(s) (80%) would change under the shadow policy');
    expect(r.out).toContain('allow → block: 3, allow → allow: 1');
    expect(r.out).toMatch(/shadow rules no_orders\n {2}2× allow → block {2}fingerprint f1\n {5}SELECT \* FROM orders\n {5}by agent-1, agent-2 on postgres:prod-main/);
    expect(r.out).toContain('would answer: orders are off limits');
    expect(r.out).toContain('1× allow → allow (differs: limits)  fingerprint f4');

    const json = await runCli(['shadow', 'report', '--audit', file, '--format', 'json']);
    const j = JSON.parse(json.out) as { decisions: number; disagreements: number; groups: { rules: string[]; fingerprint: string; count: number; subjects: string[] }[] };
    expect(j.decisions).toBe(5);
    expect(j.disagreements).toBe(4);
    expect(j.groups.map((g) => [g.rules.join(','), g.fingerprint, g.count])).toEqual([['no_orders', 'f1', 2], ['(default)', 'f4', 1], ['no_orders', 'f2', 1]]);
  });

  it('says so when the shadow agreed with everything; a torn last line is counted, not fatal', async () => {
    const file = await auditFile([decision('a', 'f', 'SELECT 1', 'allow')]);
    appendFileSync(file, '{"type":"decis');
    const r = await runCli(['shadow', 'report', '--audit', file]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('1 decision(s), the shadow policy agreed with every one');
    expect(r.out).toContain('(1 line(s) were not JSON records and were skipped)');
  });

  it('exits 2 for an unreadable file or an unknown format', async () => {
    expect((await runCli(['shadow', 'report', '--audit', '/nonexistent/audit.jsonl'])).code).toBe(2);
    const file = join(mkdtempSync(join(tmpdir(), 'hoop-shadow-')), 'a.jsonl');
    writeFileSync(file, '');
    const r = await runCli(['shadow', 'report', '--audit', file, '--format', 'xml']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--format must be pretty or json');
  });
});
