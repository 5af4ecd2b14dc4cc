// The SSH front door as `hoop gateway` runs it: from a hoop.yaml (listen.ssh, kind: ssh resources
// with a gateway-held key and a pinned host key), a host key generated into the state directory on
// first start and kept, the upstream's host key verified (a changed key is refused and audited),
// an upstream that is down, forged tokens and garbage on the port.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, type Sshd } from '../../testing/sshd.ts';
import { freePort } from '../../testing/pg-cluster.ts';
import { loadConfigFile } from '../config.ts';
import { openDevIssuer, type DevIssuer } from '../identity/index.ts';
import { runGateway, type RunningGateway } from '../run.ts';
import { runWithToken } from './test-support.ts';

describe('hoop gateway with listen.ssh', () => {
  let sshd: Sshd;
  let dir: string;
  let issuer: DevIssuer;
  let running: RunningGateway;
  let configFile: string;
  let sshArgs: (resource: string, extra?: string[]) => string[];

  const start = async () => {
    const loaded = loadConfigFile(configFile, { env: { ...process.env, BASTION_USER: sshd.user } });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const r = await runGateway(loaded.config, { log: () => undefined });
    if (!r.ok) throw new Error(r.errors.join('\n'));
    return r.running;
  };

  beforeAll(async () => {
    sshd = await startSshd();
    dir = mkdtempSync(join(tmpdir(), 'hoop-ssh-run-'));
    issuer = await openDevIssuer(join(dir, 'issuer'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'ssh.hoop'), `package ops
default block "no rule allows this"

rule read_only {
  on ssh("bastion-*")
  when group "ops"
  match shell ["echo", "ls", "cat", "whoami"]
  allow
}
`);
    const other = generateKey(join(dir, 'other_host')).split(' ').slice(0, 2).join(' ');
    const deadPort = await freePort();
    const sshPort = await freePort();
    configFile = join(dir, 'hoop.yaml');
    writeFileSync(configFile, `listen: { postgres: "127.0.0.1:0", ssh: "127.0.0.1:${sshPort}" }
identity: { issuer: "${issuer.issuer}", audience: "${issuer.audience}", jwks_file: "${issuer.jwksFile}", algorithms: [ES256] }
policy: ./policies
state: ./state
resources:
  - { name: bastion-1, kind: ssh, upstream: "ssh://127.0.0.1:${sshd.port}", user_env: BASTION_USER, key_file: "${sshd.clientKeyFile}", host_key: "${sshd.hostKey}" }
  - { name: bastion-moved, kind: ssh, upstream: "ssh://127.0.0.1:${sshd.port}", user_env: BASTION_USER, key_file: "${sshd.clientKeyFile}", host_key: "${other}" }
  - { name: bastion-down, kind: ssh, upstream: "ssh://127.0.0.1:${deadPort}", user_env: BASTION_USER, key_file: "${sshd.clientKeyFile}", host_key: "${sshd.hostKey}" }
`);
    running = await start();
    const pub = readFileSync(join(dir, 'state', 'ssh_host_ed25519_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${sshPort} ${pub}\n`);
    sshArgs = (resource, extra = []) => [
      'ssh', '-F', '/dev/null', '-p', String(sshPort), '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', '-o', 'LogLevel=ERROR',
      ...extra, `${resource}@127.0.0.1`,
    ];
  });
  afterAll(async () => {
    await running?.close();
    await sshd?.stop();
  });

  const audit = () => readFileSync(join(dir, 'state', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  it('serves ssh with a host key it generated on first start, and keeps that key across restarts', async () => {
    const token = await issuer.mint({ sub: 'agent-1', groups: ['ops'] });
    const r = await runWithToken(token, [...sshArgs('bastion-1'), 'echo hello from $(whoami)']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`hello from ${sshd.user}\n`);
    expect(running.ssh?.hostKey).toMatch(/^ssh-ed25519 /);
    const before = running.ssh!.hostKey;
    await running.close();
    running = await start();
    expect(running.ssh!.hostKey).toBe(before);
    // StrictHostKeyChecking=yes against the pinned key: the restarted gateway is the same host.
    const again = await runWithToken(token, [...sshArgs('bastion-1'), 'echo again']);
    expect(again.stdout).toBe('again\n');
  });

  it('refuses an upstream whose host key is not the pinned one, and audits why', async () => {
    const token = await issuer.mint({ sub: 'agent-1', groups: ['ops'] });
    const r = await runWithToken(token, [...sshArgs('bastion-moved'), 'echo should not run']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/hoop: the upstream 127\.0\.0\.1:\d+ presented host key ssh-ed25519 \S+, which is not the pinned one/);
    const refused = audit().filter((x) => x.type === 'connection_refused' && String(x.reason).startsWith('upstream_host_key:'));
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ resource: { kind: 'ssh', name: 'bastion-moved' } });
  });

  it('says so when the upstream is down, and the gateway keeps serving', async () => {
    const token = await issuer.mint({ sub: 'agent-1', groups: ['ops'] });
    const r = await runWithToken(token, [...sshArgs('bastion-down'), 'echo x']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/hoop: cannot reach the upstream 127\.0\.0\.1:\d+/);
    const ok = await runWithToken(token, [...sshArgs('bastion-1'), 'echo still up']);
    expect(ok.stdout).toBe('still up\n');
  });

  it('refuses forged, expired and foreign tokens, unknown resources and garbage, each audited', async () => {
    const good = await issuer.mint({ sub: 'agent-1', groups: ['ops'] });
    const [h, p] = good.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    const expired = await issuer.mint({ sub: 'agent-2', groups: ['ops'], ttlMs: 1000, now: Date.now() - 3_600_000 });
    const stranger = await (await openDevIssuer(join(dir, 'stranger'))).mint({ sub: 'agent-3', groups: ['ops'] });
    for (const token of [forged, expired, stranger, 'not-a-jwt']) {
      const r = await runWithToken(token, [...sshArgs('bastion-1'), 'echo no'], { timeoutMs: 20_000 });
      expect(r.signal, token.slice(0, 20)).toBeUndefined();
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
    }
    const unknown = await runWithToken(good, [...sshArgs('no-such-box'), 'echo no'], { timeoutMs: 20_000 });
    expect(unknown.signal).toBeUndefined();
    expect(unknown.code).toBe(255);
    // Random bytes on the port end that connection only.
    await new Promise<void>((resolve) => {
      const s = connect(running.ssh!.listener.port, '127.0.0.1', () => s.end(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff\xfe garbage')));
      // Read what the gateway sends (its identification), so the socket sees the gateway close it.
      s.resume();
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    const ok = await runWithToken(good, [...sshArgs('bastion-1'), 'echo after'], { timeoutMs: 20_000 });
    expect(ok.stdout).toBe('after\n');
    const reasons = audit().filter((x) => x.type === 'connection_refused').map((x) => String(x.reason).split(':')[0]);
    expect(reasons).toEqual(expect.arrayContaining(['bad_signature', 'expired', 'unknown_resource']));
    expect(reasons.length).toBeGreaterThanOrEqual(5);
  });
});
