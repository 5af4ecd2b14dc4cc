// The approvals page (/ui/) in a real browser (Debian's Chromium, driven by playwright-core)
// against the real gateway: a held UPDATE from psql appears on the page while the page is open
// (live, over SSE), the approver approves it and psql completes; a requester signed in with a
// one-time link from `hoop approvals open` sees their own request as not approvable; a deny with
// a reason shows that reason in psql's error. With HOOP_UI_SCREENSHOTS=DIR the pages are saved
// there (docs/approvals-page*.png were made so).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../testing/browser.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { runCli } from '../../cli/testing.ts';
import { openApprovalService, type FileApprovalService } from '../approvals/index.ts';
import { createTokenVerifier } from '../identity/index.ts';
import { createResultMasker, type GatewayResultMasker } from '../masking/index.ts';
import { createMetrics } from '../metrics.ts';
import { run, startTestGateway, type TestGateway } from '../postgres/test-support.ts';
import { startAdminServer, type AdminServer } from './index.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, utility
  allow
}

rule writes_need_dba {
  match sql insert, update, delete
  approve by group "dba" within 5m
}

rule mask_emails {
  match sql update on tables ["public.orders"]
  mask column "customers.email" with email
}
`;

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let admin: AdminServer;
let browser: Browser;
let masker: GatewayResultMasker;
const shots = process.env.HOOP_UI_SCREENSHOTS;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 9) g; ALTER TABLE orders OWNER TO app;", 'app');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-ui-')), { pollMs: 50 });
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { approvals, masker });
  admin = await startAdminServer({ address: '127.0.0.1:0', approvals, verifier: createTokenVerifier(gw.config.identity), metrics: createMetrics(), audit: gw.audit });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await gw?.close();
  await masker?.close();
  await approvals?.close();
  await cluster?.stop();
});

async function signInWithToken(token: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${admin.url}/ui/`);
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#live.on');
  return page;
}

/** psql through the gateway; resolves when psql exits (a held statement keeps it waiting). */
const psql = (token: string, sql: string) => run('psql', [gw.conninfo(token), '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

const note = (id: number) => cluster.psql(`SELECT note FROM orders WHERE id = ${id}`, 'app').trim();

describe('the approvals page', () => {
  it('a held UPDATE appears live; the approver sees who, what and why, approves, and psql completes', async () => {
    const page = await signInWithToken(await gw.token({ sub: 'dba-1', groups: ['dba'] }));
    expect(await page.textContent('[data-testid=who]')).toBe('dba-1 (dba)');
    const agent = await gw.issuer.mint({ sub: 'agent-7', groups: ['data-writer'], actor: 'alice' });
    const held = psql(agent, "UPDATE orders SET note = 'shipped' WHERE id = 1");

    const card = page.locator('article.card', { hasText: "UPDATE orders SET note = 'shipped' WHERE id = 1" });
    await card.waitFor();
    const text = await card.innerText();
    expect(text).toContain('agent-7 (for alice)');
    expect(text).toContain('postgres/prod-main');
    expect(text).toMatch(/t\.writes_need_dba \(test\.hoop:\d+:\d+\)/);
    expect(text).toContain('public.orders');
    expect(text).toContain('column public.customers.email with email');
    expect(text).toMatch(/limits\s+none/);
    // The statement is highlighted, and shown exactly as sent.
    expect(await card.locator('pre.statement span.kw').allTextContents()).toEqual(['UPDATE', 'SET', 'WHERE']);
    expect(await card.locator('pre.statement span.str').allTextContents()).toEqual(["'shipped'"]);
    expect(await card.locator('pre.statement').textContent()).toBe("UPDATE orders SET note = 'shipped' WHERE id = 1");
    if (shots) await page.screenshot({ path: join(shots, 'approvals-page.png'), fullPage: true });

    await card.locator('input.reason').fill('ticket OPS-7');
    await card.locator('button.approve').click();
    const r = await held;
    expect(r.stderr).toContain('waiting for approval');
    expect(r.stdout).toContain('UPDATE 1');
    expect(r.code).toBe(0);
    expect(note(1)).toBe('shipped');

    // Decided elsewhere too: the history row, live.
    const row = page.locator('#history tr', { hasText: "note = 'shipped'" });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/(approved|consumed)[\s\S]*dba-1[\s\S]*ticket OPS-7/);
    await expect.poll(() => page.locator('article.card', { hasText: "'shipped'" }).count()).toBe(0);
    await page.close();
  });

  it('a requester signed in with `hoop approvals open` sees their own request, never as approvable', async () => {
    // The requester is even in the approver group: still not theirs to decide.
    const mine = await gw.issuer.mint({ sub: 'agent-9', groups: ['dba'] });
    const open = await runCli(['approvals', 'open', '--admin', admin.url], { HOOP_TOKEN: mine });
    expect(open.code).toBe(0);
    const link = open.out.split('\n')[0]!;
    expect(link).toMatch(new RegExp(`^${admin.url}/ui/#code=[A-Za-z0-9_-]{32}$`));

    const page = await browser.newPage();
    await page.goto(link);
    await page.waitForSelector('#live.on');
    expect(await page.textContent('[data-testid=who]')).toBe('agent-9 (dba)');
    // The code left the address bar, and a second use of the link signs nobody in.
    expect(page.url()).toBe(`${admin.url}/ui/`);
    const again = await browser.newPage();
    await again.goto(link);
    await again.waitForSelector('#error:not([hidden])');
    expect(await again.textContent('#error')).toContain('unknown, used or expired');
    expect(await again.isVisible('#signin')).toBe(true);
    await again.close();

    const held = psql(mine, "UPDATE orders SET note = 'mine' WHERE id = 2");
    const card = page.locator('article.card', { hasText: "note = 'mine'" });
    await card.waitFor();
    expect(await card.locator('button.approve').count()).toBe(0);
    expect(await card.locator('button.deny').count()).toBe(0);
    expect(await card.locator('[data-testid=not-approvable]').textContent()).toBe('You requested this: a member of dba who is not you must decide it.');
    if (shots) await page.screenshot({ path: join(shots, 'approvals-page-requester.png'), fullPage: true });

    // Someone else decides; the requester's page follows.
    const approver = await signInWithToken(await gw.token({ sub: 'dba-2', groups: ['dba'] }));
    await approver.locator('article.card', { hasText: "note = 'mine'" }).locator('button.approve').click();
    expect((await held).code).toBe(0);
    await page.locator('#history tr', { hasText: "note = 'mine'" }).waitFor();
    await approver.close();
    await page.close();
  });

  it('a deny with a reason reaches psql\'s error', async () => {
    const page = await signInWithToken(await gw.token({ sub: 'dba-1', groups: ['dba'] }));
    const held = psql(await gw.token({ sub: 'agent-7', groups: ['data-writer'] }), 'DELETE FROM orders WHERE id = 3');
    const card = page.locator('article.card', { hasText: 'DELETE FROM orders WHERE id = 3' });
    await card.waitFor();
    await card.locator('input.reason').fill('not during the freeze');
    await card.locator('button.deny').click();
    const r = await held;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/hoop: approval apr_[A-Za-z0-9_-]+ denied: not during the freeze/);
    expect(note(3)).toBe('new');
    const row = page.locator('#history tr', { hasText: 'DELETE FROM orders WHERE id = 3' });
    await row.waitFor();
    expect(await row.innerText()).toMatch(/denied[\s\S]*dba-1[\s\S]*not during the freeze/);
    await page.close();
  });

  it('serves the page with a strict content security policy, and refuses what it cannot use', async () => {
    const res = await fetch(`${admin.url}/ui/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect((await fetch(`${admin.url}/ui/../metrics`)).status).toBe(200); // URL normalisation: it is /metrics
    expect((await fetch(`${admin.url}/ui/nope.js`)).status).toBe(404);
    const bad = await fetch(`${admin.url}/ui/session`, { method: 'POST', body: JSON.stringify({ token: 'not-a-jwt' }) });
    expect(bad.status).toBe(401);
    const events = await fetch(`${admin.url}/approvals/events`, { headers: { authorization: 'Bearer hoopui_nope' } });
    expect(events.status).toBe(401);
  });
});
