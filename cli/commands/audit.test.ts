import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../testing.ts';
import { openAuditLog } from '../../proxy/audit/sink.ts';

const run = runCli;

describe('hoop audit verify', () => {
  it('exits 0 on an intact chain, 1 on a broken one (naming the line), 2 on an unreadable file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hoop-cli-audit-')), 'audit.jsonl');
    const log = await openAuditLog(file);
    for (let i = 0; i < 3; i++) await log.append({ type: 'decision', verdict: 'allow', outcome: 'executed', rows: i });
    await log.close();
    const ok = await run(['audit', 'verify', file]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok, 3 records/);
    const { last_seq, last_hash } = JSON.parse((await run(['audit', 'verify', file, '--json'])).out);
    expect((await run(['audit', 'verify', file, '--anchor', `${last_seq}:${last_hash}`])).code).toBe(0);
    expect((await run(['audit', 'verify', file, '--anchor', `9:${last_hash}`])).code).toBe(1);

    const ls = readFileSync(file, 'utf8').split('\n');
    ls[1] = ls[1].replace('"rows":1', '"rows":100');
    writeFileSync(file, ls.join('\n'));
    const bad = await run(['audit', 'verify', file]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`${file}:2: hash_mismatch (seq 2)`);
    const json = await run(['audit', 'verify', file, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, line: 2, seq: 2, problem: 'hash_mismatch' });

    expect((await run(['audit', 'verify', file + '.nope'])).code).toBe(2);
    expect((await run(['audit', 'verify', file, '--anchor', 'nonsense'])).code).toBe(2);
  });
});
