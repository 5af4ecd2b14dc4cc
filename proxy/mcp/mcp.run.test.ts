// The `run` tool: a command on an ssh resource through the MCP front door, against a real sshd:
// decided by the shell classifier and the policy like `ssh bastion-1@gateway CMD`, its output
// masked by the policy's detectors, blocked commands refused as tool errors naming the rule,
// approvals through wait_for_approval, audited with `front_door: mcp`.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { sshResourceOf, startMcpGateway, structured, textOf, type McpGateway } from './mcp.test-support.ts';

const POLICY = `package t
default block "not allowed"

rule reads {
  on ssh("bastion-*")
  match shell ["echo", "cat", "ls"]
  allow
}

rule mask_cards {
  on ssh("bastion-*")
  mask detect credit_card with redact
}

rule sleeps_are_short {
  on ssh("bastion-*")
  match shell ["sleep"]
  allow
  limit time 1s
}

rule pwd_is_rated {
  on ssh("bastion-*")
  match shell ["pwd"]
  allow
  limit rate 2 per 1h
}

rule touch_needs_ops {
  on ssh("bastion-*")
  match shell ["touch"]
  approve by group "ops" within 5m
}
`;

let cluster: Cluster;
let sshd: Sshd;
let gw: McpGateway;
let client: Client;

beforeAll(async () => {
  [cluster, sshd] = await Promise.all([startCluster(), startSshd()]);
  writeFileSync(join(sshd.scratch, 'cards.txt'), 'order 7: card 4111111111111111 paid\n');
  writeFileSync(join(sshd.scratch, 'keep.txt'), 'keep me\n');
  gw = await startMcpGateway(cluster, POLICY, (c) => {
    c.resources.push(sshResourceOf(sshd));
  });
  client = await gw.http(await gw.token());
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([cluster?.stop(), sshd?.stop()]);
});

describe('run', () => {
  it('is offered for ssh resources', async () => {
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('run');
    const r = await client.callTool({ name: 'list_resources', arguments: {} });
    expect(structured<{ resources: { name: string; tools: string[] }[] }>(r).resources.find((x) => x.name === 'bastion-1')!.tools).toEqual(['run']);
  });

  it('runs an allowed command and masks what the detectors find', async () => {
    const r = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: `cat ${join(sshd.scratch, 'cards.txt')} && echo done` } });
    expect(r.isError, textOf(r)).toBeFalsy();
    const s = structured<{ exit_code: number; stdout: string }>(r);
    expect(s.exit_code).toBe(0);
    expect(s.stdout).toContain('order 7: card ');
    expect(s.stdout).toContain('done');
    expect(JSON.stringify(r)).not.toContain('4111111111111111');
  });

  it('ends a command past its limit time: exit code 124 and the rule in stderr (answered even where sshd cannot signal it: this one logs in as root)', async () => {
    const r = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: 'sleep 36.5' } });
    const s = structured<{ exit_code: number; stderr: string }>(r);
    expect(s.exit_code, textOf(r)).toBe(124);
    expect(s.stderr).toContain('hoop: command ended: it ran longer than 1s, the limit time of rule t.sleeps_are_short\n');
  });

  it('refuses a command with a program the policy does not allow, naming the rule; nothing runs', async () => {
    const keep = join(sshd.scratch, 'keep.txt');
    const r = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: `echo hi; rm -f ${keep}` } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/hoop: blocked.*not allowed/);
    expect(existsSync(keep)).toBe(true);
    const hidden = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: `echo $(rm -f ${keep})` } });
    expect(hidden.isError).toBe(true);
    expect(existsSync(keep)).toBe(true);
  });

  it('an approval is returned at once and wait_for_approval runs the command once approved', async () => {
    const file = join(sshd.scratch, 'touched');
    const r = await client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: `touch ${file}` } });
    const s = structured<{ status: string; approval_id: string }>(r);
    expect(s.status, textOf(r)).toBe('approval_required');
    expect(existsSync(file)).toBe(false);
    const waiting = client.callTool({ name: 'wait_for_approval', arguments: { approval_id: s.approval_id, timeout_seconds: 15 } });
    expect((await gw.running.approvals.decide(s.approval_id, { sub: 'ops-1', groups: ['ops'], claims: {} }, 'approve')).ok).toBe(true);
    const done = await waiting;
    expect(done.isError, textOf(done)).toBeFalsy();
    expect(existsSync(file)).toBe(true);
  });

  it("counts each call against the policy's limit rate (the gateway's one rate store): the call past it is refused, naming the rule", async () => {
    const pwd = () => client.callTool({ name: 'run', arguments: { resource: 'bastion-1', command: 'pwd' } });
    for (let i = 0; i < 2; i++) {
      const ok = await pwd();
      expect(ok.isError, textOf(ok)).toBeFalsy();
    }
    const refused = await pwd();
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/hoop: rate limit exceeded: rule t\.pwd_is_rated allows 2 requests per 1h; retry in/);
    const blocked = gw.auditRecords().filter((r) => r.type === 'decision' && r.outcome === 'blocked' && (r.statement as { normalized?: string } | undefined)?.normalized === 'pwd');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toMatchObject({ front_door: 'mcp', reason: expect.stringMatching(/^rate limit: rule t\.pwd_is_rated/) });
  });

  it('audits each command with front_door: mcp, and records it as protocol mcp', async () => {
    const recs = gw.auditRecords().filter((r) => r.type === 'decision' && (r.resource as { name?: string } | undefined)?.name === 'bastion-1');
    expect(recs.length).toBeGreaterThan(0);
    expect(recs.every((r) => r.front_door === 'mcp')).toBe(true);
    const dir = gw.config.recording.dir;
    const recorded = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>))
        .filter((l) => l.text === 'pwd');
    // The recorder writes in batches: wait for the batch, not for a fixed time.
    await expect.poll(() => recorded().length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(recorded().every((l) => l.protocol === 'mcp')).toBe(true);
  });
});
