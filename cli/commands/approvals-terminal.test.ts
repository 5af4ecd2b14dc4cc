// Approver terminal injection (issue 14 item 10): a statement held for approval carries escape
// sequences, a carriage return, C1 controls and a bidi override in a comment, and the agent's `sub`
// an escape sequence. The real `hoop` CLI (a separate process) talking to the real admin API of a
// real gateway must print none of them raw: not in `approvals list` (human or --json), not in
// `approvals approve`, `sessions show` or `policy dry-run`.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminServer, type AdminServer } from '../../proxy/admin/index.ts';
import { openApprovalService, type FileApprovalService } from '../../proxy/approvals/index.ts';
import { createTokenVerifier } from '../../proxy/identity/index.ts';
import { createMetrics } from '../../proxy/metrics.ts';
import { WRITES_NEED_DBA, gatewayConfig, startTestGateway, type TestGateway } from '../../proxy/postgres/test-support.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';

const POLICY = WRITES_NEED_DBA;

/** What a terminal would act on: C0 but newline, DEL, C1, bidi controls, line separators. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

const SUB = 'agent-\u001b]0;pwned\u0007x';
// Erases the line, moves up and shows a harmless SELECT over the real DELETE; reorders with RLO; C1 CSI.
const HIDDEN = '\u001b[2K\r\u001b[1ASELECT 1; -- looks harmless \u202egnp.live\u202c \u009b31m\u007f';
const STATEMENT = `DELETE FROM orders WHERE id = 1 /* ${HIDDEN} */ /* zero\u200bwidth */`;

let cluster: Cluster;
let gw: TestGateway;
let approvals: FileApprovalService;
let admin: AdminServer;
let dbaToken: string;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2); ALTER TABLE orders OWNER TO app;', 'app');
  approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-appr-term-')), { pollMs: 50 });
  gw = await startTestGateway(cluster, POLICY, { approvals });
  const identity = gatewayConfig(cluster, gw.stateDir, gw.issuer, gw.resourceName).identity;
  admin = await startAdminServer({ address: '127.0.0.1:0', approvals, verifier: createTokenVerifier(identity), metrics: createMetrics(), audit: gw.audit });
  dbaToken = await gw.issuer.mint({ sub: 'dba-1', groups: ['dba'] });
});

afterAll(async () => {
  await admin?.close();
  await gw?.close();
  await approvals?.close();
  await cluster?.stop();
});

/** The `hoop` CLI as an approver runs it: its own process. */
function hoop(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function pendingId(): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const p = await approvals.list({ status: 'pending' });
    if (p.length > 0) return p[0]!.id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no pending approval');
}

describe('hoop approvals and friends print agents\' text with every control character escaped', () => {
  it('list, list --json, approve, sessions show and policy dry-run', async () => {
    const c = new pg.Client(gw.pgConfig(await gw.issuer.mint({ sub: SUB, groups: ['data-writer'] })));
    await c.connect();
    try {
      const held = c.query(STATEMENT);
      held.catch(() => undefined);
      const id = await pendingId();

      const list = await hoop(['approvals', 'list', '--admin', admin.url], { HOOP_TOKEN: dbaToken });
      expect(list.code, list.err).toBe(0);
      expect(list.out).not.toMatch(RAW_CONTROL);
      expect(list.out).toContain('DELETE FROM orders WHERE id = 1 /* \\x1b[2K \\x1b[1ASELECT 1; -- looks harmless \\u202egnp.live\\u202c \\x9b31m\\x7f */ /* zero\\u200bwidth */');
      expect(list.out).toContain('agent-\\x1b]0;pwned\\x07x on postgres/prod-main');

      const json = await hoop(['approvals', 'list', '--admin', admin.url, '--json'], { HOOP_TOKEN: dbaToken });
      expect(json.out).not.toMatch(RAW_CONTROL);
      expect(JSON.parse(json.out)).toMatchObject([{ id, sub: SUB, statement: STATEMENT }]);

      const approved = await hoop(['approvals', 'approve', id, '--admin', admin.url, '--reason', 'ok \u001b[8m'], { HOOP_TOKEN: dbaToken });
      expect(approved.code, approved.err).toBe(0);
      expect(approved.out).not.toMatch(RAW_CONTROL);
      expect(approved.out).toContain(`${id}: approved (agent-\\x1b]0;pwned\\x07x on postgres/prod-main)`);
      await held;
    } finally {
      await c.end();
    }
    expect(cluster.psql('SELECT count(*) FROM orders', 'app').trim()).toBe('1');

    const sessions = join(gw.stateDir, 'sessions');
    const file = readdirSync(sessions).map((f) => join(sessions, f))[0]!;
    const show = await hoop(['sessions', 'show', file]);
    expect(show.code, show.err).toBe(0);
    expect(show.out).not.toMatch(RAW_CONTROL);
    expect(show.out).toContain('\\u202egnp.live\\u202c');
    const list = await hoop(['sessions', 'list', sessions]);
    expect(list.out).not.toMatch(RAW_CONTROL);
    expect(list.out).toContain('agent-\\x1b]0;pwned\\x07x');

    const candidate = join(mkdtempSync(join(tmpdir(), 'hoop-cand-')), 'candidate.hoop');
    writeFileSync(candidate, 'package t\ndefault block "frozen"\n');
    const dry = await hoop(['policy', 'dry-run', '--policy', candidate, '--sessions', sessions]);
    expect(dry.out, dry.err).toContain('DELETE FROM orders');
    expect(dry.out).not.toMatch(RAW_CONTROL);
    expect(dry.out).toContain('\\x1b[2K');
  }, 240_000); // seven CLI processes, each starting tsx: slow on a loaded machine
});
