// Property: any single tampering with an intact audit log is reported at the tampered line.
import { describe, expect } from 'vitest';
import { it, fc } from '@fast-check/vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog } from './sink.ts';
import { verifyAuditFile } from './verify.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoop-audit-prop-'));
let counter = 0;

async function freshLog(rows: string[]): Promise<{ file: string; lines: string[] }> {
  const file = join(dir, `a${counter++}.jsonl`);
  const log = await openAuditLog(file);
  await Promise.all(rows.map((text, i) => log.append({ type: 'decision', statement: { fingerprint: `f${i}`, normalized: text, kind: 'select' }, verdict: 'allow', outcome: 'executed', rows: i })));
  await log.close();
  return { file, lines: readFileSync(file, 'utf8').split('\n').slice(0, -1) };
}

const rowsArb = fc.array(fc.string({ maxLength: 40 }), { minLength: 2, maxLength: 25 });

describe('audit chain tamper detection (property)', () => {
  it.prop([rowsArb, fc.nat(), fc.nat(), fc.integer({ min: 0x20, max: 0x7e })], { numRuns: 60 })(
    'a changed byte is reported on its line',
    async (rows, li, pos, byte) => {
      const { file, lines } = await freshLog(rows);
      const i = li % lines.length;
      const buf = Buffer.from(lines[i]);
      const j = pos % buf.length;
      fc.pre(buf[j] !== byte);
      buf[j] = byte;
      lines[i] = buf.toString('latin1');
      writeFileSync(file, lines.join('\n') + '\n', 'latin1');
      const r = await verifyAuditFile(file);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.line).toBe(i + 1);
        expect(['malformed', 'hash_mismatch']).toContain(r.problem);
      }
    },
  );

  it.prop([rowsArb, fc.nat(), fc.boolean()], { numRuns: 60 })('a removed or swapped line breaks the chain there', async (rows, li, swap) => {
    const { file, lines } = await freshLog(rows);
    const i = li % (lines.length - 1);
    if (swap) [lines[i], lines[i + 1]] = [lines[i + 1], lines[i]];
    else lines.splice(i, 1);
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await verifyAuditFile(file);
    expect(r).toMatchObject({ ok: false, line: i + 1, problem: 'prev_mismatch' });
  });
});
