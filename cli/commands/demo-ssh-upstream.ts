// The demo's SSH upstream: a small ssh2 server on 127.0.0.1 standing in for a real host behind the
// gateway (`hoop demo`'s `bastion-1`). It has its own host key (the gateway pins it), accepts only
// the gateway-held key, and runs each command with `/bin/sh -c` in a scratch directory of sample
// files, one of them holding a fake AWS access key and a test card number for the masks to find.
// A shell request runs `/bin/sh -i` (under a PTY through util-linux `script` when the client asked
// for one and `script` is there). `systemctl` is a stub that only prints, so an approved restart
// changes nothing on the machine the demo runs on.
//
// It is a demo box, not a sandbox: commands run as the demo's own OS user. Only the gateway can
// log in (the key never leaves the demo process), so the policy decides what runs.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';
import { newEd25519Pair } from '../../proxy/ssh/host-key.ts';

const { Server, utils } = ssh2;

/** What `cat secrets.env` prints upstream: the gateway's `mask detect api_key, credit_card` redacts both values. */
export const DEMO_AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
export const DEMO_CARD = '4111 1111 1111 1111';

export const DEMO_FILES: Record<string, string> = {
  'README.txt': 'The demo box behind the hoop gateway. Nothing here is real.\n',
  'app.log': ['2026-12-01T09:00:01Z INFO  app started on :8080', '2026-12-01T09:00:07Z WARN  slow request GET /orders (812 ms)', '2026-12-01T09:01:12Z INFO  health check ok', ''].join('\n'),
  'deploy.sh': '#!/bin/sh\necho "deploying app (demo: nothing happens)"\n',
  'secrets.env': ['# fake credentials for the demo: the gateway masks them in command output', `AWS_ACCESS_KEY_ID=${DEMO_AWS_KEY}`, `BILLING_TEST_CARD=${DEMO_CARD}`, 'APP_ENV=production', ''].join('\n'),
};

export interface DemoSshUpstream {
  host: string;
  port: number;
  /** The login the gateway uses (`ssh://LOGIN@host:port`). */
  user: string;
  /** This server's public host key (`ssh-ed25519 AAAA...`), for the gateway's `host_key` pin. */
  hostKey: string;
  /** The gateway-held private key (OpenSSH), the only one accepted. */
  clientPrivateKey: string;
  /** The directory commands run in (the sample files). */
  scratch: string;
  close(): Promise<void>;
}

const LOGIN = 'demo';

export async function startDemoSshUpstream(): Promise<DemoSshUpstream> {
  const root = mkdtempSync(join(tmpdir(), 'hoop-demo-box-'));
  const scratch = join(root, 'box');
  const bin = join(root, 'bin');
  mkdirSync(scratch);
  mkdirSync(bin);
  for (const [name, text] of Object.entries(DEMO_FILES)) writeFileSync(join(scratch, name), text, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\necho "systemctl $*: done (demo box: nothing was changed)"\n');
  chmodSync(join(bin, 'systemctl'), 0o755);

  const hostPair = newEd25519Pair('hoop-demo-box');
  const clientPair = newEd25519Pair('hoop-demo-gateway');
  const allowed = parsedKey(clientPair.public);
  const env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: scratch, USER: LOGIN, LOGNAME: LOGIN, SHELL: '/bin/sh' };
  const children = new Set<ChildProcess>();
  const connections = new Set<Connection>();

  const server = new Server({ hostKeys: [hostPair.private] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== LOGIN || ctx.key.algo !== allowed.type || !sameBytes(ctx.key.data, allowed.getPublicSSH())) {
        return ctx.reject(['publickey']);
      }
      // Without a signature the client only asks whether the key would do; with one it proves it holds it.
      if (!ctx.signature) return ctx.accept();
      if (ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        let pty: { rows: number; cols: number } | undefined;
        const extraEnv: Record<string, string> = {};
        let child: ChildProcess | undefined;
        session.on('pty', (accept, _reject, info) => {
          pty = { rows: info.rows, cols: info.cols };
          accept?.();
        });
        session.on('env', (accept, _reject, info) => {
          extraEnv[info.key] = info.val;
          accept?.();
        });
        session.on('window-change', (accept) => accept?.());
        session.on('signal', (accept, _reject, info) => {
          // The command's whole process group, as sshd does (`limit time` ends a command this way).
          if (child?.pid) killGroup(child.pid, `SIG${info.name}` as NodeJS.Signals);
          accept?.();
        });
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          child = run(ch, ['/bin/sh', '-c', info.command], { ...env, ...extraEnv });
        });
        session.on('shell', (accept) => {
          const ch = accept();
          const argv = pty && process.platform === 'linux' && hasScript() ? ['script', '-qfec', `stty rows ${pty.rows} cols ${pty.cols} 2>/dev/null; exec /bin/sh -i`, '/dev/null'] : ['/bin/sh', '-i'];
          child = run(ch, argv, { ...env, PS1: 'demo-box$ ', ...(pty ? { TERM: 'xterm' } : {}), ...extraEnv });
        });
        session.on('sftp', (_accept, reject) => reject?.());
        session.on('subsystem', (_accept, reject) => reject?.());
      });
    });
  });

  function run(ch: ServerChannel, argv: string[], childEnv: Record<string, string>): ChildProcess {
    const c = spawn(argv[0]!, argv.slice(1), { cwd: scratch, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    children.add(c);
    c.stdout!.pipe(ch, { end: false });
    c.stderr!.pipe(ch.stderr, { end: false });
    ch.pipe(c.stdin!);
    c.stdin!.on('error', () => undefined);
    ch.on('close', () => {
      if (c.exitCode === null && c.signalCode === null && c.pid) killGroup(c.pid, 'SIGHUP');
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      children.delete(c);
      try {
        if (signal) ch.exit(signal.replace(/^SIG/, ''), false, '');
        else ch.exit(code ?? 1);
        ch.end();
      } catch {
        // the client went away first
      }
    };
    c.on('error', (e) => {
      ch.stderr.write(`demo box: cannot run ${argv[0]}: ${e.message}\n`);
      finish(127, null);
    });
    // `close`: the command has ended and its output is all read.
    c.on('close', finish);
    return c;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    host: '127.0.0.1',
    port,
    user: LOGIN,
    hostKey: hostPair.public.split(' ').slice(0, 2).join(' '),
    clientPrivateKey: clientPair.private,
    scratch,
    async close() {
      for (const c of children) if (c.pid) killGroup(c.pid, 'SIGKILL');
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

let scriptAvailable: boolean | undefined;
function hasScript(): boolean {
  scriptAvailable ??= spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
  return scriptAvailable;
}

function parsedKey(publicLine: string) {
  const k = utils.parseKey(publicLine);
  const key = Array.isArray(k) ? k[0] : k;
  if (k instanceof Error || !key) throw new Error(`internal error: the demo's own key does not parse: ${k instanceof Error ? k.message : 'no key'}`);
  return key;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

