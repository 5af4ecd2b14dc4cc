// `hoop gateway --config hoop.yaml` as a user runs it: a separate process, a YAML config,
// credentials from the environment, psql through it, a policy change picked up on SIGHUP, a clean
// exit on SIGTERM.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDevIssuer, type DevIssuer } from '../../proxy/identity/index.ts';
import { run } from '../../proxy/postgres/test-support.ts';
import { freePort, startCluster, type Cluster } from '../../testing/pg-cluster.ts';

const READ_ONLY = `package t
default block "read-only for now"
rule reads {
  match sql read
  allow
}
`;
const READ_WRITE = `package t
default block "nope"
rule rw {
  match sql read, write
  allow
}
`;

let cluster: Cluster;
let dir: string;
let issuer: DevIssuer;
let child: ChildProcess | undefined;
let stderr = '';

beforeAll(async () => {
  cluster = await startCluster();
  dir = mkdtempSync(join(tmpdir(), 'hoop-cli-gw-'));
  issuer = await openDevIssuer(dir);
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'main.hoop'), READ_ONLY);
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function config(port: number, adminPort: number): string {
  return `listen:
  postgres: 127.0.0.1:${port}
  admin: 127.0.0.1:${adminPort}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
  max_token_ttl: 1h
resources:
  - name: prod-main
    kind: postgres
    upstream: postgres://127.0.0.1:${cluster.port}/app
    user_env: TEST_PG_USER
    password_env: TEST_PG_PASSWORD
policy: ./policies
state: ./state
`;
}

async function waitFor(pred: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out; stderr: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('hoop gateway', () => {
  it('serves psql, reloads the policy on SIGHUP, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    writeFileSync(join(dir, 'hoop.yaml'), config(port, adminPort));
    child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), 'gateway', '--config', join(dir, 'hoop.yaml')], {
      env: { ...process.env, TEST_PG_USER: cluster.appUser.user, TEST_PG_PASSWORD: cluster.appUser.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    await waitFor(() => stderr.includes('postgres on'));
    const token = await issuer.mint({ sub: 'agent-7', groups: ['data-reader'] });
    const psql = (sql: string) => run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', sql, `host=127.0.0.1 port=${port} dbname=prod-main user=agent-7 password=${token} sslmode=disable`]);

    expect(await psql('SELECT 40 + 2')).toMatchObject({ code: 0, stdout: '42\n' });
    // /healthz covers the policy and the audit log (no statement runs without either).
    const health = await (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).json();
    expect(health).toMatchObject({ status: 'ok', checks: { policy: expect.stringMatching(/^ok /), audit: expect.stringMatching(/^ok, record \d+, synced/) } });
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('hoop_audit_healthy 1');
    expect(metrics).toMatch(/^hoop_classifications_in_flight 0$/m);
    expect(metrics).toMatch(/^hoop_audit_sync_inline [01]$/m);
    expect(metrics).toMatch(/^# TYPE hoop_audit_sync_seconds gauge$/m);
    const refused = await psql('CREATE TABLE t_cli (x int)');
    expect(refused.stderr).toContain('hoop: blocked: read-only for now');

    writeFileSync(join(dir, 'policies', 'main.hoop'), READ_WRITE);
    child.kill('SIGHUP');
    let created = await psql('CREATE TABLE t_cli (x int)');
    for (let i = 0; i < 40 && created.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      created = await psql('CREATE TABLE t_cli (x int)');
    }
    expect(created).toMatchObject({ code: 0 });

    // An invalid policy is rejected and the previous one stays.
    writeFileSync(join(dir, 'policies', 'main.hoop'), 'package t\nrule broken {');
    child.kill('SIGHUP');
    await waitFor(() => stderr.includes('policy reload rejected'));
    const inserted = await psql('INSERT INTO t_cli VALUES (1)');
    expect(inserted, `${inserted.stderr}\ngateway log:\n${stderr}`).toMatchObject({ code: 0 });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    child = undefined;
  });
});
