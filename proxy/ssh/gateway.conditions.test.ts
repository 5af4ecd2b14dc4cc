// `if` conditions on the ssh request facts (sftp.*, forward.*, ssh.*) decided on the wire: the
// real sftp client against a real sshd through the gateway, and ssh2's client for a forward and
// shells (what OpenSSH's client cannot script without a terminal).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { connectThrough, runWithToken, startSshTestGateway, type SshTestGateway } from './test-support.ts';


describe('conditions on sftp.*, forward.* and ssh.* through the gateway', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  let local: string;
  beforeAll(async () => {
    sshd = await startSshd();
    writeFileSync(join(sshd.scratch, 'app.log'), 'a log line\n');
    writeFileSync(join(sshd.scratch, 'app.conf'), 'a config line\n');
    gw = await startSshTestGateway(sshd, `package t
default block "no rule allows this"

rule logs_only {
  on ssh
  match sftp read
  if \`sftp.op != "read" || (sftp.path.endsWith(".log") && sftp.via == "sftp")\`
  allow
}

rule sshd_port_only {
  on ssh
  match forward to ["127.0.0.1:*"]
  if \`forward.host == "127.0.0.1" && forward.port == ${sshd.port}\`
  allow
}

rule xterm_shells {
  on ssh
  match ssh interactive
  if \`ssh.pty && ssh.term == "xterm"\`
  allow
}
`);
    local = mkdtempSync(join(tmpdir(), 'hoop-ssh-cond-'));
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('sftp: a read allowed by sftp.path gets the file; one the condition refuses is denied and the session goes on', async () => {
    const batch = join(local, 'batch');
    writeFileSync(batch, [`cd ${sshd.scratch}`, `get app.log ${join(local, 'app.log')}`, `-get app.conf ${join(local, 'app.conf')}`, `get app.log ${join(local, 'again.log')}`, ''].join('\n'));
    const r = await runWithToken(await gw.token(), ['sftp', '-o', 'BatchMode=no', ...gw.sshArgs().slice(1, -1).map((a) => (a === '-p' ? '-P' : a)), '-b', batch, `${gw.resourceName}@127.0.0.1`], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(local, 'app.log'), 'utf8')).toBe('a log line\n');
    expect(readFileSync(join(local, 'again.log'), 'utf8')).toBe('a log line\n');
    expect(r.stderr).toMatch(/app\.conf.*[Pp]ermission denied/);
    const refused = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized === `sftp read ${sshd.scratch}/app.conf`);
    expect(refused).toMatchObject([{ verdict: 'block', outcome: 'blocked' }]);
  });

  it('forward: forward.port decides which destination opens', async () => {
    const conn = await connectThrough(gw, await gw.token());
    const open = (port: number) => new Promise<string>((resolve) => conn.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => {
      if (err) return resolve(`refused: ${err.message}`);
      // sshd greets on the forwarded connection.
      ch.once('data', (d: Buffer) => {
        resolve(d.toString('latin1').split('\r\n')[0]!);
        ch.close();
      });
    }));
    expect(await open(sshd.port)).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(await open(sshd.port + 1)).toMatch(/^refused: /);
    conn.end();
  });

  it('interactive: ssh.pty and ssh.term decide the shell', async () => {
    const conn = await connectThrough(gw, await gw.token());
    const shell = (term: string) => new Promise<{ code: number | null; stderr: string }>((resolve, reject) => conn.shell({ rows: 24, cols: 80, term }, (err, ch) => {
      if (err) return reject(err);
      let stderr = '';
      let code: number | null = null;
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('data', () => undefined);
      ch.on('exit', (c: number | null) => (code = c));
      ch.on('close', () => resolve({ code, stderr }));
      ch.write('exit 5\n');
    }));
    expect(await shell('xterm')).toEqual({ code: 5, stderr: '' });
    expect(await shell('vt100')).toEqual({ code: 126, stderr: 'hoop: blocked: no rule allows this\n' });
    conn.end();
  });
});
