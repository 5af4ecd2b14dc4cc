// File transfers and forwards through the SSH gateway with the real sftp, scp, rsync and ssh
// clients against a real sshd: every SFTP request decided with its normalised path, refusals
// answered SSH_FX_PERMISSION_DENIED with the session going on, legacy scp and rsync decided as
// file operations, traversal by `..` and by symbolic links decided where the bytes really are.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { run, runWithToken, startSshTestGateway, type SshTestGateway } from './test-support.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ssh file transfers and forwards through the gateway', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  let token: string;
  let local: string;
  let remote: string;
  let outside: string;
  beforeAll(async () => {
    sshd = await startSshd();
    remote = join(sshd.scratch, 'files');
    outside = join(sshd.scratch, 'outside');
    mkdirSync(remote);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'the secret\n');
    mkdirSync(join(remote, 'locked'));
    writeFileSync(join(remote, 'locked', 'x.txt'), 'locked\n');
    // A link inside the allowed folder to the folder outside it.
    symlinkSync(outside, join(remote, 'escape'));
    const policy = `package t
default block "no rule allows this"

rule commands {
  on ssh
  match shell ["echo", "true", "printenv"]
  allow
}

rule files {
  on ssh
  match sftp on paths ["${remote}/**"]
  allow
}

rule locked {
  on ssh
  match sftp on paths ["${remote}/locked/**"]
  block "the locked folder is off limits"
}

rule to_sshd {
  match forward to ["127.0.0.1:${sshd.port}"]
  allow
}
`;
    gw = await startSshTestGateway(sshd, policy);
    token = await gw.token();
    local = mkdtempSync(join(tmpdir(), 'hoop-ssh-local-'));
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  const sftp = (batch: string) => {
    const file = join(local, `batch-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, batch);
    // sftp -b implies BatchMode, which turns password authentication off; the token is the password.
    return runWithToken(token, ['sftp', '-o', 'BatchMode=no', ...gw.sshArgs().slice(1, -1).map((a) => (a === '-p' ? '-P' : a)), '-b', file, `${gw.resourceName}@127.0.0.1`], { timeoutMs: 60_000 });
  };

  it('sftp put, ls, rename, get and rm of a 20 MB file keep every byte', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    writeFileSync(join(local, 'big.bin'), data);
    const r = await sftp(
      [`cd ${remote}`, `put ${join(local, 'big.bin')} big.bin`, 'ls -l', 'rename big.bin moved.bin', `get moved.bin ${join(local, 'back.bin')}`, 'rm moved.bin', 'ls', ''].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/big\.bin/);
    expect(sha(readFileSync(join(local, 'back.bin')))).toBe(sha(data));
    expect(existsSync(join(remote, 'moved.bin'))).toBe(false);
    const ops = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized.startsWith('sftp ')).map((x) => x.statement!.kind);
    expect(ops).toEqual(expect.arrayContaining(['write', 'list', 'rename', 'read', 'remove']));
  });

  it('refuses a path outside the rule with permission denied, and the session goes on', async () => {
    // `-get`: sftp carries on after a failed command in batch mode.
    writeFileSync(join(local, 'after.bin'), 'after\n');
    const r = await sftp([`-get ${outside}/secret.txt ${join(local, 'no1.txt')}`, `-get ${remote}/../outside/secret.txt ${join(local, 'no2.txt')}`, `-get ${remote}/escape/secret.txt ${join(local, 'no3.txt')}`, `-ls ${remote}/locked`, `put ${join(local, 'after.bin')} ${remote}/after.bin`, ''].join('\n'));
    // sftp reports a refused stat as "not found"; nothing was transferred.
    expect(r.stderr).toMatch(/not found/);
    for (const f of ['no1.txt', 'no2.txt', 'no3.txt']) expect(existsSync(join(local, f)), f).toBe(false);
    // The session was still usable after the refusals.
    expect(existsSync(join(remote, 'after.bin'))).toBe(true);
    const refused = gw.audit.records.filter((x) => x.type === 'decision' && x.outcome === 'blocked' && x.statement?.normalized.startsWith('sftp '));
    const paths = refused.map((x) => x.statement!.normalized);
    // `..` and the symbolic link are decided where the file really is.
    expect(paths).toEqual(expect.arrayContaining([`sftp stat ${outside}/secret.txt`, `sftp stat ${remote}/locked`]));
    expect(paths.filter((p) => p === `sftp stat ${outside}/secret.txt`).length).toBe(3);
    expect(paths.some((p) => p.includes('..') || p.includes('escape'))).toBe(false);
  });

  it('scp both ways, over SFTP and legacy (-O), decided as file operations', async () => {
    const data = randomBytes(1024 * 1024);
    writeFileSync(join(local, 'scp.bin'), data);
    const base = gw.sshArgs().slice(1, -1).map((a) => (a === '-p' ? '-P' : a));
    for (const legacy of [false, true]) {
      const name = legacy ? 'legacy.bin' : 'modern.bin';
      const mode = legacy ? ['-O'] : [];
      const up = await runWithToken(token, ['scp', ...mode, ...base, join(local, 'scp.bin'), `${gw.resourceName}@127.0.0.1:${remote}/${name}`], { timeoutMs: 15_000 });
      expect(up.stderr, `upload ${name}`).toBe('');
      expect(up.code).toBe(0);
      const down = await runWithToken(token, ['scp', ...mode, ...base, `${gw.resourceName}@127.0.0.1:${remote}/${name}`, join(local, `down-${name}`)]);
      expect(down.code).toBe(0);
      expect(sha(readFileSync(join(local, `down-${name}`)))).toBe(sha(data));
      const denied = await runWithToken(token, ['scp', ...mode, ...base, `${gw.resourceName}@127.0.0.1:${outside}/secret.txt`, join(local, `stolen-${name}`)]);
      expect(denied.code).not.toBe(0);
      expect(existsSync(join(local, `stolen-${name}`))).toBe(false);
    }
    // Legacy scp's `scp -t PATH` is audited as the write it is.
    const legacy = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.kind === 'write' && x.statement.normalized.startsWith('scp -t'));
    expect(legacy.length).toBeGreaterThan(0);
  });

  it('rsync -a of a directory tree, and a refused destination', async () => {
    const tree = join(local, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'a', 'one.txt'), 'one\n');
    writeFileSync(join(tree, 'a', 'b', 'two.bin'), randomBytes(300_000));
    const rsh = ['sshpass', '-e', ...gw.sshArgs().slice(0, -1)].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');
    const env = { ...process.env, SSHPASS: token };
    const ok = await run('rsync', ['-a', '-e', rsh, `${tree}/`, `${gw.resourceName}@127.0.0.1:${remote}/tree/`], { env });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(readFileSync(join(remote, 'tree', 'a', 'b', 'two.bin'))).toEqual(readFileSync(join(tree, 'a', 'b', 'two.bin')));
    const no = await run('rsync', ['-a', '-e', rsh, `${tree}/`, `${gw.resourceName}@127.0.0.1:${outside}/tree/`], { env });
    expect(no.code).not.toBe(0);
    expect(no.stderr).toMatch(/hoop: blocked/);
    expect(existsSync(join(outside, 'tree'))).toBe(false);
  });

  it('forwards a direct-tcpip channel a rule allows and refuses others', async () => {
    const ok = await runWithToken(token, [...gw.sshArgs(['-W', `127.0.0.1:${sshd.port}`])], { timeoutMs: 20_000 });
    expect(ok.stdout).toMatch(/^SSH-2\.0-OpenSSH/);
    const no = await runWithToken(token, [...gw.sshArgs(['-W', '127.0.0.1:1'])], { timeoutMs: 20_000 });
    expect(no.code).toBe(255);
    expect(no.stderr).toMatch(/stdio forwarding failed|open failed|administratively prohibited/i);
  });

  it('refuses remote forwards and environment variables other than LANG/LC_*, and keeps going', async () => {
    const r = await gw.ssh(token, 'printenv LC_HOOP EVIL', { args: ['-o', 'SetEnv=LC_HOOP=yes EVIL=1'] });
    expect(r.stdout).toBe('yes\n');
    const remoteForward = await gw.ssh(token, 'true', { args: ['-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:1'] });
    expect(remoteForward.code).toBe(255);
    expect(remoteForward.stderr).toMatch(/remote port forwarding failed/i);
  });
});
