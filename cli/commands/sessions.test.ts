// `hoop sessions list|show` on the sample recordings (examples/sessions/, made by the real gateway).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecording, summarizeRecording } from '../../proxy/recording/index.ts';
import { runCli } from '../testing.ts';

const SESSIONS = 'examples/sessions';
const files = readdirSync(SESSIONS).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(SESSIONS, f));

describe('hoop sessions on the sample recordings', () => {
  it('lists each session: start, identity, resource, duration, statements, verdicts in a fixed order', async () => {
    const r = await runCli(['sessions', 'list', SESSIONS]);
    expect(r.code).toBe(0);
    const rows = r.out.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^STARTED\s+SESSION\s+IDENTITY\s+RESOURCE\s+DURATION\s+STATEMENTS\s+VERDICTS$/);
    expect(rows).toHaveLength(files.length + 1);
    for (const [i, f] of files.entries()) {
      const s = await summarizeRecording(f);
      const verdicts = (['allow', 'mask', 'approve', 'block'] as const).filter((v) => s.verdicts[v]).map((v) => `${v}:${s.verdicts[v]}`).join(' ');
      const who = s.actor ? `${s.sub} \\(for ${s.actor}\\)` : s.sub;
      expect(rows[i + 1]).toMatch(new RegExp(`^${s.started_at}\\s+${s.session_id}\\s+${who}\\s+${s.resource}\\s+\\d+\\.\\ds\\s+${s.statements}\\s+${verdicts}$`));
    }
  });

  it('shows a timeline with verdict, outcome, rules, policy masks, approvers and the approval id', async () => {
    // The support agent's session: a masked read, an approval asked for and then used.
    let target = '';
    for (const f of files) if ((await summarizeRecording(f)).sub === 'agent-support') target = f;
    const r = await runCli(['sessions', 'show', target]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^session \S+: agent-support \(for alice@example.com\) \[data-writer\] on postgres\/prod-main from /);
    expect(r.out).toMatch(/mask\s+executed\s+SELECT id, name, email, card_number FROM customers WHERE id = \$1\n\s+rules prod.db.mask_customer_pii, prod.db.mask_detected_pii, prod.db.readers_select; policy masks column public.customers.card_number with last4; column public.customers.email with hash;/);
    expect(r.out).toMatch(/approve pending_approval UPDATE orders SET status = 'shipped' WHERE id = 4\n\s+rules prod.db.writes_need_dba; approvers dba; approval apr_\S+;/);
    expect(r.out).toMatch(/approve executed\s+UPDATE orders SET status = 'shipped' WHERE id = 4\n\s+rules prod.db.writes_need_dba; approvers dba; approval apr_\S+; 1 rows/);
    expect(r.out).toMatch(/^ended \S+: 6 statements$/m);

    const json = await runCli(['sessions', 'show', target, '--json']);
    const lines = json.out.trimEnd().split('\n').map((l) => JSON.parse(l));
    const entries: unknown[] = [];
    for await (const e of readRecording(target)) entries.push(e.type === 'header' ? e.header : e.type === 'statement' ? e.event : e.type === 'footer' ? e.footer : e);
    expect(lines).toEqual(entries);
  });
});
