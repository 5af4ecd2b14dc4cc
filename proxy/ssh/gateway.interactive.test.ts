// Interactive shells through the SSH gateway: a PTY session allowed by `match ssh interactive`
// (window changes relayed, output masked), and refused without it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client as ClientT, ClientChannel } from 'ssh2';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { connectThrough, startSshTestGateway, type SshTestGateway } from './test-support.ts';

const POLICY = `package t
default block "no"

rule humans {
  on ssh
  when group "sre"
  match ssh interactive
  allow
}

rule mask_cards {
  on ssh
  mask detect credit_card with redact
}
`;


/** Reads the channel until `pattern` appears in what it printed (or it closes). */
function until(ch: ClientChannel, seen: { text: string }, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pattern.test(seen.text)) return resolve();
    const onData = () => {
      if (!pattern.test(seen.text)) return;
      ch.off('data', onData);
      resolve();
    };
    ch.on('data', onData);
    ch.once('close', () => (pattern.test(seen.text) ? resolve() : reject(new Error(`closed before ${pattern}: ${JSON.stringify(seen.text)}`))));
  });
}

describe('interactive ssh sessions', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  beforeAll(async () => {
    sshd = await startSshd();
    gw = await startSshTestGateway(sshd, POLICY);
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('runs a PTY shell, relays window changes and masks what it prints', async () => {
    const conn = await connectThrough(gw, await gw.token({ groups: ['sre'] }));
    const ch = await new Promise<ClientChannel>((resolve, reject) => conn.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, c) => (err ? reject(err) : resolve(c))));
    const seen = { text: '' };
    ch.on('data', (d: Buffer) => (seen.text += d.toString('latin1')));
    ch.write('stty size; echo "ready-$((6*7))"\n');
    await until(ch, seen, /ready-42/);
    expect(seen.text).toMatch(/24 80/);
    ch.setWindow(40, 132, 0, 0);
    ch.write('stty size; printf "%s %s\\n" 4111111111111111 "done-$((6*7))"\n');
    await until(ch, seen, /\[REDACTED\] done-42/);
    expect(seen.text).toMatch(/40 132/);
    expect(seen.text).not.toContain('4111111111111111\r\n');
    ch.write('exit 7\n');
    const code = await new Promise<number | null>((resolve) => ch.on('exit', (c: number | null) => resolve(c)));
    expect(code).toBe(7);
    const d = gw.audit.records.find((x) => x.type === 'decision' && x.statement?.kind === 'interactive');
    expect(d).toMatchObject({ verdict: 'mask', outcome: 'executed' });
    conn.end();
  });

  it('refuses a shell without match ssh interactive (exit 126, the message on stderr)', async () => {
    const conn = await connectThrough(gw, await gw.token({ groups: ['agents'] }));
    const ch = await new Promise<ClientChannel>((resolve, reject) => conn.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, c) => (err ? reject(err) : resolve(c))));
    let stderr = '';
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    ch.on('data', () => undefined);
    const code = await new Promise<number | null>((resolve) => ch.on('exit', (c: number | null) => resolve(c)));
    expect(code).toBe(126);
    expect(stderr).toBe('hoop: blocked: no\n');
    conn.end();
  });
});
