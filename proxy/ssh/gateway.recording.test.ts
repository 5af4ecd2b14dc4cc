// Recordings of ssh channels with `recording.results`: each exec's and shell's output as the client
// saw it (masked) in an asciicast v2 file named by the request's recording event, PTY size and
// window changes included; `hoop sessions show` names it and `hoop sessions play` replays it. With
// `results` off nothing of the output is kept.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client as ClientT, ClientChannel } from 'ssh2';
import { runCli } from '../../cli/testing.ts';
import { startSshd, type Sshd } from '../../testing/sshd.ts';
import { parseCast, type Cast } from '../recording/index.ts';
import { connectThrough, startSshTestGateway, type SshTestGateway } from './test-support.ts';

const POLICY = `package t
default block "no"

rule commands {
  on ssh
  match shell any
  allow
}

rule shells {
  on ssh
  match ssh interactive
  allow
}

rule cards {
  on ssh
  mask detect credit_card with redact
}
`;

const CARD = '4111111111111111';


/** Polls `check` until it returns a value (the recorder writes on its own schedule); fails after 20 s. */
async function eventually<T>(check: () => T | undefined): Promise<T> {
  for (let i = 0; i < 1000; i++) {
    const v = check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition never held');
}

interface Recorded {
  session_id: string;
  events: { text: string; ssh?: { cast?: string; exit_code?: number; bytes_out: number } }[];
}

/** The finished recording (footer written) of the session whose events include `text`. */
function recordingWith(dir: string, text: string): Recorded | undefined {
  if (!existsSync(dir)) return undefined;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    const lines = readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    if (lines.at(-1)?.type !== 'footer') continue;
    const events = lines.filter((l) => l.type === 'statement') as unknown as Recorded['events'];
    if (events.some((e) => e.text === text)) return { session_id: String(lines[0]!.session_id), events };
  }
  return undefined;
}

/** The cast once its last event is in (the output ends with `marker`). */
function castEnding(dir: string, name: string, marker: RegExp): Cast | undefined {
  const file = join(dir, name);
  if (!existsSync(file)) return undefined;
  const cast = parseCast(readFileSync(file, 'utf8'));
  return marker.test(output(cast)) ? cast : undefined;
}

const output = (c: Cast) => c.events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');

describe('ssh recordings with recording.results', () => {
  let sshd: Sshd;
  let gw: SshTestGateway;
  let dir: string;
  beforeAll(async () => {
    sshd = await startSshd();
    gw = await startSshTestGateway(sshd, POLICY, { recordResults: true });
    dir = join(gw.stateDir, 'sessions');
  });
  afterAll(async () => {
    await gw?.close();
    await sshd?.stop();
  });

  it('an exec: its stdout and stderr, masked, in an asciicast v2 file the recording names; show and play read it', async () => {
    const command = `printf 'card ${CARD} here\\n'; printf 'élan err\\n' >&2; echo done`;
    const r = await gw.ssh(await gw.token(), command);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('card [REDACTED] here\ndone\n');
    const rec = await eventually(() => recordingWith(dir, command));
    const ev = rec.events.find((e) => e.text === command)!;
    expect(ev.ssh).toMatchObject({ exit_code: 0, cast: expect.stringMatching(/\.1\.cast$/) });
    const cast = await eventually(() => castEnding(dir, ev.ssh!.cast!, /^(?=[\s\S]*done\n)(?=[\s\S]*err\n)/));
    expect(cast.header).toMatchObject({ version: 2, width: 80, height: 24, title: command });
    const out = output(cast);
    expect(out).toContain('card [REDACTED] here\n');
    expect(out).toContain('élan err\n');
    // The output never has the number (the title is the command as sent, which holds it).
    expect(readFileSync(join(dir, ev.ssh!.cast!), 'utf8').split('\n').slice(1).join('\n')).not.toContain(CARD);
    // Times never go backwards.
    expect(cast.events.every((e, i) => i === 0 || e[0] >= cast.events[i - 1]![0])).toBe(true);

    const show = await runCli(['sessions', 'show', join(dir, readdirSync(dir).find((f) => f.endsWith(`-${rec.session_id}.jsonl`))!)]);
    expect(show.code).toBe(0);
    expect(show.out).toContain(`exit 0, 0 bytes in`);
    expect(show.out).toContain(`output ${ev.ssh!.cast} (hoop sessions play)`);
    const play = await runCli(['sessions', 'play', rec.session_id, dir, '--speed', '1000']);
    expect(play.code, play.err).toBe(0);
    expect(play.out).toBe(out);
    expect(play.err).toContain(command.slice(0, 20));
  });

  it('a PTY shell: size, window changes and masked output as the client saw it; played back by session id', async () => {
    const conn = await connectThrough(gw, await gw.token());
    const ch = await new Promise<ClientChannel>((resolve, reject) => conn.shell({ rows: 30, cols: 100, term: 'xterm' }, (err, c) => (err ? reject(err) : resolve(c))));
    let seen = '';
    const printed = (re: RegExp) => new Promise<void>((resolve) => {
      const check = () => {
        if (!re.test(seen)) return;
        ch.off('data', check);
        resolve();
      };
      ch.on('data', check);
      check();
    });
    ch.on('data', (d: Buffer) => (seen += d.toString()));
    const closed = new Promise((resolve) => ch.on('close', resolve));
    ch.write(`echo "first-$((6*7))"\n`);
    await printed(/first-42/);
    ch.setWindow(40, 132, 0, 0);
    ch.write(`stty size; printf '%s\\n' ${CARD}; echo "second-$((6*7))"\n`);
    await printed(/second-42/);
    ch.write('exit\n');
    await closed;
    conn.end();
    const rec = await eventually(() => recordingWith(dir, 'shell (pty xterm)'));
    const ev = rec.events.find((e) => e.text === 'shell (pty xterm)')!;
    const cast = await eventually(() => castEnding(dir, ev.ssh!.cast!, /second-42[\s\S]*exit/));
    expect(cast.header).toMatchObject({ width: 100, height: 30, title: 'shell', env: { TERM: 'xterm' } });
    expect(cast.events.filter((e) => e[1] === 'r').map((e) => e[2])).toEqual(['132x40']);
    const out = output(cast);
    expect(out).toContain('40 132');
    expect(out).toContain('[REDACTED]');
    expect(readFileSync(join(dir, ev.ssh!.cast!), 'utf8')).not.toContain(CARD);
    // What the client saw is what was recorded (the client's copy may only lack what came after it stopped reading).
    expect(out.startsWith(seen.slice(0, 200))).toBe(true);
    const play = await runCli(['sessions', 'play', rec.session_id, dir, '--speed', '1000']);
    expect(play.code, play.err).toBe(0);
    expect(play.out).toBe(output(parseCast(readFileSync(join(dir, ev.ssh!.cast!), 'utf8'))));
    expect(play.out).toContain('second-42');
  });
});

describe('ssh recordings without recording.results', () => {
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

  it('keep exit status and byte counts but no output, and play says there is nothing to play', async () => {
    const dir = join(gw.stateDir, 'sessions');
    const r = await gw.ssh(await gw.token(), 'echo quiet');
    expect(r.stdout).toBe('quiet\n');
    const rec = await eventually(() => recordingWith(dir, 'echo quiet'));
    expect(rec.events[0]!.ssh).toEqual({ exit_code: 0, bytes_in: 0, bytes_out: 6 });
    expect(readdirSync(dir).filter((f) => f.endsWith('.cast'))).toEqual([]);
    const play = await runCli(['sessions', 'play', rec.session_id, dir]);
    expect(play.code).toBe(1);
    expect(play.err).toContain('has no terminal output recorded');
  });
});
