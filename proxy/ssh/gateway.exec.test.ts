// Exec channels through the SSH gateway with the real OpenSSH client against a real sshd.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { startSshTestGateway, type SshTestGateway } from './test-support.ts';

const POLICY = `package t
default block "no rule allows this"

rule readers {
  on ssh("bastion-*")
  match shell ["ls", "cat", "echo", "printf", "head", "sh", "exit", "kill", "sleep", "wc", "true", "dd", "sha256sum", "md5sum", "seq"]
  allow
}
`;

describe('ssh exec through the gateway', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  let token: string;
  beforeAll(async () => {
    sshd = await startSshd();
    gw = await startSshTestGateway(sshd, POLICY);
    token = await gw.token();
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('runs an allowed command upstream and relays stdout, stderr and the exit status', async () => {
    const r = await gw.ssh(token, `echo out; echo err >&2; exit 3`);
    // `>&2` is a redirect to a file descriptor, not a write target.
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.code).toBe(3);
  });

  it('relays every exit status 0-255', async () => {
    const codes = [0, 1, 2, 42, 125, 127, 128, 200, 254, 255];
    for (const c of codes) {
      const r = await gw.ssh(token, `exit ${c}`);
      expect(r.code, `exit ${c}`).toBe(c);
    }
  });

  it('blocks a command the policy does not allow: stderr names the rule, exit 126, nothing runs upstream', async () => {
    const r = await gw.ssh(token, `rm -rf ${sshd.scratch}`);
    expect(r.code).toBe(126);
    expect(r.stderr).toBe('hoop: blocked: no rule allows this\n');
    expect(r.stdout).toBe('');
    const d = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized === `rm -rf ${sshd.scratch}`);
    expect(d).toMatchObject([{ verdict: 'block', outcome: 'blocked', resource: { kind: 'ssh', name: 'bastion-1' }, identity: { sub: 'agent-7' } }]);
  });

  it('streams stdin to the command and the output back with a checksum (10 MB)', async () => {
    const input = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7919) & 0xff;
    const r = await gw.ssh(token, 'cat', { input });
    expect(r.code).toBe(0);
    expect(createHash('sha256').update(r.stdoutBytes).digest('hex')).toBe(createHash('sha256').update(input).digest('hex'));
  });

  it('relays a signal the command died of', async () => {
    const r = await gw.ssh(token, 'kill -TERM $$');
    // OpenSSH's client exits 255 when the remote command was killed by a signal.
    expect(r.code).toBe(255);
  });
});
