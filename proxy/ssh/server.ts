// The SSH front door (DESIGN.md "The SSH gateway"): an ssh2 server that authenticates agents by
// their token (password or keyboard-interactive), selects the resource by the SSH user name, and
// turns every channel request into one enforcement request (enforcement-port.ts). Allowed
// requests run on the gateway's own upstream connection; refused ones are answered in SSH terms:
// stderr `hoop: blocked by <rule>: <message>` and exit status 126 for commands (the connection
// stays usable), SSH_FX_PERMISSION_DENIED for SFTP requests, a channel open failure for forwards.

import { randomUUID } from 'node:crypto';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import ssh2, { type ClientChannel, type Connection, type ServerChannel, type Session, type Client as ClientT, type AuthContext } from 'ssh2';
import type { Resource } from '../../stdlib/facts.ts';
import type { ApprovalMode, ChannelCast } from '../ports.ts';
import type { SshUpstream } from './config.ts';
import type { SshEnforcedSession, SshEnforcement, SshOutcome, SshRequest, SshResult } from './enforcement-port.ts';
import { buildStreamMasker, type StreamMasker } from './stream-mask.ts';
import { connectUpstream, execUpstream, forwardUpstream, sftpUpstream, shellUpstream, signalUpstream, type PtyInfo } from './upstream.ts';
import { serveSftp } from './sftp-proxy.ts';

const { Server } = ssh2;

export interface SshRoute {
  resource: Resource;
  upstream: SshUpstream;
}

export interface SshListenerOptions {
  host: string;
  port: number;
  /** The gateway's host key (private, OpenSSH or PEM text). */
  hostKey: string;
  resources: ReadonlyMap<string, SshRoute>;
  enforcement: SshEnforcement;
  approvalMode: ApprovalMode;
  /** Environment variable names (a trailing `*` is a prefix) an `env` request may pass upstream. */
  env: readonly string[];
  hashKey?: string;
  /** A connection not authenticated within this long is closed (like sshd's LoginGraceTime; default 60 s). */
  loginGraceMs?: number;
  /** How long an interactive channel's masked output may wait for a newline before it is sent (ms). */
  idleFlushMs?: number;
  /**
   * `limit time`: how long a command that got SIGTERM has to end before SIGKILL, and after that
   * before the gateway closes the upstream channel itself (ms; default 2000).
   */
  killGraceMs?: number;
  log?: (line: string) => void;
}

export interface SshListener {
  port: number;
  readonly sessions: number;
  close(): Promise<void>;
}

/** Exit status of a command the gateway refused (as a shell's "found but not executable"). */
export const BLOCKED_EXIT = 126;
/** Exit status when the gateway could not run the command upstream (as ssh(1) itself uses). */
export const GATEWAY_ERROR_EXIT = 255;
/** Exit status of a command the gateway ended after its `limit time` (as timeout(1) answers). */
export const TIME_LIMIT_EXIT = 124;

export async function startSshListener(opts: SshListenerOptions): Promise<SshListener> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`hoop ssh: ${line}\n`));
  const connections = new Set<Connection>();
  const sockets = new Set<Socket>();
  const server = new Server({ hostKeys: [opts.hostKey], ident: 'hoop-gateway' }, (client, info) => {
    connections.add(client);
    const conn = new GatewayConnection(client, info.ip, opts, log);
    const sock = (client as unknown as { _sock?: Socket })._sock;
    client.on('ready', () => {
      if (!sock) return;
      clearTimeout(graceTimers.get(sock));
      authenticated.add(sock);
    });
    client.on('close', () => {
      connections.delete(client);
      void conn.closed();
    });
  });
  // A broken client (random bytes, a reset) ends its own connection, never the gateway; one that
  // never authenticates (garbage, a stalled handshake) is closed after the grace time.
  server.on('error', (err: Error) => log(`listener: ${err.message}`));
  const graceTimers = new WeakMap<Socket, NodeJS.Timeout>();
  const authenticated = new WeakSet<Socket>();
  (server as unknown as { _srv: NetServer })._srv.on('connection', (sock: Socket) => {
    sockets.add(sock);
    const timer = setTimeout(() => sock.destroy(), opts.loginGraceMs ?? 60_000);
    timer.unref();
    graceTimers.set(sock, timer);
    // A client that hangs up before it authenticated has nothing more to say.
    sock.on('end', () => {
      if (!authenticated.has(sock)) sock.destroy();
    });
    sock.on('close', () => {
      clearTimeout(timer);
      sockets.delete(sock);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    get sessions() {
      return connections.size;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of connections) c.end();
        // Connections still in their handshake have no client object yet.
        for (const s of sockets) s.destroy();
      });
    },
  };
}

function envAllowed(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
}

/** Writes `line` to a channel's stderr, then resolves once it has been handed to the transport. */
function writeStderr(ch: ServerChannel, line: string): Promise<void> {
  return new Promise((resolve) => {
    if (!ch.writable) return resolve();
    ch.stderr.write(`${line}\n`, () => resolve());
  });
}

/** Resolves once everything written to `w` so far has been handed to the transport. */
function flushed(w: NodeJS.WritableStream & { writable: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (!w.writable) return resolve();
    w.write(Buffer.alloc(0), () => resolve());
  });
}

class GatewayConnection {
  private route: SshRoute | undefined;
  private session: Promise<SshEnforcedSession | undefined> | undefined;
  private upstream: Promise<ClientT | undefined> | undefined;
  private upstreamConn: ClientT | undefined;
  private readonly id = randomUUID();
  private expiresAt = 0;
  private refusedAudited = false;
  private readonly channels = new Set<ServerChannel>();
  private ended = false;

  constructor(
    private readonly client: Connection,
    private readonly clientAddr: string,
    private readonly opts: SshListenerOptions,
    private readonly log: (line: string) => void,
  ) {
    client.on('error', (err: Error) => {
      // Malformed packets, resets, a client that vanished: this connection only.
      if (!/ECONNRESET|EPIPE/.test(err.message)) log(`client ${clientAddr}: ${err.message}`);
    });
    client.on('authentication', (ctx) => void this.authenticate(ctx));
    client.on('ready', () => this.ready());
  }

  private refuse(reason: string, extra: { claims?: Record<string, unknown> } = {}): Promise<void> {
    return this.opts.enforcement.refused({ sessionId: this.id, clientAddr: this.clientAddr, ...(this.route ? { resource: this.route.resource } : {}), ...extra, reason });
  }

  private async authenticate(ctx: AuthContext): Promise<void> {
    const route = this.opts.resources.get(ctx.username);
    if (!route) {
      if (!this.refusedAudited) {
        this.refusedAudited = true;
        await this.refuse(`unknown_resource: no ssh resource named ${JSON.stringify(ctx.username)} (the SSH user name selects the resource)`);
      }
      return ctx.reject([]);
    }
    this.route = route;
    let token: string | undefined;
    if (ctx.method === 'password') token = ctx.password;
    else if (ctx.method === 'keyboard-interactive') {
      token = await new Promise<string | undefined>((resolve) => {
        ctx.prompt([{ prompt: 'hoop token: ', echo: false }], 'hoop gateway', 'Paste the token (JWT) for this gateway.', (answers) => resolve(answers[0]));
      });
    } else {
      return ctx.reject(['password', 'keyboard-interactive']);
    }
    if (!token) return ctx.reject(['password', 'keyboard-interactive']);
    let verified: Awaited<ReturnType<SshEnforcement['verifyToken']>>;
    try {
      verified = await this.opts.enforcement.verifyToken(token.trim());
    } catch (e) {
      verified = { ok: false, code: 'verifier_failed', reason: (e as Error).message };
    }
    if (!verified.ok) {
      await this.refuse(`${verified.code}: ${verified.reason}`, verified.claims ? { claims: verified.claims } : {});
      return ctx.reject(['password', 'keyboard-interactive']);
    }
    this.expiresAt = verified.expiresAt;
    const identity = verified.identity;
    this.session = this.opts.enforcement
      .open({ sessionId: this.id, identity, expiresAt: verified.expiresAt, resource: route.resource, clientAddr: this.clientAddr, user: ctx.username, approvalMode: this.opts.approvalMode })
      .catch((e: Error) => {
        this.log(`session ${this.id}: ${e.message}`);
        return undefined;
      });
    // Nothing runs unless the session start was audited.
    if (!(await this.session)) return ctx.reject([]);
    ctx.accept();
  }

  private ready(): void {
    this.client.on('session', (accept) => this.onSession(accept()));
    this.client.on('tcpip', (accept, reject, info) => void this.onDirectTcpip(accept, reject, info));
    // Remote forwarding (`ssh -R`), streamlocal and other global requests: refused.
    this.client.on('request', (accept, reject, name) => {
      void this.decide({ type: 'other', request: `global:${name}` }).then((o) => {
        if (o.kind === 'refuse') return reject?.();
        o.finish({ bytesIn: 0, bytesOut: 0, error: 'global requests are not relayed' });
        reject?.();
      });
    });
  }

  async closed(): Promise<void> {
    this.ended = true;
    this.upstreamConn?.end();
    const s = await this.session;
    await s?.close();
  }

  private async decide(req: SshRequest, ch?: ServerChannel, signal?: AbortSignal): Promise<SshOutcome> {
    const s = await this.session;
    if (!s) return { kind: 'refuse', message: 'hoop: the session could not be started' };
    return s.decide(req, {
      onHold: (message) => {
        if (ch) void writeStderr(ch, message);
      },
      ...(signal ? { signal } : {}),
    });
  }

  /** The upstream connection, opened on first use and reused; a failure is audited and retried next time. */
  private getUpstream(): Promise<{ ok: true; conn: ClientT } | { ok: false; reason: string }> {
    const route = this.route!;
    this.upstream ??= connectUpstream(route.upstream).then(async (r) => {
      if (!r.ok) {
        await this.refuse(`${r.code}: ${r.reason}`);
        this.log(`${route.resource.name}: ${r.reason}`);
        this.upstream = undefined;
        this.lastUpstreamError = r.reason;
        return undefined;
      }
      if (this.ended) {
        r.conn.end();
        return undefined;
      }
      this.upstreamConn = r.conn;
      r.conn.on('error', (err: Error) => this.log(`${route.resource.name}: upstream: ${err.message}`));
      r.conn.on('close', () => {
        if (this.upstreamConn === r.conn) {
          this.upstreamConn = undefined;
          this.upstream = undefined;
        }
      });
      return r.conn;
    });
    return this.upstream.then((conn) => (conn ? { ok: true, conn } : { ok: false, reason: this.lastUpstreamError ?? 'the upstream is not reachable' }));
  }

  private lastUpstreamError: string | undefined;

  /** The token expired: every open channel ends with a message, then the connection. */
  private async expire(): Promise<void> {
    await Promise.all([...this.channels].map(async (ch) => {
      await writeStderr(ch, 'hoop: the token expired; reconnect with a fresh token');
      try {
        ch.exit(GATEWAY_ERROR_EXIT);
      } catch {
        // already closed
      }
      ch.end();
    }));
    this.client.end();
  }

  // -------------------------------------------------------------------------------------------
  // Session channels: exec, shell, sftp, and the requests that precede them.

  private onSession(session: Session): void {
    let pty: PtyInfo | undefined;
    const env: Record<string, string> = {};
    let running: ClientChannel | undefined;
    let cast: ChannelCast | undefined;
    session.on('pty', (accept, _reject, info) => {
      pty = { rows: info.rows, cols: info.cols, height: info.height, width: info.width, term: info.term, ...(info.modes ? { modes: info.modes as Record<string, number> } : {}) };
      accept?.();
    });
    session.on('env', (accept, reject, info) => {
      if (envAllowed(this.opts.env, info.key)) {
        env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (pty) pty = { ...pty, rows: info.rows, cols: info.cols, height: info.height, width: info.width };
      running?.setWindow(info.rows, info.cols, info.height, info.width);
      cast?.resize(info.cols, info.rows);
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      if (running) signalUpstream(running, info.name);
      accept?.();
    });
    // Agent and X11 forwarding: decided (unknown unless a rule names them), never relayed.
    session.on('auth-agent', (_accept, reject) => void this.refuseRequest('agent', reject));
    session.on('x11', (_accept, reject) => void this.refuseRequest('x11', reject));
    session.on('exec', (accept, _reject, info) => {
      const ch = accept();
      void this.execRequest(info.command).then((req) => this.runCommand(ch, req, pty, env, (up, c) => ((running = up), (cast = c))));
    });
    session.on('shell', (accept) => {
      const ch = accept();
      void this.runCommand(ch, { type: 'interactive', pty: pty !== undefined, ...(pty ? { term: pty.term } : {}) }, pty, env, (up, c) => ((running = up), (cast = c)));
    });
    session.on('sftp', (accept) => {
      const sftp = accept();
      void this.session!.then((s) => {
        if (!s) return sftp.end();
        serveSftp(sftp, {
          session: s,
          upstream: () => this.getUpstream(),
          decide: (req) => this.decide(req),
          log: this.log,
        });
      });
    });
    session.on('subsystem', (accept, reject, info) => {
      void this.decide({ type: 'other', request: `subsystem:${info.name}` }).then(async (o) => {
        if (o.kind === 'refuse') return reject?.();
        // Allowed by a rule: relayed like a command would be, on the upstream's subsystem.
        const ch = accept();
        const up = await this.getUpstream();
        if (!up.ok) {
          o.finish({ bytesIn: 0, bytesOut: 0, error: up.reason });
          return ch.end();
        }
        up.conn.subsys(info.name, (err, upch) => {
          if (err) {
            o.finish({ bytesIn: 0, bytesOut: 0, error: err.message });
            return ch.end();
          }
          void this.relay(ch, upch, [], o, false);
        });
      });
    });
  }

  /** An exec request; a file transfer with relative paths (legacy scp, rsync) carries the login's home to resolve them. */
  private async execRequest(command: string): Promise<SshRequest> {
    const s = await this.session;
    const transfer = s?.execFacts(command).transfer;
    if (!transfer || transfer.paths.every((p) => p.startsWith('/'))) return { type: 'exec', command };
    const home = await this.home();
    return home ? { type: 'exec', command, cwd: home } : { type: 'exec', command };
  }

  private homeDir: Promise<string | undefined> | undefined;

  /** The upstream login's home (its SFTP working directory), asked once per connection. */
  private home(): Promise<string | undefined> {
    this.homeDir ??= this.getUpstream().then((up) => {
      if (!up.ok) {
        this.homeDir = undefined;
        return undefined;
      }
      return sftpUpstream(up.conn).then(
        (sftp) =>
          new Promise<string | undefined>((resolve) =>
            sftp.realpath('.', (err, p) => {
              sftp.end();
              resolve(err ? undefined : p);
            }),
          ),
        () => undefined,
      );
    });
    return this.homeDir;
  }

  private async refuseRequest(what: string, reject: (() => void) | undefined): Promise<void> {
    const o = await this.decide({ type: 'other', request: what });
    if (o.kind === 'forward') o.finish({ bytesIn: 0, bytesOut: 0, error: `${what} forwarding is not relayed by the gateway` });
    reject?.();
  }

  private async runCommand(ch: ServerChannel, req: SshRequest, pty: PtyInfo | undefined, env: Record<string, string>, setRunning: (up: ClientChannel, cast: ChannelCast | undefined) => void): Promise<void> {
    // Standard input waits (in the channel's window) until the command is decided.
    ch.pause();
    this.channels.add(ch);
    const abort = new AbortController();
    ch.on('close', () => {
      this.channels.delete(ch);
      abort.abort();
    });
    const outcome = await this.decide(req, ch, abort.signal);
    if (outcome.kind === 'refuse') {
      await writeStderr(ch, outcome.message);
      if (outcome.expired) return this.expire();
      try {
        ch.exit(BLOCKED_EXIT);
      } catch {
        // the client went away
      }
      ch.end();
      return;
    }
    const masker = this.masker(outcome.masks);
    const errMasker = this.masker(outcome.masks);
    if (masker && !masker.ok) {
      outcome.finish({ bytesIn: 0, bytesOut: 0, error: masker.reason });
      await writeStderr(ch, `hoop: blocked: the masks cannot be applied (${masker.reason})`);
      ch.exit(BLOCKED_EXIT);
      ch.end();
      return;
    }
    const up = await this.getUpstream();
    if (!up.ok) {
      outcome.finish({ bytesIn: 0, bytesOut: 0, error: up.reason });
      await writeStderr(ch, `hoop: ${up.reason}`);
      ch.exit(GATEWAY_ERROR_EXIT);
      ch.end();
      return;
    }
    const envOpt = Object.keys(env).length > 0 ? env : undefined;
    let upch: ClientChannel;
    try {
      upch = req.type === 'exec' ? await execUpstream(up.conn, req.command, { ...(pty ? { pty } : {}), ...(envOpt ? { env: envOpt } : {}) }) : await shellUpstream(up.conn, pty, envOpt);
    } catch (e) {
      outcome.finish({ bytesIn: 0, bytesOut: 0, error: (e as Error).message });
      await writeStderr(ch, `hoop: the upstream refused the channel: ${(e as Error).message}`);
      ch.exit(GATEWAY_ERROR_EXIT);
      ch.end();
      return;
    }
    if (ch.destroyed || !ch.writable) {
      upch.close();
      outcome.finish({ bytesIn: 0, bytesOut: 0, error: 'the client closed the channel' });
      return;
    }
    // The output as the client sees it (masked), when the recording keeps output.
    const cast = outcome.cast({ cols: pty?.cols || 80, rows: pty?.rows || 24, ...(pty ? { term: pty.term } : {}), title: req.type === 'exec' ? req.command : 'shell' });
    setRunning(upch, cast);
    const ms: [StreamMasker, StreamMasker] | [] = masker?.ok && errMasker?.ok ? [masker.masker, errMasker.masker] : [];
    await this.relay(ch, upch, ms, outcome, req.type === 'interactive', cast);
  }

  private masker(masks: Extract<SshOutcome, { kind: 'forward' }>['masks']): { ok: true; masker: StreamMasker } | { ok: false; reason: string } | undefined {
    if (masks.length === 0) return undefined;
    return buildStreamMasker(masks, this.opts.hashKey);
  }

  /**
   * Relays a running upstream channel: stdin to it, stdout and stderr back (masked when `masks`
   * holds a masker for each), with backpressure both ways; then its exit status or signal.
   */
  private relay(ch: ServerChannel, upch: ClientChannel, masks: [StreamMasker, StreamMasker] | [], outcome: Extract<SshOutcome, { kind: 'forward' }>, interactive: boolean, cast?: ChannelCast): Promise<void> {
    const result: SshResult = { bytesIn: 0, bytesOut: 0 };
    let exit: { code: number } | { signal: string; core: boolean; desc: string } | undefined;
    upch.on('exit', (code: number | null, signal?: string, core?: boolean, desc?: string) => {
      if (typeof code === 'number') exit = { code };
      else if (signal) exit = { signal: signal.replace(/^SIG/, ''), core: core ?? false, desc: desc ?? '' };
    });
    // stdin: client → upstream.
    ch.on('data', (d: Buffer) => {
      result.bytesIn += d.length;
      if (!upch.write(d)) {
        ch.pause();
        upch.once('drain', () => ch.resume());
      }
    });
    ch.on('end', () => upch.end());
    ch.on('close', () => {
      // The client went away (or closed the channel): the upstream command's channel goes too.
      upch.close();
    });
    ch.resume();

    // limit time: once the command has run that long it is ended upstream — SIGTERM to its process
    // group (sshd's signal request), SIGKILL if it is still there after the grace time, and then
    // the upstream channel is closed whatever the command does. The client is told on stderr and
    // gets exit status 124.
    let limited: SshResult['limited'];
    // sshd ignores signal requests it cannot deliver (a root login has no unprivileged session
    // process to send them from): then even a closed channel waits for the command. Past the last
    // grace time the client's channel is answered anyway; the upstream one is left to sshd.
    let abandon: () => void = () => undefined;
    const abandoned = new Promise<void>((resolve) => (abandon = resolve));
    const timers: NodeJS.Timeout[] = [];
    const stopTimers = () => {
      for (const t of timers) clearTimeout(t);
      timers.length = 0;
    };
    const limit = outcome.timeLimit;
    if (limit) {
      const grace = this.opts.killGraceMs ?? 2000;
      const send = (signal: string): void => {
        limited!.signal = signal;
        signalUpstream(upch, signal);
      };
      timers.push(setTimeout(() => {
        if (exit) return;
        limited = { ms: limit.ms, rule: limit.rule };
        void writeStderr(ch, limit.message);
        cast?.output(Buffer.from(`${limit.message}\n`));
        send('TERM');
        timers.push(setTimeout(() => {
          send('KILL');
          timers.push(setTimeout(() => {
            upch.close();
            timers.push(setTimeout(() => {
              limited!.unconfirmed = true;
              abandon();
            }, grace));
          }, grace));
        }, grace));
      }, limit.ms));
      upch.on('exit', stopTimers);
      upch.on('close', stopTimers);
    }

    const pipe = (src: NodeJS.ReadableStream & { pause(): void; resume(): void }, dst: NodeJS.WritableStream & { writable: boolean; once(e: 'drain', f: () => void): void }, masker: StreamMasker | undefined): Promise<void> =>
      new Promise((resolve) => {
        let idle: NodeJS.Timeout | undefined;
        const send = (b: Buffer) => {
          if (b.length === 0 || !dst.writable) return;
          result.bytesOut += b.length;
          cast?.output(b);
          if (!dst.write(b)) {
            src.pause();
            dst.once('drain', () => src.resume());
          }
        };
        src.on('data', (d: Buffer) => {
          send(masker ? masker.push(d) : d);
          if (masker && interactive) {
            clearTimeout(idle);
            if (masker.pendingBytes > 0) idle = setTimeout(() => send(masker.flushIdle()), this.opts.idleFlushMs ?? 50);
          }
        });
        src.on('end', () => {
          clearTimeout(idle);
          if (masker) send(masker.end());
          void flushed(dst).then(resolve);
        });
        src.on('close', () => resolve());
      });

    const [outMask, errMask] = masks.length === 2 ? masks : [undefined, undefined];
    const stdout = pipe(upch, ch, outMask);
    const stderr = pipe(upch.stderr, ch.stderr, errMask);
    const upClosed = new Promise<void>((resolve) => upch.on('close', () => resolve()));
    return Promise.race([Promise.all([stdout, stderr, upClosed]), abandoned]).then(async () => {
      stopTimers();
      if (limited) {
        result.limited = limited;
        if (exit && 'signal' in exit) result.signal = exit.signal;
        result.exitCode = TIME_LIMIT_EXIT;
        exit = { code: TIME_LIMIT_EXIT };
      } else if (exit && 'code' in exit) result.exitCode = exit.code;
      else if (exit) result.signal = exit.signal;
      else if (!ch.destroyed && ch.writable) {
        result.error = 'the upstream channel closed without an exit status';
        await writeStderr(ch, 'hoop: the upstream connection was lost before the command finished');
      } else result.error = 'the client closed the channel';
      if (cast) {
        cast.end();
        result.cast = cast.file;
      }
      outcome.finish(result);
      if (!ch.writable) return;
      // A command that may have changed state is not reported done before its record is durable.
      try {
        await outcome.beforeAnswer();
      } catch {
        await writeStderr(ch, 'hoop: the audit log could not be synced; the session ends');
        this.client.end();
        return;
      }
      try {
        if (exit && 'code' in exit) ch.exit(exit.code);
        else if (exit) ch.exit(exit.signal, exit.core, exit.desc);
        else ch.exit(GATEWAY_ERROR_EXIT);
      } catch {
        ch.exit(GATEWAY_ERROR_EXIT);
      }
      ch.end();
    });
  }

  // -------------------------------------------------------------------------------------------
  // direct-tcpip (`ssh -L`, `ssh -W`, ProxyJump).

  private async onDirectTcpip(accept: () => ServerChannel, reject: () => void, info: { destIP: string; destPort: number; srcIP: string; srcPort: number }): Promise<void> {
    const o = await this.decide({ type: 'forward', host: info.destIP, port: info.destPort });
    if (o.kind === 'refuse') return reject();
    const up = await this.getUpstream();
    if (!up.ok) {
      o.finish({ bytesIn: 0, bytesOut: 0, error: up.reason });
      return reject();
    }
    let upch: ClientChannel;
    try {
      upch = await forwardUpstream(up.conn, info.srcIP, info.srcPort, info.destIP, info.destPort);
    } catch (e) {
      o.finish({ bytesIn: 0, bytesOut: 0, error: (e as Error).message });
      return reject();
    }
    const ch = accept();
    const result: SshResult = { bytesIn: 0, bytesOut: 0 };
    ch.on('data', (d: Buffer) => (result.bytesIn += d.length));
    upch.on('data', (d: Buffer) => (result.bytesOut += d.length));
    ch.pipe(upch).pipe(ch);
    ch.on('close', () => upch.close());
    upch.on('close', () => {
      ch.close();
      o.finish(result);
    });
  }
}
