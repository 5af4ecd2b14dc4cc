// The demo's SSH host on its own, with the real OpenSSH client: only the gateway-held key logs in,
// the host key is the one it reports, commands run in the scratch folder with stdout, stderr and
// exit status relayed, and a shell gets a PTY when asked for one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sshpk from 'sshpk';
import { DEMO_AWS_KEY, DEMO_FILES, startDemoSshUpstream, type DemoSshUpstream } from './demo-ssh-upstream.ts';

let box: DemoSshUpstream;
let dir: string;

beforeAll(async () => {
  box = await startDemoSshUpstream();
  dir = mkdtempSync(join(tmpdir(), 'hoop-demo-box-test-'));
  writeFileSync(join(dir, 'key'), box.clientPrivateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${box.port} ${box.hostKey}\n`);
  const other = sshpk.parsePrivateKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), 'pem');
  writeFileSync(join(dir, 'other'), other.toString('openssh'), { mode: 0o600 });
});

afterAll(async () => {
  await box?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ssh(args: string[], opts: { key?: string; user?: string; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [
    '-F', '/dev/null', '-p', String(box.port), '-i', join(dir, opts.key ?? 'key'),
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes',
    '-o', 'LogLevel=ERROR', ...args.slice(0, -1), `${opts.user ?? box.user}@127.0.0.1`, args[args.length - 1]!,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

describe('the demo SSH host', () => {
  it('runs a command with /bin/sh -c in the scratch folder and relays stdout, stderr and the exit status', async () => {
    const r = await ssh(['pwd; ls; echo oops >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('oops\n');
    const [cwd, ...names] = r.stdout.trimEnd().split('\n');
    expect(cwd).toBe(box.scratch);
    expect(names.sort()).toEqual(Object.keys(DEMO_FILES).sort());
    expect(readFileSync(join(box.scratch, 'secrets.env'), 'utf8')).toContain(DEMO_AWS_KEY);
  });

  it('passes standard input to the command', async () => {
    const r = await ssh(['wc -l'], { input: 'a\nb\nc\n' });
    expect(r).toMatchObject({ code: 0, stdout: '3\n' });
  });

  it('has a systemctl that only prints', async () => {
    const r = await ssh(['systemctl restart nginx']);
    expect(r).toMatchObject({ code: 0, stdout: 'systemctl restart nginx: done (demo box: nothing was changed)\n' });
  });

  it('accepts no other key and no other login', async () => {
    const other = await ssh(['true'], { key: 'other' });
    expect(other.code).toBe(255);
    expect(other.stderr).toContain('Permission denied (publickey)');
    const root = await ssh(['true'], { user: 'root' });
    expect(root.code).toBe(255);
    expect(root.stderr).toContain('Permission denied (publickey)');
  });

  it('opens a shell under a PTY when one is asked for', async () => {
    const r = await ssh(['-tt', ''], { input: 'tty; cat secrets.env\nexit 4\n' });
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain(`AWS_ACCESS_KEY_ID=${DEMO_AWS_KEY}`);
  });
});
