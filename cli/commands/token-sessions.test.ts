import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../testing.ts';
import { createTokenVerifier } from '../../proxy/identity/verifier.ts';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../proxy/identity/dev-issuer.ts';
import { createSessionRecorder } from '../../proxy/recording/writer.ts';

describe('hoop token mint', () => {
  it('mints a dev-issuer token the gateway verifier accepts', async () => {
    const state = mkdtempSync(join(tmpdir(), 'hoop-cli-token-'));
    const r = await runCli(['token', 'mint', '--sub', 'agent-7', '--groups', 'data-reader,x', '--ttl', '10m', '--actor', 'alice', '--state', state, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { token: string; jwks_file: string };
    const v = createTokenVerifier({ issuer: DEV_ISSUER, audience: [DEV_AUDIENCE], jwksFile: out.jwks_file, groupsClaim: 'groups', algorithms: ['ES256'], maxTokenTtlMs: 3_600_000, clockToleranceS: 5 });
    const res = await v.verify(out.token);
    expect(res.ok && res.identity).toMatchObject({ sub: 'agent-7', groups: ['data-reader', 'x'], actor: 'alice' });
    expect(res.ok && res.expiresAt - Date.now()).toBeGreaterThan(9 * 60_000);
    const plain = await runCli(['token', 'mint', '--sub', 'a', '--state', state]);
    expect(plain.out.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await runCli(['token', 'mint', '--sub', 'a', '--ttl', 'soon', '--state', state])).code).toBe(2);
    expect((await runCli(['token', 'mint', '--state', state])).code).toBe(2);
  });
});

describe('hoop sessions', () => {
  it('lists sessions and shows a timeline; corrupt lines are errors unless --skip-bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-cli-sessions-'));
    const rec = await createSessionRecorder({ dir }).open({
      session_id: 'sess-9',
      identity: { sub: 'agent-7', groups: ['data-reader'], actor: 'alice', claims: {} },
      resource: { kind: 'postgres', name: 'prod-main', labels: {} },
      client_addr: '127.0.0.1:4000',
      started_at: '2026-11-26T01:00:00.000Z',
    });
    rec.statement({ time: '2026-11-26T01:00:01.000Z', text: 'SELECT email FROM customers', protocol: 'simple', verdict: 'mask', reasons: ['prod.db.mask_customer_pii'], masks: ['public.customers.email'], outcome: 'executed', rows: 5 });
    rec.statement({ time: '2026-11-26T01:00:02.000Z', text: 'DELETE FROM customers', protocol: 'simple', verdict: 'block', reasons: ['prod.db.no_unbounded_writes'], masks: [], outcome: 'blocked', error: 'UPDATE/DELETE without WHERE is not allowed' });
    await rec.close('2026-11-26T01:00:10.000Z');

    const list = await runCli(['sessions', 'list', dir]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/2026-11-26T01:00:00.000Z\s+sess-9\s+agent-7 \(for alice\)\s+prod-main\s+10\.0s\s+2\s+mask:1 block:1/);
    const json = JSON.parse((await runCli(['sessions', 'list', dir, '--json'])).out);
    expect(json).toMatchObject([{ session_id: 'sess-9', statements: 2, verdicts: { mask: 1, block: 1 } }]);

    const show = await runCli(['sessions', 'show', rec.file]);
    expect(show.out).toContain('session sess-9: agent-7 (for alice) [data-reader] on postgres/prod-main');
    expect(show.out).toMatch(/block\s+blocked\s+DELETE FROM customers\n\s+rules prod.db.no_unbounded_writes; error: UPDATE\/DELETE without WHERE is not allowed/);

    appendFileSync(rec.file, '{"type":"statement", broken\n');
    const bad = await runCli(['sessions', 'show', rec.file]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`${rec.file}:5: not valid JSON`);
    const skipped = await runCli(['sessions', 'show', rec.file, '--skip-bad']);
    expect(skipped.code).toBe(0);
    expect(skipped.err).toContain(`${rec.file}:5:`);

    const future = join(dir, 'future.jsonl');
    writeFileSync(future, '{"type":"header","version":9}\n');
    expect((await runCli(['sessions', 'show', future])).code).toBe(2);
  });
});
