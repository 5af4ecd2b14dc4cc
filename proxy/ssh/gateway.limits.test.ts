// Guardrails on the SSH wire with the real OpenSSH client against a real sshd: `limit time` ends a
// command (SIGTERM, SIGKILL for one that ignores it, then the channel) and an interactive shell,
// the client told on stderr with exit status 124 and the connection still usable; `limit rate`
// refuses the request past the budget (exit 126) from the shared rate store.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import type { ClientChannel } from 'ssh2';
import { nonRootLogin, startSshd, type Sshd } from '../../testing/sshd.ts';
import { connectThrough, execOn, startSshTestGateway, type SshTestGateway } from './test-support.ts';

const POLICY = `package t
default block "no rule allows this"

rule commands {
  on ssh("bastion-*")
  match shell any
  allow
}

rule shells {
  on ssh("bastion-*")
  match ssh interactive
  allow
}

rule slow_agents {
  when subject "agent-slow"
  limit time 1s
}

rule generous {
  when subject "agent-slow"
  limit time 1h
}

rule few_commands {
  when subject "agent-rate"
  match shell any
  limit rate 2 per 1h
}
`;

const LINE = 'hoop: command ended: it ran longer than 1s, the limit time of rule t.slow_agents\n';



/** Processes on this machine (the sshd runs here) whose command line contains `marker`. */
function running(marker: string): string[] {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('limit time on ssh', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  beforeAll(async () => {
    // sshd signals a session's commands only for a non-root login (see testing/sshd.ts).
    const login = nonRootLogin();
    sshd = await startSshd(login ? { login } : {});
    gw = await startSshTestGateway(sshd, POLICY, { killGraceMs: 300 });
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  const results = (text: string) => gw.audit.records.filter((r) => r.type === 'statement_result' && r.statement?.normalized === text);

  it('ends an exec past its limit time: SIGTERM upstream, the rule on stderr, exit 124, audited as failed', async () => {
    const token = await gw.token({ sub: 'agent-slow' });
    const r = await gw.ssh(token, 'echo started; sleep 31.25; echo never');
    expect(r.code).toBe(124);
    // (`started` may not have been printed yet on a loaded machine: the clock runs from the channel's open.)
    expect(r.stdout).not.toContain('never');
    expect(r.stderr).toBe(LINE);
    // The command is gone upstream: its channel closed only once the signal had ended it.
    expect(running('sleep 31.25')).toEqual([]);
    expect(results('echo started; sleep 31.25; echo never')).toMatchObject([
      { verdict: 'allow', outcome: 'failed', reason: 'limit time 1s (rule t.slow_agents): the gateway ended the command (SIGTERM)' },
    ]);
  });

  it('kills a command that ignores SIGTERM', async () => {
    const conn = await connectThrough(gw, await gw.token({ sub: 'agent-slow' }));
    const r = await execOn(conn, `sh -c 'trap "" TERM; sleep 32.5'`);
    expect(r.code).toBe(124);
    expect(r.stderr).toBe(LINE);
    expect(running('sleep 32.5')).toEqual([]);
    expect(results(`sh -c 'trap "" TERM; sleep 32.5'`)).toMatchObject([{ outcome: 'failed', reason: 'limit time 1s (rule t.slow_agents): the gateway ended the command (SIGKILL)' }]);
    conn.end();
  });

  it('leaves an identity without the limit alone: its command outlives the other identity\'s limit', async () => {
    const conn = await connectThrough(gw, await gw.token({ sub: 'agent-7' }));
    const ch = await new Promise<ClientChannel>((resolve, reject) => conn.exec('echo up; sleep 33.75', (err, c) => (err ? reject(err) : resolve(c))));
    let stderr = '';
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ended = new Promise<string | undefined>((resolve) => ch.on('exit', (_c: number | null, s?: string) => resolve(s)));
    await new Promise((resolve) => ch.once('data', resolve));
    ch.on('data', () => undefined);
    // A limited identity's command is ended meanwhile; the unlimited one still runs after that.
    expect((await gw.ssh(await gw.token({ sub: 'agent-slow' }), 'sleep 34.375')).code).toBe(124);
    expect(running('sleep 33.75').some((l) => l.trim() === 'sleep 33.75')).toBe(true);
    execFileSync('pkill', ['-TERM', '-f', '^sleep 33.75$']);
    expect(await ended).toBe('SIGTERM');
    expect(stderr).toBe('');
    conn.end();
  });

  it('ends an interactive shell past its limit time with the line on stderr and exit 124', async () => {
    const conn = await connectThrough(gw, await gw.token({ sub: 'agent-slow' }));
    const ch = await new Promise<ClientChannel>((resolve, reject) => conn.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, c) => (err ? reject(err) : resolve(c))));
    let stderr = '';
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    ch.on('data', () => undefined);
    const code = new Promise<number | null>((resolve) => ch.on('exit', (c: number | null) => resolve(c)));
    const closed = new Promise((resolve) => ch.on('close', resolve));
    ch.write('echo ready\n');
    await closed;
    expect(await code).toBe(124);
    expect(stderr).toBe(LINE);
    const rec = gw.audit.records.filter((x) => x.type === 'statement_result' && x.statement?.kind === 'interactive');
    expect(rec).toMatchObject([{ outcome: 'failed', reason: expect.stringMatching(/^limit time 1s \(rule t\.slow_agents\): the gateway ended the command/) }]);
    conn.end();
  });
});

describe('limit time when sshd will not signal the command, and limit rate', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  beforeAll(async () => {
    // sshd refuses signal requests for a forced command (as it does for every root login).
    sshd = await startSshd({ config: ['ForceCommand eval "$SSH_ORIGINAL_COMMAND"'] });
    gw = await startSshTestGateway(sshd, POLICY, { killGraceMs: 300 });
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('answers the client anyway once the grace times pass, and the audit says the upstream did not confirm', async () => {
    const conn = await connectThrough(gw, await gw.token({ sub: 'agent-slow' }));
    const r = await execOn(conn, 'sleep 35.625');
    expect(r.code).toBe(124);
    expect(r.stderr).toBe(LINE);
    const rec = gw.audit.records.filter((x) => x.type === 'statement_result' && x.statement?.normalized === 'sleep 35.625');
    expect(rec).toMatchObject([{ outcome: 'failed', reason: 'limit time 1s (rule t.slow_agents): the gateway ended the command (SIGKILL); the upstream did not confirm it ended' }]);
    conn.end();
    // What sshd would not signal may run on there: the test's own cleanup (none left is fine).
    try {
      execFileSync('pkill', ['-KILL', '-f', '^sleep 35.625$']);
    } catch {
      // nothing to kill
    }
  });

  it('limit rate: the third command within the window is refused (exit 126, the rule and when to retry), counted across connections', async () => {
    const token = await gw.token({ sub: 'agent-rate' });
    const one = await gw.ssh(token, 'echo one');
    expect(one.code, one.stderr).toBe(0);
    const conn = await connectThrough(gw, token);
    expect((await execOn(conn, 'echo two')).code).toBe(0);
    const third = await execOn(conn, 'echo three');
    expect(third.code).toBe(126);
    expect(third.stdout).toBe('');
    expect(third.stderr).toMatch(/^hoop: rate limit exceeded: rule t\.few_commands allows 2 requests per 1h; retry in .+\n$/);
    const d = gw.audit.records.filter((x) => x.type === 'decision' && x.statement?.normalized === 'echo three');
    expect(d).toMatchObject([{ outcome: 'blocked', reason: expect.stringMatching(/^rate limit: rule t\.few_commands/) }]);
    // Another identity has its own budget.
    const other = await gw.ssh(await gw.token({ sub: 'agent-7' }), 'echo three');
    expect(other.code, other.stderr).toBe(0);
    conn.end();
  });
});
