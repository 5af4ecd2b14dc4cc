// Verdicts on the SSH wire: the shell bypass corpus never reaches the upstream under a read-only
// policy (and the connection stays usable after each refusal), `mask detect` keeps sentinel
// secrets out of every byte of stdout and stderr even when written a byte at a time, and approvals
// hold or return a command until an approver decides through the approval service.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HIDDEN } from '../../stdlib/shell/corpus.ts';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import type { Identity } from '../../stdlib/facts.ts';
import { connectThrough, execOn, startSshTestGateway, type SshTestGateway } from './test-support.ts';

const READ_ONLY = `package t
default block "this host is read-only"

rule read_only {
  on ssh("bastion-*")
  match shell ["ls", "cat", "grep", "tail", "df"]
  if \`size(shell.redirects) == 0\`
  allow
}
`;



describe('the shell bypass corpus against a read-only ssh resource', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  let log: string;
  beforeAll(async () => {
    // The upstream never runs what it is sent: sshd's ForceCommand writes each command it would
    // have run to a log, so "nothing reached the upstream" is checked exactly and nothing in the
    // corpus (rm -rf /, ...) can harm the machine if the gateway let it through.
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'hoop-canary-'));
    log = join(dir, 'commands.log');
    writeFileSync(join(dir, 'record.sh'), `#!/bin/sh\nprintf '%s\\n---\\n' "$SSH_ORIGINAL_COMMAND" >> '${log}'\n`, { mode: 0o755 });
    sshd = await startSshd({ config: [`ForceCommand ${join(dir, 'record.sh')}`] });
    gw = await startSshTestGateway(sshd, READ_ONLY);
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('refuses every hidden program with exit 126, the upstream runs nothing, and the connection keeps working', async () => {
    const conn = await connectThrough(gw, await gw.token());
    const ran: string[] = [];
    for (const [line] of HIDDEN) {
      const r = await execOn(conn, line);
      if (r.code !== 126 || !r.stderr.startsWith('hoop: blocked')) ran.push(`${line} → ${r.code} ${r.stderr}`);
    }
    expect(ran).toEqual([]);
    expect(existsSync(log) ? readFileSync(log, 'utf8') : '').toBe('');
    // Still usable: an allowed command reaches the upstream on the same connection.
    const ok = await execOn(conn, 'ls -l /');
    expect(ok.code).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('ls -l /\n---\n');
    conn.end();
    // Newlines, `;`, `$(...)` and environment tricks are lines like any other: each is one exec.
    expect(HIDDEN.some(([l]) => l.includes('$('))).toBe(true);
  });
});

describe('mask detect on exec output', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  const CARD = '4111 1111 1111 1111';
  const AWS = 'AKIAIOSFODNN7EXAMPLE';
  beforeAll(async () => {
    sshd = await startSshd();
    writeFileSync(join(sshd.scratch, 'secrets.txt'), `card ${CARD}\naws_access_key_id = ${AWS}\nplain line\n`);
    gw = await startSshTestGateway(sshd, `package t
default block "no"

rule ops {
  on ssh
  match shell ["cat", "dd", "printf", "sh"]
  allow
}

rule files {
  on ssh
  match sftp read
  allow
}

rule mask_secrets {
  on ssh
  mask detect credit_card, api_key with redact
}
`);
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('never sends a sentinel in any byte of stdout or stderr, even written one byte at a time', async () => {
    const token = await gw.token();
    const file = join(sshd.scratch, 'secrets.txt');
    for (const command of [`cat ${file}`, `dd if=${file} bs=1 status=none`, `dd if=${file} bs=1 status=none of=/dev/stderr`, `printf '%s' '${CARD.slice(0, 7)}'; printf '%s\\n' '${CARD.slice(7)}'`]) {
      const r = await gw.ssh(token, command);
      const all = r.stdoutBytes.toString('latin1') + r.stderr;
      expect(all, command).not.toContain(CARD);
      expect(all, command).not.toContain(CARD.replace(/ /g, ''));
      expect(all, command).not.toContain(AWS);
      expect(all, command).toContain('[REDACTED]');
      expect(r.code, command).toBe(0);
    }
    const plain = await gw.ssh(token, `cat ${file}`);
    expect(plain.stdout).toBe('card [REDACTED]\naws_access_key_id = [REDACTED]\nplain line\n');
  });

  it('refuses a file transfer from a resource whose verdict carries masks, and says why', async () => {
    const token = await gw.token();
    const r = await gw.ssh(token, `scp -f ${join(sshd.scratch, 'secrets.txt')}`);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/file contents are not masked/);
  });
});

describe('approvals on ssh commands', () => {
  let sshd: Sshd;
  const DBA: Identity = { sub: 'dba-1', groups: ['dba'], claims: {} };
  const POLICY = `package t
default block "no"

rule reads { on ssh match shell ["ls", "cat"] allow }

rule writes_need_dba {
  on ssh
  match shell ["touch"]
  approve by group "dba" within 5m
}
`;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  async function pending(gw: SshTestGateway): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const list = await gw.approvals.list({ status: 'pending' });
      if (list[0]) return list[0].id;
      if (Date.now() > deadline) throw new Error('no approval was requested');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('hold: the command waits, says so on stderr, and runs once approved', async () => {
    const gw = await startSshTestGateway(sshd, POLICY, { approvalMode: 'hold' });
    try {
      const target = join(sshd.scratch, 'held');
      const running = gw.ssh(await gw.token(), `touch ${target}`);
      const id = await pending(gw);
      expect(existsSync(target)).toBe(false);
      expect(await gw.approvals.decide(id, DBA, 'approve')).toMatchObject({ ok: true });
      const r = await running;
      expect(r.stderr).toMatch(new RegExp(`^hoop: waiting for approval ${id} from dba \\(rule t\\.writes_need_dba\\)\\n`));
      expect(r.code).toBe(0);
      expect(existsSync(target)).toBe(true);
    } finally {
      await gw.close();
    }
  });

  it('hold: a denied command does not run', async () => {
    const gw = await startSshTestGateway(sshd, POLICY, { approvalMode: 'hold' });
    try {
      const target = join(sshd.scratch, 'denied');
      const running = gw.ssh(await gw.token(), `touch ${target}`);
      const id = await pending(gw);
      await gw.approvals.decide(id, DBA, 'deny', 'not today');
      const r = await running;
      expect(r.code).toBe(126);
      expect(r.stderr).toMatch(/hoop: approval \S+ denied: not today/);
      expect(existsSync(target)).toBe(false);
    } finally {
      await gw.close();
    }
  });

  it('return: exit 126 with the approval id now; the same command after approval runs once', async () => {
    const gw = await startSshTestGateway(sshd, POLICY, { approvalMode: 'return' });
    try {
      const token = await gw.token();
      const target = join(sshd.scratch, 'returned');
      const first = await gw.ssh(token, `touch ${target}`);
      expect(first.code).toBe(126);
      const id = /approval required \((\S+)\)/.exec(first.stderr)?.[1];
      expect(id).toBeDefined();
      await gw.approvals.decide(id!, DBA, 'approve');
      const second = await gw.ssh(token, `touch ${target}`);
      expect(second.code).toBe(0);
      expect(existsSync(target)).toBe(true);
      const third = await gw.ssh(token, `touch ${target}`);
      expect(third.code).toBe(126);
    } finally {
      await gw.close();
    }
  });
});
